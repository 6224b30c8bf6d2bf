//! Graceful shutdown, end to end: a real server on a loopback port is told to
//! stop through `run_with_shutdown`, and the test watches what clients see
//! during each step (see `osprey_server::lifecycle`).

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use osprey_server::{Application, Settings};
use serde_json::{json, Value};

use helpers::{model_dir, test_settings, ADMIN_TOKEN};

/// A started server, the sender that stops it and its running future.
struct Running {
    base: String,
    port: u16,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
    state: osprey_server::AppState,
}

async fn start(settings: Settings) -> Running {
    let app = Application::build(settings).await.expect("build app");
    let (port, state) = (app.port(), app.state().clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.run_with_shutdown(async move {
        let _ = stopped.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(120);
    let ready = || state.registry.readiness().and_then(|()| state.analyzer.readiness());
    while ready().is_err() {
        assert!(Instant::now() < deadline, "server never became ready: {:?}", ready());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Running { base: format!("http://127.0.0.1:{port}"), port, stop, served, state }
}

/// A request whose headers and first half of body are sent now; the rest
/// goes when [`Upload::finish`] is called, so the server holds it in flight
/// for as long as the test wants.
struct Upload {
    stream: std::net::TcpStream,
    rest: Vec<u8>,
}

impl Upload {
    fn begin(port: u16, path: &str, body: &Value) -> Upload {
        let body = serde_json::to_vec(body).expect("json");
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let half = body.len() / 2;
        stream.write_all(head.as_bytes()).expect("send head");
        stream.write_all(&body[..half]).expect("send half");
        stream.flush().expect("flush");
        Upload { stream, rest: body[half..].to_vec() }
    }

    /// Sends the rest of the body and reads the response's status and body.
    fn finish(mut self) -> (u16, String) {
        self.stream.write_all(&self.rest).expect("send rest");
        let mut raw = Vec::new();
        // Responses of this server carry a length; read until it is all here.
        let mut chunk = [0u8; 8192];
        loop {
            let n = self.stream.read(&mut chunk).expect("read");
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&chunk[..n]);
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)));
                if len.is_some_and(|len| raw.len() >= end + 4 + len) {
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&raw).to_string();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }
}

fn refused(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_drains_then_finishes_in_flight_work_and_the_store() {
    let Some(model) = model_dir() else { return };
    let mut settings = test_settings(&model);
    settings.server.drain_delay = Duration::from_secs(3);
    settings.server.shutdown_timeout = Duration::from_secs(20);
    // Nothing is written before close: only the shutdown's drain can store it.
    settings.store.writer.max_delay = Duration::from_secs(60);
    let data_dir = settings.server.data_dir.clone();
    let store_settings = settings.store.clone();
    let app = start(settings).await;
    let client = reqwest::Client::new();
    let admin = |rb: reqwest::RequestBuilder| rb.bearer_auth(ADMIN_TOKEN);

    // A record queued for the store's writer, not yet written.
    let post =
        json!({ "id": "lifecycle-1", "title": "Shutting down", "body": "Everything queued is kept. I am glad." });
    let r = admin(client.post(format!("{}/v1/analyze", app.base)))
        .json(&json!({ "posts": [post], "tasks": ["sentiment"], "store": true }))
        .send()
        .await
        .expect("analyze");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());

    // A background task on the tracker, which stops when the token fires.
    let finished = Arc::new(AtomicBool::new(false));
    let (token, done) = (app.state.lifecycle.shutdown_token(), Arc::clone(&finished));
    app.state.lifecycle.tracker().spawn(async move {
        token.cancelled().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        done.store(true, Ordering::SeqCst);
    });

    // A request in flight across the whole shutdown: its body is half sent.
    let texts: Vec<String> = (0..32).map(|i| format!("In-flight text number {i} is perfectly fine.")).collect();
    let upload = Upload::begin(app.port, "/v1/sentiment", &json!({ "inputs": texts }));
    // And a keep-alive client that will be told to go away.
    let keepalive = reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("client");
    assert_eq!(keepalive.get(format!("{}/health", app.base)).send().await.expect("health").status(), 200);

    let signalled = Instant::now();
    app.stop.send(()).expect("signal");
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Draining: not ready, still alive, still serving, and telling
    // keep-alive clients to close.
    let ready = client.get(format!("{}/ready", app.base)).send().await.expect("ready while draining");
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(
        (body["error"]["code"].as_str(), body["error"]["message"].as_str()),
        (Some("not_ready"), Some("draining"))
    );
    let health = keepalive.get(format!("{}/health", app.base)).send().await.expect("health while draining");
    assert_eq!(health.status(), 200);
    assert_eq!(health.headers().get("connection").and_then(|v| v.to_str().ok()), Some("close"));
    let served = admin(client.post(format!("{}/v1/sentiment", app.base)))
        .json(&json!({ "inputs": ["Still answering while draining."] }))
        .send()
        .await
        .expect("sentiment while draining");
    assert_eq!(served.status(), 200);
    assert!(signalled.elapsed() < Duration::from_secs(3), "the checks above ran within the drain delay");

    // After the delay the listener closes, with the upload still in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !refused(app.port) {
        assert!(Instant::now() < deadline, "the listener never closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(signalled.elapsed() >= Duration::from_secs(3), "closed before the drain delay ended");
    assert!(!app.served.is_finished(), "the server waits for the request in flight");
    let (status, body) = tokio::task::spawn_blocking(move || upload.finish()).await.expect("upload");
    assert_eq!(status, 200, "{body}");
    let results: Value = serde_json::from_str(&body).expect("json body");
    assert_eq!(results["results"].as_array().map(Vec::len), Some(32));

    // The whole shutdown ends well within its deadline.
    let outcome =
        tokio::time::timeout(Duration::from_secs(25), app.served).await.expect("shutdown within the deadline");
    outcome.expect("task").expect("served cleanly");
    assert!(finished.load(Ordering::SeqCst), "shutdown waited for the tracked task");

    // The queued record was written by the shutdown.
    let store = osprey_store::Store::open(&store_settings, &data_dir).await.expect("reopen store");
    let stored = store.get_post("lifecycle-1").await.expect("read").expect("the queued post was stored");
    assert!(!stored.analyses.is_empty(), "its analysis was stored too");
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_that_never_finishes_does_not_hold_shutdown_past_its_timeout() {
    let Some(model) = model_dir() else { return };
    let mut settings = test_settings(&model);
    settings.server.drain_delay = Duration::ZERO;
    settings.server.shutdown_timeout = Duration::from_secs(1);
    let app = start(settings).await;
    // Half a body, never completed.
    let stuck = Upload::begin(app.port, "/v1/sentiment", &json!({ "inputs": ["never finished"] }));
    // And a tracked task that ignores the token.
    app.state.lifecycle.tracker().spawn(tokio::time::sleep(Duration::from_secs(3600)));
    let signalled = Instant::now();
    app.stop.send(()).expect("signal");
    let outcome = tokio::time::timeout(Duration::from_secs(15), app.served).await.expect("shutdown gave up waiting");
    outcome.expect("task").expect("served");
    let took = signalled.elapsed();
    assert!(took >= Duration::from_secs(1), "waited for the request until the timeout: {took:?}");
    assert!(refused(app.port));
    drop(stuck);
}
