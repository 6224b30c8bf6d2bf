//! The performance API end to end: health, stats, resources, memory,
//! tasks, alerts (raised by a rule forced low, delivered to a webhook on a
//! loopback port), recommendations, the live event stream, run-time config
//! with its audit log, and the metrics the monitors export.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use osprey_perf::{AlertRule, Comparison, Severity};
use serde_json::{json, Value};

use crate::helpers::{model_dir, spawn_app, temp_dir, test_settings, TestApp};

async fn ok_json(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let body: Value = resp.json().await.expect("json body");
    assert_eq!(status, 200, "{body}");
    body
}

/// A rule on the all-routes p95 that any request breaks.
fn forced_rule() -> AlertRule {
    AlertRule {
        name: "latency_p95_high".into(),
        signal: "latency_p95_ms".into(),
        description: "forced low for the test".into(),
        comparison: Comparison::Above,
        raise: 0.000_1,
        clear: 0.000_05,
        hold: Duration::ZERO,
        window: Duration::from_secs(5),
        severity: Severity::Warning,
        enabled: true,
    }
}

/// A webhook receiver on 127.0.0.1 that keeps every body it is sent.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let sink = Arc::clone(&sink);
            async move {
                sink.lock().expect("lock").push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

async fn traffic(app: &TestApp, n: usize) {
    for i in 0..n {
        let r = app.post_json("/embed", json!({ "inputs": [format!("traffic number {i} for the monitors")] })).await;
        assert_eq!(r.status(), 200);
    }
}

async fn until<F, Fut>(what: &str, secs: u64, mut check: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} did not happen within {secs} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_forced_alert_is_raised_listed_delivered_and_explained() {
    let Some(model) = model_dir() else { return };
    let (hook, received) = webhook_receiver().await;
    let mut settings = test_settings(&model);
    settings.alerts.rules = vec![forced_rule()];
    settings.alerts.webhook = Some(osprey_perf::WebhookSettings { url: hook, ..Default::default() });
    settings.telemetry.live_interval = Duration::from_millis(200);
    let app = spawn_app(settings);
    traffic(&app, 5).await;

    let alerts = until("alert raised", 20, || async {
        let a = ok_json(app.get("/performance/alerts").await).await;
        let active = a["active"].as_array().is_some_and(|l| l.iter().any(|x| x["rule"] == "latency_p95_high"));
        active.then_some(a)
    })
    .await;
    let hist = alerts["history"].as_array().expect("history");
    assert!(hist.iter().any(|h| h["rule"] == "latency_p95_high" && h["ended_at"].is_null()), "{alerts}");
    assert!(alerts["rules"].as_array().expect("rules").iter().any(|r| r["state"] == "firing"));

    until("webhook delivery", 20, || async {
        let got = received.lock().expect("lock").clone();
        got.iter()
            .find(|b| b["kind"] == "raised" && b["rule"] == "latency_p95_high" && b["source"] == "osprey")
            .cloned()
    })
    .await;

    let recs = ok_json(app.get("/performance/recommendations").await).await;
    let list = recs["recommendations"].as_array().expect("list");
    let rec = list.iter().find(|r| r["evidence"]["rule"] == "latency_p95_high").expect("a recommendation for it");
    assert_eq!(rec["setting"], "batching.max_batch_tokens");
    assert_eq!(rec["priority"], "high");

    // Raising the threshold through the config API clears it.
    let mut rule = forced_rule();
    rule.raise = 60_000.0;
    rule.clear = 50_000.0;
    let put = app.client().put(app.url("/performance/config")).json(&json!({ "alert_rules": [rule] })).send().await;
    ok_json(put.expect("put")).await;
    until("alert cleared", 20, || async {
        let a = ok_json(app.get("/performance/alerts").await).await;
        a["active"].as_array().is_some_and(Vec::is_empty).then_some(a)
    })
    .await;
}

#[tokio::test]
async fn the_live_stream_sends_history_then_snapshots() {
    let Some(model) = model_dir() else { return };
    let mut settings = test_settings(&model);
    settings.telemetry.live_interval = Duration::from_millis(200);
    let app = spawn_app(settings);
    traffic(&app, 3).await;
    let mut resp = app.client().get(app.url("/performance/live")).send().await.expect("live");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().expect("ascii").starts_with("text/event-stream"));
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while text.matches("event: snapshot").count() < 2 {
        assert!(Instant::now() < deadline, "no snapshots: {text}");
        let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await.expect("a chunk in time");
        text.push_str(&String::from_utf8_lossy(&chunk.expect("chunk").expect("stream open")));
    }
    assert!(text.starts_with("event: hello\n"), "{text}");
    let snapshot: Value = text
        .split("event: snapshot\ndata: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .map(|line| serde_json::from_str(line).expect("snapshot json"))
        .expect("a snapshot");
    for key in ["ts_ms", "http", "queue", "cache", "system", "process", "models", "gauges", "alerts"] {
        assert!(snapshot.get(key).is_some(), "snapshot lacks {key}: {snapshot}");
    }
    assert!(snapshot["http"]["requests_total"].as_u64().unwrap_or(0) >= 3, "{snapshot}");
    assert!(snapshot["system"]["cpu_percent"].is_number(), "{snapshot}");
    assert_eq!(snapshot["models"][0]["status"], "ready");
}

#[tokio::test]
async fn health_stats_resources_memory_and_tasks_describe_the_server() {
    let Some(model) = model_dir() else { return };
    let app = spawn_app(test_settings(&model));
    traffic(&app, 4).await;

    let health = ok_json(app.get("/performance/health").await).await;
    assert_eq!(health["status"], "ok", "{health}");
    for c in ["model", "analysis", "storage", "cache_l1", "cache_l2", "queue", "alerts"] {
        assert_eq!(health["components"][c]["status"], "ok", "{c}: {health}");
    }

    let stats = until("the embed route in the stats", 10, || async {
        let s = ok_json(app.get("/performance/stats").await).await;
        let has = s["operations"].as_array().is_some_and(|ops| {
            ops.iter().any(|o| o["kind"] == "route" && o["name"] == "POST /embed" && o["total"].as_u64() >= Some(4))
        });
        has.then_some(s)
    })
    .await;
    let ops = stats["operations"].as_array().expect("ops");
    let embed = ops.iter().find(|o| o["name"] == "POST /embed").expect("embed op");
    let m1 = &embed["windows"]["1m"];
    assert!(m1["count"].as_u64() >= Some(4) && m1["p95_ms"].as_f64() > Some(0.0), "{embed}");
    assert!(ops.iter().any(|o| o["kind"] == "model" && o["total"].as_u64() > Some(0)), "model passes are timed");
    assert!(ops.iter().any(|o| o["kind"] == "stage" && o["name"] == "tokenize"), "stages are timed");

    let res = until("a resource sample", 10, || async {
        let r = ok_json(app.get("/performance/system/resources").await).await;
        (!r["latest"].is_null()).then_some(r)
    })
    .await;
    assert!(res["latest"]["cpu"]["cores"].as_u64() >= Some(1), "{res}");
    assert!(res["latest"]["process"]["rss_bytes"].as_u64() > Some(0));
    let bad = app.get("/performance/system/resources?resolution=hourly").await;
    assert_eq!(bad.status(), 422);

    let mem = ok_json(app.get("/performance/memory").await).await;
    assert!(mem["process"]["rss_bytes"].as_u64() > Some(0), "{mem}");
    assert!(mem["models"][0]["weight_bytes"].as_u64() > Some(0));
    let cleanup = ok_json(
        app.client()
            .post(app.url("/performance/memory/cleanup"))
            .json(&json!({ "clear_l1": true }))
            .send()
            .await
            .expect("cleanup"),
    )
    .await;
    assert_eq!(cleanup["cache_l1"]["entries_after"], 0, "{cleanup}");
    assert!(cleanup["rss_after_bytes"].as_u64() > Some(0));
    let refused =
        app.client().post(app.url("/performance/memory/cleanup")).json(&json!({ "idle_for": "1s" })).send().await;
    assert_eq!(refused.expect("send").status(), 422);

    let tasks = ok_json(app.get("/performance/tasks").await).await;
    assert!(tasks["model"]["completed"].as_u64() >= Some(4), "{tasks}");
    assert_eq!(tasks["model"]["rejected"], 0);

    let metrics = app.metrics().await;
    for name in [
        "osprey_system_cpu_usage_percent",
        "osprey_system_memory_used_bytes",
        "osprey_system_disk_free_bytes",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}");
    }
}

