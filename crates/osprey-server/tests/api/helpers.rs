//! `spawn_app`: starts osprey on 127.0.0.1:0 in a runtime of its own (so a
//! server can outlive the test that started it and be shared) and waits
//! until it is ready.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use osprey_server::{Application, Settings};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The default model, or `None` (after a loud message) when it has not been
/// fetched. Under `CI=true` a missing model fails the test.
pub fn model_dir() -> Option<PathBuf> {
    let dir = repo_root().join("models/all-MiniLM-L6-v2");
    if dir.join("model.safetensors").is_file() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("model missing at {}: run scripts/fetch-models", dir.display());
    }
    eprintln!("SKIPPED: model missing at {}; run scripts/fetch-models", dir.display());
    None
}

pub struct TestApp {
    pub base: String,
    pub registry: std::sync::Arc<osprey_engine::ModelRegistry>,
    pub analyzer: std::sync::Arc<osprey_server::analysis::Analyzer>,
}

impl TestApp {
    /// The default model's batcher totals.
    pub fn batcher(&self) -> osprey_engine::BatcherStats {
        self.registry.loaded("default").expect("model loaded").stats()
    }
}

impl TestApp {
    /// A client of the calling test's own: pooled connections are bound to
    /// the runtime that opened them, and each test has its own runtime. It
    /// presents the test servers' admin token, so it may call every route
    /// (the security tests use [`TestApp::anonymous`]).
    pub fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        let bearer = format!("Bearer {ADMIN_TOKEN}");
        headers.insert(reqwest::header::AUTHORIZATION, bearer.parse().expect("header value"));
        reqwest::Client::builder().default_headers(headers).build().expect("client")
    }

    /// A client with no credential.
    pub fn anonymous(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client().post(self.url(path)).json(&body).send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client().get(self.url(path)).send().await.expect("request")
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.expect("metrics body")
    }
}

/// The admin token of every test server.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Settings for a test server: port 0, the repo's model, small limits, an
/// admin token, no rate limits (the rate-limit tests set their own).
pub fn test_settings(model: &std::path::Path) -> Settings {
    let mut s = Settings::default();
    s.server.bind = "127.0.0.1:0".into();
    s.model.model = model.display().to_string();
    s.model.warmup_passes = 1;
    s.server.max_body_bytes = 256 * 1024;
    s.batching.max_client_batch_size = 64;
    s.analysis.vader_dir = repo_root().join("models/vader");
    s.server.data_dir = temp_dir("data");
    s.security.admin_token = Some(osprey_types::redact::Secret::new(ADMIN_TOKEN));
    s.security.rate_limit.requests_per_second = 0.0;
    s
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("osprey-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Starts a server with `settings` on its own thread and runtime; returns
/// once the model is loaded and `/ready` would answer 200.
pub fn spawn_app(settings: Settings) -> TestApp {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(async move {
            let app = Application::build(settings).await.expect("build app");
            let (port, registry, analyzer) = (app.port(), app.state().registry.clone(), app.state().analyzer.clone());
            tokio::spawn(app.run_with_shutdown(std::future::pending()));
            let deadline = Instant::now() + Duration::from_secs(120);
            let ready = || registry.readiness().and_then(|()| analyzer.readiness());
            while ready().is_err() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = tx.send((port, ready(), registry.clone(), analyzer.clone()));
            std::future::pending::<()>().await;
        });
    });
    let (port, ready, registry, analyzer) = rx.recv_timeout(Duration::from_secs(150)).expect("server started");
    assert!(ready.is_ok(), "server never became ready: {ready:?}");
    TestApp { base: format!("http://127.0.0.1:{port}"), registry, analyzer }
}

/// One server shared by the tests that only read.
pub fn shared_app() -> Option<&'static TestApp> {
    static APP: OnceLock<Option<TestApp>> = OnceLock::new();
    APP.get_or_init(|| model_dir().map(|m| spawn_app(test_settings(&m)))).as_ref()
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// A text far longer than the model's 256-token window.
pub fn long_text(words: usize) -> String {
    (0..words).map(|i| format!("token{} ", i % 97)).collect()
}
