//! Batcher behaviour seen from HTTP: batches form under concurrency, the
//! admission limit answers 429 at once, deadlines expire, and a client that
//! disconnects is dropped from the queue.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{long_text, model_dir, spawn_app, test_settings};

fn counter(metrics: &str, name: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// Six chunked long texts (about sixty full-length sequences): a few seconds
/// of compute on 2 cores.
fn heavy_body() -> serde_json::Value {
    let texts: Vec<String> = (0..6).map(|i| format!("{i} {}", long_text(700))).collect();
    json!({"inputs": texts, "chunk": true})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_single_text_requests_are_batched() {
    let Some(model) = model_dir() else { return };
    let app = spawn_app(test_settings(&model));
    let before = app.batcher();
    let requests = 64;
    let mut tasks = Vec::new();
    for i in 0..requests {
        let (client, url) = (app.client(), app.url("/embed"));
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"inputs": format!("concurrent request number {i} about databases")}))
                .send()
                .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task").expect("response").status(), 200);
    }
    let after = app.batcher();
    let (rows, batches) = (after.sequences - before.sequences, after.batches - before.batches);
    assert_eq!(rows as usize, requests, "every request ran exactly once");
    assert!(batches < requests as u64 / 2, "{requests} concurrent requests ran in {batches} batches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_limit_answers_429_at_once_with_retry_after() {
    let Some(model) = model_dir() else { return };
    let mut settings = test_settings(&model);
    settings.batching.max_concurrent_requests = 1;
    settings.server.max_body_bytes = 2 * 1024 * 1024;
    let app = spawn_app(settings);
    let (client, url) = (app.client(), app.url("/embed"));
    let heavy = tokio::spawn(async move { client.post(url).json(&heavy_body()).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let r = app.post_json("/embed", json!({"inputs": "one more"})).await;
    let waited = started.elapsed();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "overloaded");
    assert!(waited < Duration::from_secs(2), "429 is immediate, not queued ({waited:?})");
    assert_eq!(heavy.await.expect("task").expect("response").status(), 200, "the admitted request completes");
    assert_eq!(app.post_json("/embed", json!({"inputs": "now there is room"})).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_their_deadline_get_503_timeout() {
    let Some(model) = model_dir() else { return };
    let mut settings = test_settings(&model);
    settings.batching.request_timeout = Duration::from_millis(200);
    settings.server.max_body_bytes = 2 * 1024 * 1024;
    let app = spawn_app(settings);
    let r = app.post_json("/embed", heavy_body()).await;
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "timeout");
    // The server still serves afterwards.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ok = false;
    for _ in 0..100 {
        if app.post_json("/embed", json!({"inputs": "still alive"})).await.status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "server recovers after timeouts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnected_clients_are_dropped_from_the_queue() {
    let Some(model) = model_dir() else { return };
    let mut settings = test_settings(&model);
    settings.server.max_body_bytes = 2 * 1024 * 1024;
    // Small batches so most of the heavy request is still queued when its client leaves.
    settings.batching.max_batch_requests = 4;
    let app = spawn_app(settings);
    let (client, url) = (app.client(), app.url("/embed"));
    let heavy = tokio::spawn(async move { client.post(url).json(&heavy_body()).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    heavy.abort();
    let _ = heavy.await;
    let mut stats = app.batcher();
    for _ in 0..100 {
        if app.batcher().queued == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        stats = app.batcher();
    }
    stats = if stats.queued == 0 { stats } else { app.batcher() };
    assert!(stats.dropped_disconnected > 0, "queued sequences of a disconnected client are dropped: {stats:?}");
    assert!(stats.sequences < 40, "the abandoned work was not all computed: {stats:?}");
    let m = app.metrics().await;
    assert!(counter(&m, "osprey_sequences_dropped_total", r#"reason="disconnected""#) > 0.0);
}
