//! A real HTTP server on 127.0.0.1:0 (axum, in its own runtime thread) with
//! routes that answer fast, slowly, with errors, on demand, or stall once;
//! and helpers that run the load tester against it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use osprey_lab::load::{Console, LoadCommand, Report, RunArgs, RunSpec};
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};

#[derive(Default)]
pub struct Stall {
    first: Option<Instant>,
    until: Option<Instant>,
}

pub struct AppState {
    /// Requests received, all routes.
    pub received: AtomicU64,
    pub paused: watch::Sender<bool>,
    pub stall: Mutex<Stall>,
    /// Bodies received by `/echo` (bounded by the tests' request counts).
    pub bodies: Mutex<Vec<Value>>,
    pub by_path: Mutex<std::collections::BTreeMap<String, u64>>,
}

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub state: Arc<AppState>,
    _shutdown: oneshot::Sender<()>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
    pub fn received(&self) -> u64 {
        self.state.received.load(Ordering::SeqCst)
    }
    pub fn pause(&self, on: bool) {
        self.state.paused.send_replace(on);
    }
}

fn count(s: &AppState, path: &str) {
    s.received.fetch_add(1, Ordering::SeqCst);
    *s.by_path.lock().expect("lock").entry(path.to_string()).or_default() += 1;
}

async fn fast(State(s): State<Arc<AppState>>) -> &'static str {
    count(&s, "/fast");
    "ok"
}

async fn slow(State(s): State<Arc<AppState>>) -> &'static str {
    count(&s, "/slow");
    tokio::time::sleep(Duration::from_millis(50)).await;
    "slow"
}

async fn error(State(s): State<Arc<AppState>>) -> StatusCode {
    count(&s, "/error");
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn pausable(State(s): State<Arc<AppState>>) -> &'static str {
    count(&s, "/pausable");
    let mut rx = s.paused.subscribe();
    let _ = rx.wait_for(|p| !*p).await;
    "resumed"
}

/// Stalls every request for the 500 ms after the first request that arrives 500 ms into the test.
async fn stall_once(State(s): State<Arc<AppState>>) -> &'static str {
    count(&s, "/stall-once");
    let wait = {
        let mut st = s.stall.lock().expect("lock");
        let now = Instant::now();
        let first = *st.first.get_or_insert(now);
        if st.until.is_none() && now.duration_since(first) >= Duration::from_millis(500) {
            st.until = Some(now + Duration::from_millis(500));
        }
        st.until.filter(|u| *u > now)
    };
    if let Some(u) = wait {
        tokio::time::sleep_until(u.into()).await;
    }
    "ok"
}

async fn json_route(State(s): State<Arc<AppState>>) -> Json<Value> {
    count(&s, "/json");
    Json(json!({"results": [{"label": "joy", "score": 0.9}]}))
}

async fn timing(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    count(&s, "/timing");
    let mut h = HeaderMap::new();
    h.insert(
        "server-timing",
        "queue;dur=1.2, tokenize;dur=0.3, inference;dur=4.0, total;dur=5.8".parse().expect("header"),
    );
    (h, "timed")
}

/// Accepts JSON only; remembers it.
async fn echo(State(s): State<Arc<AppState>>, body: axum::body::Bytes) -> Result<Json<Value>, StatusCode> {
    count(&s, "/echo");
    let v: Value = serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
    s.bodies.lock().expect("lock").push(v.clone());
    Ok(Json(json!({"results": [{"label": "neutral"}], "echo": v})))
}

/// Checks a body against a shape: `required` keys present, nothing else allowed.
fn strict(v: &Value, required: &[&str], allowed: &[&str]) -> bool {
    let Some(obj) = v.as_object() else { return false };
    required.iter().all(|k| obj.contains_key(*k))
        && obj.keys().all(|k| required.contains(&k.as_str()) || allowed.contains(&k.as_str()))
}

fn texts(v: &Value) -> Option<usize> {
    match &v["inputs"] {
        Value::String(_) => Some(1),
        Value::Array(a) if a.iter().all(Value::is_string) && !a.is_empty() => Some(a.len()),
        _ => None,
    }
}