#[tokio::test]
async fn runtime_config_changes_are_validated_applied_and_audited() {
    let Some(model) = model_dir() else { return };
    let mut settings = test_settings(&model);
    let audit = temp_dir("audit").join("audit.log");
    settings.telemetry.audit_log = Some(audit.clone());
    let app = spawn_app(settings);
    let put = |body: Value| {
        let (c, url) = (app.client(), app.url("/performance/config"));
        async move { c.put(url).json(&body).send().await.expect("put") }
    };
    // Unknown keys and bad values are refused and change nothing.
    assert_eq!(
        put(json!({ "batching": { "max_batch_tokens": 4096, "max_batch_requests": 8 }, "colour": 1 })).await.status(),
        400
    );
    assert_eq!(put(json!({ "batching": { "max_batch_tokens": 0, "max_batch_requests": 8 } })).await.status(), 422);
    assert_eq!(put(json!({ "cache_l1": { "max_entries": 0 } })).await.status(), 422);
    assert_eq!(put(json!({ "rate_limit": { "requests_per_second": -1.0 } })).await.status(), 422);
    assert!(!audit.exists(), "refused changes are not audited");

    let changed = ok_json(
        put(json!({
            "batching": { "max_batch_tokens": 4096, "max_batch_requests": 8 },
            "cache_l1": { "max_bytes": 1048576, "max_entries": 1000 },
            "rate_limit": { "requests_per_second": 50.0, "burst": 10 },
        }))
        .await,
    )
    .await;
    assert_eq!(changed["changes"]["batching"]["to"]["max_batch_tokens"], 4096, "{changed}");
    assert_eq!(changed["tunable"]["batching"]["max_batch_requests"], 8);
    assert_eq!(changed["tunable"]["cache_l1"]["max_entries"], 1000);
    let engine = app.registry.loaded("default").expect("loaded");
    assert_eq!(engine.batch_limits().max_batch_requests, 8, "the running batcher took the new limit");
    let info = ok_json(app.get("/info").await).await;
    assert_eq!(
        (info["max_batch_tokens"].as_u64(), info["max_batch_requests"].as_u64()),
        (Some(4096), Some(8)),
        "{info}"
    );
    // The server still answers with the new limits.
    traffic(&app, 2).await;

    let got = ok_json(app.get("/performance/config").await).await;
    assert_eq!(got["tunable"]["rate_limit"]["burst"], 10);
    assert_eq!(got["audit"][0]["actor"], "admin-token");
    let lines = std::fs::read_to_string(&audit).expect("audit log written");
    let record: Value = serde_json::from_str(lines.lines().next().expect("a line")).expect("json line");
    assert_eq!(record["actor"], "admin-token");
    assert_eq!(record["changes"]["security.rate_limit"]["to"]["burst"], 10);
    // A PUT that changes nothing adds no record.
    ok_json(put(json!({ "rate_limit": { "requests_per_second": 50.0, "burst": 10 } })).await).await;
    assert_eq!(std::fs::read_to_string(&audit).expect("audit").lines().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_config_changes_apply_one_after_the_other() {
    let Some(model) = model_dir() else { return };
    let mut settings = test_settings(&model);
    let audit = temp_dir("audit-concurrent").join("audit.log");
    settings.telemetry.audit_log = Some(audit.clone());
    let app = spawn_app(settings);
    let puts = (1..=24).map(|i| {
        let (c, url) = (app.client(), app.url("/performance/config"));
        tokio::spawn(async move {
            let body = json!({ "cache_l1": { "max_bytes": 1048576, "max_entries": 1000 + i } });
            c.put(url).json(&body).send().await.expect("put").status()
        })
    });
    for status in futures::future::join_all(puts).await {
        assert_eq!(status.expect("task"), 200);
    }
    // Each record starts from what the one before it left: no change was
    // audited against settings another change had already replaced.
    let text = std::fs::read_to_string(&audit).expect("audit log written");
    let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(records.len(), 24, "every PUT changed the L1 size");
    for pair in records.windows(2) {
        let (a, b) = (&pair[0]["changes"]["cache.l1"], &pair[1]["changes"]["cache.l1"]);
        assert_eq!(a["to"]["max_entries"], b["from"]["max_entries"], "{text}");
    }
    let last = &records[23]["changes"]["cache.l1"]["to"]["max_entries"];
    let now = ok_json(app.get("/performance/config").await).await;
    assert_eq!(&now["tunable"]["cache_l1"]["max_entries"], last, "the settings in force are the last record's");
}

#[tokio::test]
async fn redis_round_trips_are_timed_as_cache_operations() {
    let Some(model) = model_dir() else { return };
    let Some(redis) = crate::pg::redis_url() else { return };
    let mut settings = test_settings(&model);
    settings.cache.l2.url = Some(redis);
    settings.cache.l2.prefix = format!("osprey-observe-{}", std::process::id());
    let app = spawn_app(settings);
    // Emotion results are kept in both tiers: a miss asks Redis, then writes to it.
    for i in 0..3 {
        let r = app.post_json("/v1/emotion", json!({ "inputs": [format!("redis timing text {i}")] })).await;
        assert_eq!(r.status(), 200);
    }
    let stats = until("an L2 operation in the stats", 15, || async {
        let s = ok_json(app.get("/performance/stats").await).await;
        let has = s["operations"].as_array().is_some_and(|ops| {
            ops.iter().any(|o| o["kind"] == "cache" && o["name"].as_str().is_some_and(|n| n.starts_with("l2 ")))
        });
        has.then_some(s)
    })
    .await;
    let l2: Vec<&Value> =
        stats["operations"].as_array().expect("ops").iter().filter(|o| o["kind"] == "cache").collect();
    assert!(l2.iter().all(|o| o["windows"]["1m"]["p50_ms"].as_f64() > Some(0.0)), "{l2:?}");
}

#[tokio::test]
async fn responses_say_where_the_server_spent_the_time() {
    let Some(_) = model_dir() else { return };
    let app = crate::helpers::shared_app().expect("shared app");
    let r = app.post_json("/embed", json!({ "inputs": ["where did the time go"] })).await;
    assert_eq!(r.status(), 200);
    let header = r.headers().get("server-timing").expect("Server-Timing header").to_str().expect("ascii").to_string();
    let stages: Vec<(&str, f64)> = header
        .split(", ")
        .map(|part| {
            let (name, dur) = part.split_once(";dur=").expect("name;dur=ms");
            (name, dur.parse::<f64>().expect("milliseconds"))
        })
        .collect();
    let names: Vec<&str> = stages.iter().map(|(n, _)| *n).collect();
    for want in ["tokenize", "inference", "queue", "total"] {
        assert!(names.contains(&want), "{header}");
    }
    let total = stages.iter().find(|(n, _)| *n == "total").map_or(0.0, |s| s.1);
    let parts: f64 = stages.iter().filter(|(n, _)| *n != "total").map(|s| s.1).sum();
    assert!(parts <= total + 0.01, "stages {parts} ms exceed the total {total} ms: {header}");
    assert!(stages.iter().find(|(n, _)| *n == "inference").is_some_and(|s| s.1 > 0.0), "{header}");
}
