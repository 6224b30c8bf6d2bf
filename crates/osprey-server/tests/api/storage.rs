//! Storage and cache through the server: `/v1/analyze` stores posts and
//! results (SQLite by default, PostgreSQL when configured), the read routes
//! return them, resubmitted content is reused instead of recomputed, the
//! writer drains on shutdown, and Redis being down or shared behaves.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{model_dir, spawn_app, test_settings, TestApp};

async fn ok_json(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let body: Value = resp.json().await.expect("json body");
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls `GET path` until it answers 200 (the writer commits within its
/// `max_delay`), for at most five seconds.
async fn eventually(app: &TestApp, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let resp = app.get(path).await;
        if resp.status() == 200 {
            return resp.json().await.expect("json");
        }
        assert!(Instant::now() < deadline, "{path} never appeared: {}", resp.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn unique(tag: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}

fn posts(tag: &str) -> Value {
    json!([
        { "id": format!("{tag}-1"), "title": "Cargo builds", "body": "Every cargo build takes minutes. I hate waiting! Incremental builds help a lot.", "persona_id": format!("{tag}-dev"), "created": "2026-11-20T10:00:00Z", "source": "reddit", "author": "u1" },
        { "id": format!("{tag}-2"), "title": "Async joy", "body": "Tokio works great. I love how fast the new runtime is.", "persona_id": format!("{tag}-dev"), "created": "2026-11-21T09:30:00Z" },
        { "id": format!("{tag}-3"), "title": "Outage", "body": "The database fell over at night. I'm scared it happens again.", "persona_id": format!("{tag}-ops"), "created": 1763700000 },
    ])
}

/// Everything a client can do with stored analyses, on the backend `app` runs.
async fn store_round_trip(app: &TestApp) {
    let tag = unique("rt");
    let req = json!({ "posts": posts(&tag), "tasks": ["sentiment", "emotion", "trajectory", "summary"], "summary_method": "tfidf" });
    let body = ok_json(app.post_json("/v1/analyze", req).await).await;
    let first = &body["results"][0];
    assert_eq!(first["stored_id"], format!("{tag}-1"));
    let ids = first["analysis_ids"].as_object().expect("analysis ids").clone();
    assert_eq!(ids.len(), 4, "{ids:?}");

    // The post with every analysis, results exactly as answered, readable
    // at once (queued records count) and after the writer committed it.
    let at_once = ok_json(app.get(&format!("/v1/posts/{tag}-1")).await).await;
    assert_eq!(at_once["analyses"].as_array().map(Vec::len), Some(4), "{at_once}");
    let stored = eventually(app, &format!("/v1/posts/{tag}-1")).await;
    assert_eq!(stored["title"], "Cargo builds");
    assert_eq!(stored["source"], "reddit");
    assert_eq!(stored["created"], "2026-11-20T10:00:00.000Z");
    assert_eq!(stored["content_hash"].as_str().map(str::len), Some(32));
    let analyses = stored["analyses"].as_array().expect("analyses");
    assert_eq!(analyses.len(), 4);
    for a in analyses {
        let task = a["task"].as_str().expect("task");
        assert_eq!(a["result"], first[task], "{task}");
        assert_eq!(ids[task], a["id"]);
    }
    let one = ok_json(app.get(&format!("/v1/analyses/{}", ids["emotion"].as_str().expect("id"))).await).await;
    assert_eq!(one["result"], first["emotion"]);
    assert_eq!(one["post_id"], format!("{tag}-1"));

    // Listing: filtered by persona, newest first, one per page, no gaps.
    // Lists read committed rows: wait for the writer (within its max_delay).
    let deadline = Instant::now() + Duration::from_secs(5);
    while ok_json(app.get(&format!("/v1/posts?persona_id={tag}-dev")).await).await["posts"]
        .as_array()
        .map_or(0, Vec::len)
        < 2
    {
        assert!(Instant::now() < deadline, "posts never committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/posts?persona_id={tag}-dev&limit=1");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = ok_json(app.get(&path).await).await;
        for p in page["posts"].as_array().expect("posts") {
            seen.push(p["id"].as_str().expect("id").to_string());
            assert!(p.get("analyses").is_none(), "lists carry no analyses");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(seen.len() <= 2, "{seen:?}");
    }
    assert_eq!(seen, vec![format!("{tag}-2"), format!("{tag}-1")]);
    let window = ok_json(app.get(&format!("/v1/posts?persona_id={tag}-dev&since=2026-11-21")).await).await;
    assert_eq!(window["posts"].as_array().map(Vec::len), Some(1));

    // Daily emotion means per persona. PostgreSQL serves days from a
    // materialized view refreshed on a schedule, or now on request.
    let stats_path = format!("/v1/stats/emotions?persona_id={tag}-dev&bucket=day");
    let before = ok_json(app.get(&stats_path).await).await;
    if before["computed_from"] == "materialized_view" {
        assert_eq!(before["buckets"].as_array().map(Vec::len), Some(0), "not refreshed yet: {before}");
    }
    let refresh = app.client().post(app.url("/v1/stats/emotions/refresh")).send().await.expect("refresh");
    assert_eq!(refresh.status(), 204);
    let stats = ok_json(app.get(&stats_path).await).await;
    let buckets = stats["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 2, "{stats}");
    let hourly = ok_json(app.get(&format!("/v1/stats/emotions?persona_id={tag}-dev&bucket=hour")).await).await;
    assert_eq!(hourly["computed_from"], "live");
    assert_eq!(hourly["buckets"].as_array().map(Vec::len), Some(2), "{hourly}");
    for b in buckets {
        assert_eq!(b["posts"], 1);
        let sum: f64 = b["means"].as_object().expect("means").values().filter_map(Value::as_f64).sum();
        assert!((sum - 1.0).abs() < 1e-3, "{b}");
    }

    // Bad input: 4xx with a message.
    for (path, status) in [
        ("/v1/posts?limit=0", 422),
        ("/v1/posts?cursor=not-a-cursor", 400),
        ("/v1/posts?since=yesterday", 400),
        ("/v1/posts?bogus=1", 400),
        ("/v1/stats/emotions?bucket=week", 422),
        ("/v1/posts/no-such-post", 404),
        ("/v1/analyses/no-such-analysis", 404),
    ] {
        let resp = app.get(path).await;
        assert_eq!(resp.status().as_u16(), status, "{path}");
        let body: Value = resp.json().await.expect("json error");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{path}: {body}");
    }
}

#[tokio::test]
async fn analyze_stores_posts_and_results_in_sqlite_and_reads_them_back() {
    let Some(model) = model_dir() else { return };
    let app = spawn_app(test_settings(&model));
    store_round_trip(&app).await;
}

#[tokio::test]
async fn analyze_stores_posts_and_results_in_postgresql_and_reads_them_back() {
    let Some(model) = model_dir() else { return };
    let Some(db) = crate::pg::fresh_database().await else { return };
    let mut settings = test_settings(&model);
    settings.store.url = Some(db.url.clone());
    let app = spawn_app(settings);
    store_round_trip(&app).await;
    let info = ok_json(app.get("/info").await).await;
    assert_eq!(info["analysis"]["storage"], "postgres", "{info}");
}

#[tokio::test]
async fn resubmitted_content_is_reused_instead_of_recomputed() {
    let Some(model) = model_dir() else { return };
    let app = spawn_app(test_settings(&model));
    let tag = unique("reuse");
    let post = json!({ "id": format!("{tag}-a"), "title": "Rust", "body": "The borrow checker caught a bug. Lifetimes are hard. The compiler is helpful." });
    let req = |post: Value, extra: Value| {
        let mut r = json!({ "posts": [post], "tasks": ["summary", "sentiment"], "summary_method": "centroid" });
        r.as_object_mut().expect("object").extend(extra.as_object().cloned().unwrap_or_default());
        r
    };
    let first = ok_json(app.post_json("/v1/analyze", req(post.clone(), json!({}))).await).await;
    eventually(&app, &format!("/v1/posts/{tag}-a")).await;
    // Out of the result cache, so only the store can spare the model.
    ok_json(app.post_json("/performance/cache/clear", json!({})).await).await;
    let before = app.batcher();

    let mut same = post.clone();
    same["id"] = json!(format!("{tag}-b"));
    let again = ok_json(app.post_json("/v1/analyze", req(same.clone(), json!({}))).await).await;
    let r = &again["results"][0];
    assert_eq!(r["reused"], true, "{r}");
    assert_eq!(r["id"], format!("{tag}-b"));
    assert_eq!(r["stored_id"], format!("{tag}-a"), "stored once, under the first id");
    assert_eq!(r["summary"], first["results"][0]["summary"]);
    assert_eq!(r["analysis_ids"], first["results"][0]["analysis_ids"]);
    assert_eq!(app.batcher().sequences, before.sequences, "nothing embedded");

    // Other options: recomputed, not reused.
    let k1 = ok_json(app.post_json("/v1/analyze", req(same.clone(), json!({ "summary_k": 1 }))).await).await;
    assert_eq!(k1["results"][0]["reused"], false);
    // reuse: false recomputes; store: false leaves nothing behind.
    ok_json(app.post_json("/performance/cache/clear", json!({})).await).await;
    let fresh = ok_json(app.post_json("/v1/analyze", req(same, json!({ "reuse": false }))).await).await;
    assert_eq!(fresh["results"][0]["reused"], false);
    assert!(app.batcher().sequences > before.sequences);
    let unstored = json!({ "id": format!("{tag}-c"), "body": "Nobody should keep this sentence. Really." });
    let r = ok_json(app.post_json("/v1/analyze", req(unstored, json!({ "store": false }))).await).await;
    assert!(r["results"][0].get("stored_id").is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.get(&format!("/v1/posts/{tag}-c")).await.status(), 404);
}

#[tokio::test]
async fn an_edited_post_never_gets_its_old_texts_results() {
    let Some(model) = model_dir() else { return };
    let app = spawn_app(test_settings(&model));
    let tag = unique("edit");
    let analyze = |body: &str, tasks: Value| json!({ "posts": [{ "id": format!("{tag}-p"), "body": body }], "tasks": tasks, "emotion": { "enable_model": false } });
    let happy = "I love this release. Everything is wonderful!";
    let angry = "I hate this release. Everything is broken and I am furious!";
    ok_json(app.post_json("/v1/analyze", analyze(happy, json!(["emotion"]))).await).await;
    eventually(&app, &format!("/v1/posts/{tag}-p")).await;
    // Same id, new text, another task: the post now holds the angry text
    // and still carries the happy text's emotion row in its history.
    ok_json(app.post_json("/v1/analyze", analyze(angry, json!(["sentiment"]))).await).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while eventually(&app, &format!("/v1/posts/{tag}-p")).await["body"] != angry {
        assert!(Instant::now() < deadline, "edit never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ok_json(app.post_json("/performance/cache/clear", json!({})).await).await;
    let r = ok_json(app.post_json("/v1/analyze", analyze(angry, json!(["emotion"]))).await).await;
    assert_eq!(r["results"][0]["reused"], false, "{r}");
    assert_eq!(r["results"][0]["emotion"]["label"], "anger", "{r}");
}

#[tokio::test]
async fn bad_posts_are_refused_before_anything_is_stored() {
    let Some(model) = model_dir() else { return };
    let app = spawn_app(test_settings(&model));
    let tag = unique("bad");
    let good = json!({ "id": format!("{tag}-ok"), "body": "A fine post. Nothing wrong here." });
    for bad in [
        json!({ "id": format!("{tag}-x"), "body": "Bad time.", "created": "last tuesday" }),
        json!({ "id": format!("{tag}-x"), "body": "Too early.", "created": "1969-12-31T23:00:00Z" }),
        json!({ "id": format!("{tag}-x"), "body": "Has a \u{0} NUL." }),
        json!({ "id": format!("{tag}-x"), "body": "Long author.", "author": "a".repeat(300) }),
        json!({ "id": "", "body": "No id." }),
    ] {
        let resp =
            app.post_json("/v1/analyze", json!({ "posts": [good.clone(), bad.clone()], "tasks": ["sentiment"] })).await;
        assert_eq!(resp.status(), 422, "{bad}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.get(&format!("/v1/posts/{tag}-ok")).await.status(), 404, "nothing of a refused request is stored");
}

#[tokio::test]
async fn shutdown_drains_every_accepted_analysis_into_the_store() {
    let Some(model) = model_dir() else { return };
    let mut settings = test_settings(&model);
    // A long batch delay: nothing is written before the shutdown flushes it.
    settings.store.writer.max_delay = Duration::from_secs(30);
    settings.store.writer.batch_size = 10_000;
    let data_dir = settings.server.data_dir.clone();
    let store_settings = settings.store.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (port_tx, port_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        let app = osprey_server::Application::build(settings).await.expect("build");
        let _ = port_tx.send(app.port());
        app.run_with_shutdown(async {
            let _ = stop_rx.await;
        })
        .await
    });
    let base = format!("http://127.0.0.1:{}", port_rx.await.expect("port"));
    let client = reqwest::Client::new();
    let n = 40;
    for i in 0..n {
        let body = json!({ "posts": [{ "id": format!("drain-{i}"), "body": format!("Post number {i} is here. It is fine.") }], "tasks": ["sentiment"] });
        let resp = client.post(format!("{base}/v1/analyze")).json(&body).send().await.expect("send");
        assert_eq!(resp.status(), 200);
    }
    stop_tx.send(()).expect("stop");
    server.await.expect("join").expect("clean shutdown");

    let store = osprey_store::Store::open(&store_settings, &data_dir).await.expect("reopen");
    for i in 0..n {
        let post = store.get_post(&format!("drain-{i}")).await.expect("read");
        assert!(post.is_some_and(|p| p.analyses.len() == 1), "drain-{i} lost");
    }
    store.close().await.expect("close");
}

#[tokio::test]
async fn redis_down_degrades_to_l1_and_says_so() {
    let Some(model) = model_dir() else { return };
    let mut settings = test_settings(&model);
    // Nothing listens on port 1.
    settings.cache.l2.url = Some("redis://127.0.0.1:1".into());
    let app = spawn_app(settings);
    let req = json!({ "posts": [{ "id": "r1", "body": "Redis is down today. Everything still works." }], "tasks": ["sentiment", "emotion"] });
    let first = ok_json(app.post_json("/v1/analyze", req.clone()).await).await;
    let second = ok_json(app.post_json("/v1/analyze", req).await).await;
    assert_eq!(first["results"][0]["cached"], false);
    assert_eq!(second["results"][0]["cached"], true, "served from L1");
    let stats = ok_json(app.get("/performance/cache/stats").await).await;
    let l2_state =
        stats["l2"]["state"].as_str().map(str::to_string).unwrap_or_else(|| stats["l2"]["state"].to_string());
    assert!(!l2_state.contains("up"), "L2 must not claim to be up: {stats}");
}

#[tokio::test]
async fn replicas_share_answers_through_redis() {
    let Some(model) = model_dir() else { return };
    let Some(redis) = crate::pg::redis_url() else { return };
    let prefix = unique("osprey-srv");
    let replica = || {
        let mut s = test_settings(&model);
        s.cache.l2.url = Some(redis.clone());
        s.cache.l2.prefix = prefix.clone();
        spawn_app(s)
    };
    let (a, b) = (replica(), replica());
    let req = json!({ "posts": [{ "id": "s1", "body": format!("Shared answers across replicas {prefix}. Nice.") }], "tasks": ["sentiment", "emotion", "summary"], "summary_method": "tfidf", "store": false });
    let on_a = ok_json(a.post_json("/v1/analyze", req.clone()).await).await;
    assert_eq!(on_a["results"][0]["cached"], false);
    // The L2 write is in the background: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let on_b = ok_json(b.post_json("/v1/analyze", req.clone()).await).await;
        if on_b["results"][0]["cached"] == true {
            assert_eq!(on_b["results"][0]["emotion"], on_a["results"][0]["emotion"]);
            break;
        }
        assert!(Instant::now() < deadline, "replica B never saw A's answer");
        ok_json(b.post_json("/performance/cache/clear", json!({ "tier": "l1" })).await).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = ok_json(b.get("/performance/cache/stats").await).await;
    assert!(stats.to_string().contains("hits"), "{stats}");
    ok_json(a.post_json("/performance/cache/clear", json!({ "tier": "l2" })).await).await;
}

#[tokio::test]
async fn database_and_cache_figures_are_in_the_performance_api() {
    let Some(model) = model_dir() else { return };
    let app = spawn_app(test_settings(&model));
    let req = json!({ "posts": [{ "id": "perf-1", "body": "Count my statements. Please." }], "tasks": ["sentiment"] });
    ok_json(app.post_json("/v1/analyze", req).await).await;
    eventually(&app, "/v1/posts/perf-1").await;
    let db = ok_json(app.get("/performance/database").await).await;
    assert!(db.to_string().contains("find_by_hashes") || db.to_string().contains("get_post"), "{db}");
    // The store's and the cache's series are on /metrics.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let text = app.metrics().await;
        let found =
            ["osprey_db_query_duration_seconds", "osprey_store_rows_written_total", "osprey_cache_requests_total"]
                .iter()
                .all(|name| text.contains(name));
        if found {
            break;
        }
        // The cache publishes its counters once a second.
        assert!(Instant::now() < deadline, "store and cache series missing from /metrics");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bad = app.post_json("/performance/cache/clear", json!({ "tier": "l3" })).await;
    assert_eq!(bad.status(), 422);
    let doc = ok_json(app.get("/openapi.json").await).await;
    for path in ["/v1/posts", "/v1/posts/{id}", "/v1/analyses/{id}", "/v1/stats/emotions", "/performance/cache/stats"] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from OpenAPI");
    }
}