/// osprey's routes, with its request shapes enforced (unknown fields refused, as osprey does).
fn fake_osprey() -> Router<Arc<AppState>> {
    async fn embed(State(s): State<Arc<AppState>>, Json(v): Json<Value>) -> Result<Json<Value>, StatusCode> {
        count(&s, "/embed");
        let n =
            texts(&v).filter(|_| strict(&v, &["inputs"], &["normalize", "truncate", "truncation_direction", "chunk"]));
        let n = n.ok_or(StatusCode::BAD_REQUEST)?;
        Ok(Json(json!(vec![vec![0.1f32, 0.2, 0.3]; n])))
    }
    async fn sentiment(State(s): State<Arc<AppState>>, Json(v): Json<Value>) -> Result<Json<Value>, StatusCode> {
        count(&s, "/v1/sentiment");
        let n = texts(&v).filter(|_| strict(&v, &["inputs"], &[])).ok_or(StatusCode::BAD_REQUEST)?;
        Ok(Json(
            json!({"results": vec![json!({"compound": 0.5, "pos": 0.5, "neu": 0.5, "neg": 0.0, "label": "positive"}); n]}),
        ))
    }
    async fn emotion(State(s): State<Arc<AppState>>, Json(v): Json<Value>) -> Result<Json<Value>, StatusCode> {
        count(&s, "/v1/emotion");
        let n = texts(&v).filter(|_| strict(&v, &["inputs"], &["emotion"])).ok_or(StatusCode::BAD_REQUEST)?;
        Ok(Json(json!({"results": vec![json!({"label": "joy", "score": 0.8, "scores": {}, "path": "lexicon"}); n]})))
    }
    async fn analyze(State(s): State<Arc<AppState>>, Json(v): Json<Value>) -> Result<Json<Value>, StatusCode> {
        count(&s, "/v1/analyze");
        let allowed =
            ["topic_set", "threshold", "summary_k", "summary_method", "smoothing", "emotion", "store", "reuse"];
        if !strict(&v, &["posts", "tasks"], &allowed) {
            return Err(StatusCode::BAD_REQUEST);
        }
        let posts = v["posts"].as_array().ok_or(StatusCode::BAD_REQUEST)?;
        let post_fields = ["title", "body", "author", "created", "persona_id", "source", "external_id"];
        if posts.is_empty() || !posts.iter().all(|p| strict(p, &["id"], &post_fields) && p["id"].is_string()) {
            return Err(StatusCode::BAD_REQUEST);
        }
        let tasks = v["tasks"].as_array().ok_or(StatusCode::BAD_REQUEST)?;
        let known = ["sentiment", "emotion", "trajectory", "summary", "topics"];
        if tasks.is_empty() || !tasks.iter().all(|t| t.as_str().is_some_and(|t| known.contains(&t))) {
            return Err(StatusCode::UNPROCESSABLE_ENTITY);
        }
        let results: Vec<Value> = posts
            .iter()
            .map(|p| {
                json!({"id": p["id"], "segments": 2, "sentiment": {"label": "neutral", "compound": 0.0, "pos": 0.0, "neu": 1.0, "neg": 0.0},
                       "emotion": {"label": "neutral", "score": 0.5, "scores": {}, "path": "lexicon"}, "cached": false})
            })
            .collect();
        Ok(Json(json!({"results": results, "embedded_sentences": 2})))
    }
    Router::new()
        .route("/embed", post(embed))
        .route("/v1/sentiment", post(sentiment))
        .route("/v1/emotion", post(emotion))
        .route("/v1/analyze", post(analyze))
}

/// Starts the test server on 127.0.0.1:0.
pub fn spawn_app() -> TestApp {
    let state = Arc::new(AppState {
        received: AtomicU64::new(0),
        paused: watch::channel(false).0,
        stall: Mutex::new(Stall::default()),
        bodies: Mutex::new(Vec::new()),
        by_path: Mutex::new(Default::default()),
    });
    let router = Router::new()
        .route("/fast", get(fast))
        .route("/slow", get(slow))
        .route("/error", get(error))
        .route("/pausable", get(pausable))
        .route("/stall-once", get(stall_once))
        .route("/json", get(json_route))
        .route("/timing", get(timing))
        .route("/echo", post(echo))
        .merge(fake_osprey())
        .with_state(state.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let server = axum::serve(listener, router);
            tokio::select! {
                _ = server => {}
                _ = rx => {}
            }
        });
    });
    TestApp { addr, state, _shutdown: tx }
}

#[derive(Debug, clap::Parser)]
struct Cli {
    #[command(flatten)]
    load: LoadCommand,
}

/// Parses `osprey load` flags the way the command line does.
pub fn command(argv: &[&str]) -> LoadCommand {
    let mut full = vec!["osprey-load"];
    full.extend_from_slice(argv);
    Cli::try_parse_from(full).expect("flags parse").load
}

/// Parses flags into run arguments (single threaded unless `--threads` is given).
pub fn args(argv: &[&str]) -> RunArgs {
    let mut run = command(argv).run;
    run.threads = run.threads.or(Some(1));
    run
}

/// Runs a load test quietly and returns its report.
pub fn run_load(argv: &[&str]) -> Report {
    run_args(&args(argv))
}

pub fn run_args(a: &RunArgs) -> Report {
    let spec = RunSpec::from_args(a).expect("valid run");
    osprey_lab::load::execute(&spec, &Console::quiet()).expect("run completes")
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}
