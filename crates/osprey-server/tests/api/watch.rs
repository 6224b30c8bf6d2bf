//! `osprey watch` end to end: a JSONL source through dedup, near-duplicates,
//! topics, analysis, the store and a webhook on loopback; restart resumes
//! from the saved cursor; webhooks retry and dead-letter; `/v1/ingest`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use osprey_server::{Application, Settings};
use serde_json::{json, Value};

use super::helpers::{model_dir, temp_dir, test_settings, ADMIN_TOKEN};

/// A webhook receiver on loopback: records every body and `Idempotency-Key`,
/// answering 500 to the first `fail_first` requests.
struct Hook {
    url: String,
    got: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn hook(fail_first: usize) -> Hook {
    let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (g, s) = (Arc::clone(&got), Arc::clone(&seen));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (g, s) = (Arc::clone(&g), Arc::clone(&s));
            async move {
                let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                g.lock().expect("watch test step").push((key, value));
                if s.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < fail_first {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("watch test step");
    let url = format!("http://{}/hook", listener.local_addr().expect("watch test step"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Hook { url, got }
}

fn post(id: &str, title: &str, body: &str) -> String {
    json!({"id": id, "title": title, "body": body, "created_utc": 1_764_000_000}).to_string() + "\n"
}

fn topics() -> Value {
    json!([
        {"label": "rust programming", "examples": ["the borrow checker rejects my code", "cargo build is slow", "lifetimes and traits in Rust"]},
        {"label": "databases", "examples": ["slow SQL query needs an index", "PostgreSQL replication lag", "database migrations"]}
    ])
}

fn watch_settings(model: &std::path::Path, data: &std::path::Path, watch: Value) -> Settings {
    let mut s = test_settings(model);
    s.server.data_dir = data.to_path_buf();
    s.watch = vec![serde_json::from_value(watch).expect("watch definition")];
    s
}

/// Runs the app's watches until every source has finished; returns the
/// watch's status, the app having shut down (store closed).
async fn run_once(settings: Settings) -> Value {
    let app = Application::build(settings).await.expect("build").with_watches().expect("watches");
    let watches = app.state().watches.clone().expect("watches");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_with_shutdown(async {
        let _ = rx.await;
    }));
    tokio::time::timeout(Duration::from_secs(120), watches.sources_done()).await.expect("sources finish");
    let status = watches.status().await["watches"][0].clone();
    tx.send(()).expect("watch test step");
    server.await.expect("watch test step").expect("clean shutdown");
    status
}

const ON_TOPIC: [(&str, &str, &str); 3] = [
    (
        "r1",
        "The borrow checker keeps rejecting my Rust code",
        "I fight lifetimes every day. Cargo builds are slow too. Any advice?",
    ),
    (
        "r2",
        "PostgreSQL query takes 30 seconds",
        "The SQL planner ignores my index. Vacuum did not help. What should I check?",
    ),
    (
        "r3",
        "Rust traits and generics confuse me",
        "Trait bounds on generic functions make my head spin. The compiler errors are long.",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jsonl_watch_keeps_on_topic_posts_stores_them_alerts_and_resumes_after_a_restart() {
    let Some(model) = model_dir() else { return };
    let hook = hook(0).await;
    let dir = temp_dir("watch-jsonl");
    let file = dir.join("posts.jsonl");
    let mut lines = String::new();
    for (id, t, b) in ON_TOPIC {
        lines += &post(id, t, b);
    }
    lines += &post(
        "c1",
        "My sourdough finally rose",
        "Baking bread at home with rye flour. The crust was perfect and crunchy.",
    );
    lines +=
        &post("c2", "Best beaches in Portugal", "We spent two weeks swimming and eating grilled sardines by the sea.");
    // The same content as r1 under another id, and r2 with one word changed.
    lines += &post("d1", ON_TOPIC[0].1, ON_TOPIC[0].2);
    lines += &post("n1", ON_TOPIC[1].1, &ON_TOPIC[1].2.replace("What should I check?", "What else should I check?"));
    std::fs::write(&file, &lines).expect("watch test step");
    let watch = json!({
        "name": "tech",
        "sources": [{"type": "jsonl", "name": "inbox", "path": file, "tail": false}],
        "topics": topics(),
        "threshold": 0.3,
        "near_duplicate": 0.9,
        "persona_id": "watcher",
        "alerts": [{"type": "webhook", "name": "hook", "url": hook.url, "backoff": "10ms"}, {"type": "log", "name": "log"}],
    });
    let data = dir.join("data");
    let status = run_once(watch_settings(&model, &data, watch.clone())).await;
    assert_eq!(status["received"], 7, "{status}");
    assert_eq!(status["kept"], 3, "{status}");
    assert_eq!(status["filtered"], 2, "{status}");
    assert_eq!(status["duplicate"], 1, "{status}");
    assert_eq!(status["near_duplicate"], 1, "{status}");
    assert_eq!(status["errors"], 0, "{status}");

    // The kept posts are stored with their topic and the four analyses plus
    // the topic match; the others are not stored.
    let store =
        osprey_store::Store::open(&osprey_store::StoreSettings::default(), &data).await.expect("watch test step");
    for (id, _, _) in ON_TOPIC {
        let p = store
            .get_post(&format!("jsonl:{id}"))
            .await
            .expect("watch test step")
            .unwrap_or_else(|| panic!("{id} stored"));
        assert!(p.post.topic.is_some(), "{id} has a topic");
        assert_eq!(p.post.persona_id.as_deref(), Some("watcher"));
        let mut tasks: Vec<&str> = p.analyses.iter().map(|a| a.task.as_str()).collect();
        tasks.sort_unstable();
        assert_eq!(tasks, ["emotion", "sentiment", "summary", "topics", "trajectory"], "{id}");
    }
    assert_eq!(
        store.get_post("jsonl:r3").await.expect("watch test step").expect("watch test step").post.topic.as_deref(),
        Some("rust programming")
    );
    assert_eq!(
        store.get_post("jsonl:r2").await.expect("watch test step").expect("watch test step").post.topic.as_deref(),
        Some("databases")
    );
    for id in ["c1", "c2", "d1", "n1"] {
        assert!(store.get_post(&format!("jsonl:{id}")).await.expect("watch test step").is_none(), "{id} not stored");
    }
    let cursor = store.watch_cursor("tech", "inbox").await.expect("watch test step").expect("cursor saved");
    assert_eq!(cursor.posts, 3);
    store.close().await.expect("watch test step");

    // One webhook alert with the three kept posts.
    let got = hook.got.lock().expect("watch test step").clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1["kind"], "posts");
    assert_eq!(got[0].1["watch"], "tech");
    assert_eq!(got[0].0, got[0].1["id"].as_str().expect("watch test step"), "Idempotency-Key is the alert id");
    let ids: Vec<&str> = got[0].1["posts"]
        .as_array()
        .expect("watch test step")
        .iter()
        .map(|p| p["id"].as_str().expect("watch test step"))
        .collect();
    assert_eq!(ids, ["jsonl:r1", "jsonl:r2", "jsonl:r3"]);

    // Restart with two more lines: only they are read; the repeat of r3's
    // content is recognised as seen.
    let more = post(
        "r4",
        "Indexes on a huge PostgreSQL table",
        "Creating an index locks writes for minutes. Is there a concurrent way to build it?",
    ) + &post("d2", ON_TOPIC[2].1, ON_TOPIC[2].2);
    std::fs::write(&file, lines + &more).expect("watch test step");
    let status = run_once(watch_settings(&model, &data, watch)).await;
    assert_eq!(status["received"], 2, "{status}");
    assert_eq!(status["kept"], 1, "{status}");
    assert_eq!(status["duplicate"], 1, "{status}");
    let store =
        osprey_store::Store::open(&osprey_store::StoreSettings::default(), &data).await.expect("watch test step");
    assert_eq!(
        store.get_post("jsonl:r1").await.expect("watch test step").expect("watch test step").analyses.len(),
        5,
        "r1 not processed again"
    );
    assert!(store.get_post("jsonl:r4").await.expect("watch test step").is_some());
    assert_eq!(store.watch_cursor("tech", "inbox").await.expect("watch test step").expect("watch test step").posts, 4);
    store.close().await.expect("watch test step");
    assert_eq!(hook.got.lock().expect("watch test step").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_head_drops_a_repost_but_not_a_new_question_under_the_same_title() {
    let Some(model) = model_dir() else { return };
    let dir = temp_dir("watch-short-head");
    let file = dir.join("posts.jsonl");
    let title = "Borrow checker question";
    let first = "I collect the rows into a Vec and then call iter_mut on it twice in one loop.";
    let lines = [
        post("q1", title, first),
        post("q2", title, "Why does my closure borrow self mutably when it only reads a field of the struct?"),
        post("q3", title, &first.replace("twice in one loop", "twice within one loop")),
    ]
    .concat();
    std::fs::write(&file, lines).expect("watch test step");
    let watch = json!({
        "name": "short",
        "sources": [{"type": "jsonl", "name": "inbox", "path": file, "tail": false}],
        // 24 characters: every vector sees the title alone.
        "head_chars": 24,
        "near_duplicate": 0.9,
        "analyses": ["sentiment"],
    });
    let status = run_once(watch_settings(&model, &dir.join("data"), watch.clone())).await;
    assert_eq!(status["received"], 3, "{status}");
    assert_eq!(status["near_duplicate"], 1, "the light edit q3 is the repost: {status}");
    assert_eq!(status["kept"], 2, "q2 asks something else under the same title: {status}");

    // With the vectors alone, the shared title makes all three alike.
    let mut alone = watch;
    alone["name"] = json!("alone");
    alone["near_duplicate_overlap"] = json!(0.0);
    let status = run_once(watch_settings(&model, &dir.join("data-alone"), alone)).await;
    assert_eq!(status["near_duplicate"], 2, "{status}");
    assert_eq!(status["kept"], 1, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_retry_with_the_same_key_and_dead_letter_after_max_attempts() {
    let Some(model) = model_dir() else { return };
    let flaky = hook(2).await;
    let dead = hook(usize::MAX).await;
    let dir = temp_dir("watch-hooks");
    let file = dir.join("posts.jsonl");
    std::fs::write(&file, post("r1", ON_TOPIC[0].1, ON_TOPIC[0].2)).expect("watch test step");
    let watch = json!({
        "name": "hooks",
        "sources": [{"type": "jsonl", "name": "inbox", "path": file, "tail": false}],
        "near_duplicate": 0.0,
        "analyses": ["sentiment"],
        "alerts": [
            {"type": "webhook", "name": "flaky", "url": flaky.url, "backoff": "10ms", "max_attempts": 5},
            {"type": "webhook", "name": "dead", "url": dead.url, "backoff": "10ms", "max_attempts": 3},
        ],
    });
    let data = dir.join("data");
    let status = run_once(watch_settings(&model, &data, watch)).await;
    assert_eq!(status["kept"], 1, "{status}");
    let targets = status["alerts"].as_array().expect("watch test step");
    assert_eq!(targets[0]["sent"], 1, "{status}");
    assert_eq!(targets[0]["retried"], 2, "{status}");
    assert_eq!(targets[1]["dead_lettered"], 1, "{status}");
    let flaky_got = flaky.got.lock().expect("watch test step").clone();
    assert_eq!(flaky_got.len(), 3);
    assert!(flaky_got.iter().all(|(k, _)| k == &flaky_got[0].0), "one key across retries");
    assert_eq!(dead.got.lock().expect("watch test step").len(), 3);
    let store =
        osprey_store::Store::open(&osprey_store::StoreSettings::default(), &data).await.expect("watch test step");
    let letters = store.dead_letters("hooks", 10).await.expect("watch test step");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].target, "dead");
    assert_eq!(letters[0].attempts, 3);
    assert!(letters[0].error.contains("500"), "{}", letters[0].error);
    assert_eq!(letters[0].payload["posts"][0]["id"], "jsonl:r1");
    store.close().await.expect("watch test step");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_runs_pushed_posts_through_the_pipeline_and_refuses_bad_requests() {
    let Some(model) = model_dir() else { return };
    let hook = hook(0).await;
    let dir = temp_dir("watch-ingest");
    let watch = json!({
        "name": "pushed",
        "push": true,
        "topics": topics(),
        "threshold": 0.3,
        "digest": {"every": "1s"},
        "alerts": [{"type": "webhook", "name": "hook", "url": hook.url, "kinds": ["digest"]}],
    });
    let settings = watch_settings(&model, &dir.join("data"), watch);
    let app = Application::build(settings).await.expect("watch test step").with_watches().expect("watch test step");
    let base = format!("http://127.0.0.1:{}", app.port());
    let registry = app.state().registry.clone();
    tokio::spawn(app.run_with_shutdown(std::future::pending()));
    let deadline = Instant::now() + Duration::from_secs(120);
    while registry.readiness().is_err() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = reqwest::Client::new();
    let body = json!({"posts": [
        {"id": "p1", "title": ON_TOPIC[0].1, "body": ON_TOPIC[0].2},
        {"id": "p2", "title": "Best beaches in Portugal", "body": "Two weeks of swimming and grilled sardines."},
        {"id": "p3", "title": "", "body": ""},
    ]});
    let r = client.post(format!("{base}/v1/ingest/pushed")).json(&body).send().await.expect("watch test step");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("watch test step");
    let outcomes: Vec<(&str, &str)> = v["posts"]
        .as_array()
        .expect("watch test step")
        .iter()
        .map(|p| (p["id"].as_str().expect("watch test step"), p["outcome"].as_str().expect("watch test step")))
        .collect();
    assert_eq!(outcomes, [("p1", "kept"), ("p2", "filtered"), ("p3", "invalid")], "{v}");
    assert_eq!(v["posts"][0]["topic"], "rust programming");
    // Pushed again: seen.
    let v: Value = client
        .post(format!("{base}/v1/ingest/pushed"))
        .json(&body)
        .send()
        .await
        .expect("watch test step")
        .json()
        .await
        .expect("watch test step");
    assert_eq!(v["duplicate"], 2, "{v}");
    // Refusals are 4xx JSON.
    for (path, body, status) in [
        ("/v1/ingest/pushed", json!({"posts": []}), 422),
        ("/v1/ingest/nope", json!({"posts": [{"id": "x", "title": "t"}]}), 404),
        ("/v1/ingest/pushed", json!({"post": []}), 400),
    ] {
        let r = client.post(format!("{base}{path}")).json(&body).send().await.expect("watch test step");
        assert_eq!(r.status().as_u16(), status, "{path} {body}");
        let e: Value = r.json().await.expect("watch test step");
        assert!(e["error"].is_object() || e["error"].is_string() || e["message"].is_string(), "{e}");
    }
    // The digest for the kept post arrives within a few periods.
    let deadline = Instant::now() + Duration::from_secs(10);
    while hook.got.lock().expect("watch test step").is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = hook.got.lock().expect("watch test step").clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1["kind"], "digest");
    assert_eq!(got[0].1["topics"][0]["topic"], "rust programming");
    assert_eq!(got[0].1["topics"][0]["posts"], 1);
    // Status is an observe route.
    let s: Value = client
        .get(format!("{base}/v1/watches/pushed"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("watch test step")
        .json()
        .await
        .expect("watch test step");
    assert_eq!(s["kept"], 1, "{s}");
    assert_eq!(s["received"], 6, "{s}");
}
