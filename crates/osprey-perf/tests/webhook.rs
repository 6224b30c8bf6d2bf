//! Webhook delivery against a real HTTP server on 127.0.0.1 (port 0): retries
//! on 5xx, `Retry-After` on 429, no retry on 400, giving up, dropping when
//! the queue is full.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use osprey_perf::{
    AlertEngine, AlertRule, AlertSettings, Comparison, EventKind, Severity, Signals, WebhookSettings, WebhookStats,
};
use serde_json::Value;

/// How the test endpoint answers its n-th request (0-based).
type Script = Arc<dyn Fn(usize) -> (StatusCode, Option<&'static str>) + Send + Sync>;

#[derive(Clone)]
struct Hook {
    script: Script,
    received: Arc<Mutex<Vec<(Instant, String, Value)>>>,
}

impl Hook {
    fn received(&self) -> Vec<(Instant, String, Value)> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

async fn handle(
    State(hook): State<Hook>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    Json(body): Json<Value>,
) -> (StatusCode, HeaderMap) {
    let n = {
        let mut received = hook.received.lock().unwrap_or_else(|e| e.into_inner());
        received.push((Instant::now(), query.unwrap_or_default(), body));
        received.len() - 1
    };
    let (status, retry_after) = (hook.script)(n);
    let mut headers = HeaderMap::new();
    if let Some(secs) = retry_after {
        headers.insert("retry-after", HeaderValue::from_static(secs));
    }
    (status, headers)
}

/// Serves `script` on an ephemeral port; returns the webhook URL (with a
/// secret in its query string) and the recorder.
async fn spawn_hook(
    script: impl Fn(usize) -> (StatusCode, Option<&'static str>) + Send + Sync + 'static,
) -> (String, Hook) {
    let hook = Hook { script: Arc::new(script), received: Arc::default() };
    let app = Router::new().route("/hooks/alerts", post(handle)).with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hooks/alerts?token=s3cret"), hook)
}

fn settings(url: String, max_attempts: u32) -> AlertSettings {
    AlertSettings {
        rules: vec![AlertRule {
            name: "queue_saturated".into(),
            signal: "queue_saturation_percent".into(),
            description: String::new(),
            comparison: Comparison::Above,
            raise: 90.0,
            clear: 70.0,
            hold: Duration::ZERO,
            window: Duration::from_secs(1),
            severity: Severity::Critical,
            enabled: true,
        }],
        webhook: Some(WebhookSettings {
            url,
            timeout: Duration::from_secs(2),
            max_attempts,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_secs(2),
            queue_capacity: 16,
        }),
        ..AlertSettings::default()
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(1_700_000_000 + secs)
}

fn queue(value: f64) -> Signals {
    [("queue_saturation_percent".to_string(), value)].into_iter().collect()
}

/// Polls the stats until `done` or 10 s.
async fn wait_for(engine: &AlertEngine, done: impl Fn(&WebhookStats) -> bool) -> WebhookStats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = engine.webhook_stats();
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn retries_5xx_until_accepted_and_posts_the_event() {
    let (url, hook) =
        spawn_hook(|n| if n < 2 { (StatusCode::SERVICE_UNAVAILABLE, None) } else { (StatusCode::OK, None) }).await;
    let engine = AlertEngine::new(settings(url, 5)).expect("valid settings");
    let task = engine.spawn_webhook().expect("webhook configured");
    assert!(engine.spawn_webhook().is_none(), "only one delivery task");

    let events = engine.observe(at(0), &queue(95.0));
    assert_eq!(events.len(), 1);
    let stats = wait_for(&engine, |s| s.delivered == 1).await;
    assert_eq!(stats, WebhookStats { delivered: 1, failed: 0, retried: 2, dropped: 0 });

    let received = hook.received();
    assert_eq!(received.len(), 3);
    assert_eq!(received[0].1, "token=s3cret", "the URL is used as given");
    let body = &received[2].2;
    assert_eq!(body["kind"], "raised");
    assert_eq!(body["rule"], "queue_saturated");
    assert_eq!(body["signal"], "queue_saturation_percent");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["value"], 95.0);
    assert_eq!(body["threshold"], 90.0);
    assert_eq!(body["alert_id"], events[0].alert_id);
    assert_eq!(body["source"], "osprey");
    let sent_at: DateTime<Utc> = serde_json::from_value(body["at"].clone()).expect("RFC 3339 time");
    assert_eq!(sent_at, at(0));

    // The clear follows, in order.
    let cleared = engine.observe(at(1), &queue(10.0));
    assert_eq!(cleared[0].kind, EventKind::Cleared);
    wait_for(&engine, |s| s.delivered == 2).await;
    assert_eq!(hook.received().last().map(|r| r.2["kind"].clone()), Some(Value::from("cleared")));

    drop(engine);
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("task ends with the engine").expect("no panic");
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let (url, hook) =
        spawn_hook(
            |n| {
                if n == 0 {
                    (StatusCode::TOO_MANY_REQUESTS, Some("1"))
                } else {
                    (StatusCode::NO_CONTENT, None)
                }
            },
        )
        .await;
    let engine = AlertEngine::new(settings(url, 3)).expect("valid settings");
    let _task = engine.spawn_webhook();
    engine.observe(at(0), &queue(95.0));
    let stats = wait_for(&engine, |s| s.delivered == 1).await;
    assert_eq!((stats.delivered, stats.retried), (1, 1));
    let received = hook.received();
    assert_eq!(received.len(), 2);
    let gap = received[1].0 - received[0].0;
    // The computed backoff would be 10–20 ms; Retry-After asks for 1 s.
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
}

#[tokio::test]
async fn does_not_retry_400() {
    let (url, hook) = spawn_hook(|_| (StatusCode::BAD_REQUEST, None)).await;
    let engine = AlertEngine::new(settings(url, 5)).expect("valid settings");
    let _task = engine.spawn_webhook();
    engine.observe(at(0), &queue(95.0));
    let stats = wait_for(&engine, |s| s.failed == 1).await;
    assert_eq!(stats, WebhookStats { delivered: 0, failed: 1, retried: 0, dropped: 0 });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hook.received().len(), 1);
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let (url, hook) = spawn_hook(|_| (StatusCode::BAD_GATEWAY, None)).await;
    let engine = AlertEngine::new(settings(url, 3)).expect("valid settings");
    let _task = engine.spawn_webhook();
    engine.observe(at(0), &queue(95.0));
    let stats = wait_for(&engine, |s| s.failed == 1).await;
    assert_eq!(stats, WebhookStats { delivered: 0, failed: 1, retried: 2, dropped: 0 });
    assert_eq!(hook.received().len(), 3);
}

#[tokio::test]
async fn retries_connection_errors() {
    // A port nothing listens on.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    let engine = AlertEngine::new(settings(format!("http://{addr}/hook"), 3)).expect("valid settings");
    let _task = engine.spawn_webhook();
    engine.observe(at(0), &queue(95.0));
    let stats = wait_for(&engine, |s| s.failed == 1).await;
    assert_eq!(stats, WebhookStats { delivered: 0, failed: 1, retried: 2, dropped: 0 });
}

#[tokio::test]
async fn drops_events_beyond_the_queue_capacity() {
    let mut settings = settings("http://127.0.0.1:9/hook".into(), 1);
    if let Some(w) = settings.webhook.as_mut() {
        w.queue_capacity = 2;
    }
    let engine = AlertEngine::new(settings).expect("valid settings");
    // Not spawned: nothing drains the queue.
    for i in 0..5 {
        engine.observe(at(2 * i), &queue(95.0));
        engine.observe(at(2 * i + 1), &queue(10.0));
    }
    assert_eq!(engine.webhook_stats().dropped, 8, "10 events, 2 queued");
    assert_eq!(engine.history().len(), 5, "dropping deliveries never loses history");
}
