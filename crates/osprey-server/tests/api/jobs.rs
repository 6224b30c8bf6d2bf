//! `/v1/jobs` on the in-process queue: a job runs to completion in the
//! server's own worker and its posts are stored; bad requests are 4xx JSON.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::helpers::{model_dir, spawn_app, test_settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_posts_completes_and_stores_them_and_bad_jobs_are_refused() {
    let Some(model) = model_dir() else { return };
    let app = spawn_app(test_settings(&model));
    let posts: Vec<Value> = (0..250)
        .map(|i| json!({"id": format!("job-{i}"), "title": format!("Build {i}"), "body": format!("Cargo took {i} seconds. I hate waiting.")}))
        .collect();
    let r = app.post_json("/v1/jobs", json!({"posts": posts, "tasks": ["sentiment", "emotion"], "label": "t"})).await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let s: Value = app.get(&format!("/v1/jobs/{id}")).await.json().await.expect("json");
        if s["state"] == "completed" || s["state"] == "failed" || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (&status["state"], &status["done"], &status["total"]),
        (&json!("completed"), &json!(250), &json!(250)),
        "{status}"
    );
    assert_eq!(status["label"], "t");
    let stored: Value = app.get("/v1/posts/job-249").await.json().await.expect("json");
    assert_eq!(stored["analyses"].as_array().map(Vec::len), Some(2), "{stored}");
    let list: Value = app.get("/v1/jobs?limit=5").await.json().await.expect("json");
    assert!(list["jobs"].as_array().expect("jobs").iter().any(|j| j["id"] == id.as_str()), "{list}");

    for (body, status) in [
        (json!({"posts": [{"id": "x", "title": "t"}], "tasks": ["sentiment"], "bogus": 1}), 400),
        (json!({"posts": [{"id": "x", "title": "t"}], "tasks": ["sentiment"], "store": false}), 422),
        (json!({"posts": [], "tasks": ["sentiment"]}), 422),
        (json!({"posts": [{"id": "x", "title": "t"}], "tasks": []}), 422),
        (json!({"posts": [{"id": "x", "title": "t"}], "tasks": ["topics"]}), 422),
        (json!({"tasks": ["sentiment"]}), 422),
        (json!({"source": {"type": "nope"}, "tasks": ["sentiment"]}), 400),
    ] {
        let r = app.post_json("/v1/jobs", body.clone()).await;
        assert_eq!(r.status().as_u16(), status, "{body}");
        let e: Value = r.json().await.expect("json error body");
        assert!(e["error"]["message"].is_string(), "{e}");
    }
    assert_eq!(app.get("/v1/jobs/not-a-job").await.status(), 404);
    let r = app.client().delete(app.url("/v1/jobs/01a20c75-67da-735e-b037-7ec330cae0a6")).send().await.expect("delete");
    assert_eq!(r.status(), 404);
}
