//! Shared test fixtures: backends, a recording processor, a private
//! redis-server, and polling helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use osprey_jobs::{
    Backend, ChunkReport, JobId, JobSettings, JobState, JobStatus, Jobs, ProcessError, Processor, Worker, WorkerReport,
};
use osprey_types::analysis::Post;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OSPREY_TEST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_test_writer()
        .try_init();
}

pub fn redis_url() -> String {
    std::env::var("OSPREY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
}

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// Whether Redis answers PING at `url`.
pub async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else { return false };
    let attempt = async {
        let mut con = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING").query_async::<String>(&mut con).await.ok()
    };
    matches!(tokio::time::timeout(Duration::from_secs(2), attempt).await, Ok(Some(_)))
}

/// Skips (returns false, with a message) when Redis is unreachable, unless
/// `CI=true`, when it fails the test.
pub async fn redis_or_skip(test: &str) -> bool {
    let url = redis_url();
    if ping(&url).await {
        return true;
    }
    if in_ci() {
        panic!("{test}: Redis unreachable at {url} (set OSPREY_TEST_REDIS_URL) and CI=true");
    }
    eprintln!("SKIPPED {test}: Redis unreachable at {url} (set OSPREY_TEST_REDIS_URL; with CI=true this fails)");
    false
}

/// Deletes every key under `prefix` when dropped (also when a test fails).
pub struct Cleanup {
    pub url: String,
    pub prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else { return };
        let Ok(mut con) = client.get_connection_with_timeout(Duration::from_secs(2)) else { return };
        let pattern = format!("{}:*", self.prefix);
        let keys: Vec<String> = match redis::cmd("KEYS").arg(&pattern).query(&mut con) {
            Ok(k) => k,
            Err(_) => return,
        };
        for k in keys {
            let _: redis::RedisResult<u64> = redis::cmd("DEL").arg(k).query(&mut con);
        }
    }
}

pub fn unique_prefix(test: &str) -> String {
    format!("osprey-test:{test}:{}", uuid::Uuid::now_v7().simple())
}

/// Settings for a test: short ack_wait, chunks of 50.
pub fn settings(backend: Backend, url: Option<String>, prefix: &str) -> JobSettings {
    JobSettings {
        backend,
        redis_url: url,
        prefix: prefix.to_string(),
        chunk_size: 50,
        ack_wait: Duration::from_millis(500),
        max_deliveries: 5,
        prefetch: 2,
        concurrency: 2,
        ..JobSettings::default()
    }
}

/// One backend for one test: connects fresh `Jobs` handles (one per
/// simulated process) to the same queue.
pub struct Env {
    pub settings: JobSettings,
    pub cleanup: Option<Cleanup>,
}

impl Env {
    pub fn memory() -> Self {
        init_tracing();
        Self { settings: settings(Backend::Memory, None, "mem"), cleanup: None }
    }

    pub async fn redis(test: &str) -> Option<Self> {
        init_tracing();
        if !redis_or_skip(test).await {
            return None;
        }
        let prefix = unique_prefix(test);
        let url = redis_url();
        Some(Self {
            settings: settings(Backend::Redis, Some(url.clone()), &prefix),
            cleanup: Some(Cleanup { url, prefix }),
        })
    }

    pub fn is_memory(&self) -> bool {
        self.settings.backend == Backend::Memory
    }

    /// The Jobs handles of one test: memory handles must be clones of one
    /// (they share the process's queue); Redis ones are separate
    /// connections, like separate processes.
    pub async fn connect(&self, tweak: impl FnOnce(&mut JobSettings)) -> Jobs {
        let mut s = self.settings.clone();
        tweak(&mut s);
        Jobs::connect(&s).await.expect("connect")
    }
}

pub fn posts(n: usize, tag: &str) -> Vec<Post> {
    (0..n)
        .map(|i| Post {
            id: format!("{tag}-{i}"),
            title: format!("title {i}"),
            body: format!("body of post {i}"),
            author: Some("tester".into()),
            created: Some(Value::from(1_700_000_000 + i as u64)),
            persona_id: None,
            source: Some("test".into()),
            external_id: None,
        })
        .collect()
}

/// What every processor of a test saw, shared.
#[derive(Default)]
pub struct Seen {
    pub posts: Mutex<HashMap<String, u32>>,
    /// Calls per chunk, keyed by the chunk's first post id.
    pub chunk_calls: Mutex<HashMap<String, u32>>,
    pub started: AtomicU64,
    pub finished: AtomicU64,
}

impl Seen {
    pub fn count(&self, id: &str) -> u32 {
        self.posts.lock().expect("lock").get(id).copied().unwrap_or(0)
    }

    pub fn distinct(&self) -> usize {
        self.posts.lock().expect("lock").len()
    }

    pub fn max_per_post(&self) -> u32 {
        self.posts.lock().expect("lock").values().copied().max().unwrap_or(0)
    }

    pub fn calls(&self, first_post: &str) -> u32 {
        self.chunk_calls.lock().expect("lock").get(first_post).copied().unwrap_or(0)
    }
}

/// Records the posts it processes (after `delay`); fails every delivery of
/// the chunk starting with `fail_first`; with `hang`, never returns.
pub struct Recorder {
    pub seen: Arc<Seen>,
    pub delay: Duration,
    pub fail_first: Option<String>,
    pub hang: bool,
}

impl Recorder {
    pub fn new(seen: &Arc<Seen>, delay: Duration) -> Arc<Self> {
        Arc::new(Self { seen: seen.clone(), delay, fail_first: None, hang: false })
    }
}

impl Processor for Recorder {
    fn process<'a>(
        &'a self,
        _job: &'a JobId,
        _options: &'a Value,
        posts: Vec<Post>,
    ) -> BoxFuture<'a, Result<ChunkReport, ProcessError>> {
        Box::pin(async move {
            let first = posts.first().map(|p| p.id.clone()).unwrap_or_default();
            *self.seen.chunk_calls.lock().expect("lock").entry(first.clone()).or_default() += 1;
            self.seen.started.fetch_add(1, Ordering::SeqCst);
            if self.hang {
                futures::future::pending::<()>().await;
            }
            if self.fail_first.as_deref() == Some(first.as_str()) {
                return Err(ProcessError::retryable(format!("chunk {first} always fails")));
            }
            tokio::time::sleep(self.delay).await;
            {
                let mut seen = self.seen.posts.lock().expect("lock");
                for p in &posts {
                    *seen.entry(p.id.clone()).or_default() += 1;
                }
            }
            self.seen.finished.fetch_add(1, Ordering::SeqCst);
            Ok(ChunkReport { stored: posts.len() as u64, failed: 0 })
        })
    }
}

pub struct RunningWorker {
    pub handle: JoinHandle<Result<WorkerReport, osprey_jobs::JobError>>,
    pub shutdown: CancellationToken,
}

impl RunningWorker {
    pub async fn stop(self, drain: Duration) -> WorkerReport {
        self.shutdown.cancel();
        let _ = drain;
        tokio::time::timeout(drain + Duration::from_secs(10), self.handle)
            .await
            .expect("worker stops in time")
            .expect("worker task")
            .expect("worker result")
    }
}

pub fn spawn_worker(jobs: &Jobs, processor: Arc<dyn Processor>, name: &str, drain: Duration) -> RunningWorker {
    let shutdown = CancellationToken::new();
    let worker = Worker::new(jobs.clone(), processor, name.to_string());
    let handle = tokio::spawn(worker.run(shutdown.clone(), drain));
    RunningWorker { handle, shutdown }
}

/// Polls until `pred` holds (status errors, e.g. Redis restarting, are
/// retried); panics with the last status after `timeout`.
pub async fn wait_for(
    jobs: &Jobs,
    id: &JobId,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&JobStatus) -> bool,
) -> JobStatus {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    loop {
        match jobs.status(id).await {
            Ok(Some(s)) => {
                if pred(&s) {
                    return s;
                }
                last = Some(s);
            }
            Ok(None) => panic!("job {id} vanished while waiting for {what}"),
            Err(_) => {}
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}; last status: {last:#?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn wait_terminal(jobs: &Jobs, id: &JobId, timeout: Duration) -> JobStatus {
    wait_for(jobs, id, timeout, "a terminal state", |s| s.state.is_terminal()).await
}

pub fn assert_finished_consistent(s: &JobStatus) {
    assert!(s.state.is_terminal(), "{s:#?}");
    assert_eq!(s.done + s.failed + s.skipped, s.total, "{s:#?}");
    assert_eq!(s.chunks_done + s.chunks_dead + s.chunks_skipped, s.chunks_total, "{s:#?}");
    assert!(s.finished_at.is_some(), "{s:#?}");
    if s.state != JobState::Cancelled {
        assert!(s.sealed, "{s:#?}");
    }
}

/// A redis-server of the test's own, on a free loopback port, with AOF
/// (`appendfsync always`) in a temp dir, so it can be killed and restarted.
pub struct OwnRedis {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    _tmp: tempfile::TempDir,
}

pub fn redis_server_binary() -> Option<PathBuf> {
    let candidates = [std::env::var("OSPREY_TEST_REDIS_SERVER").ok(), Some("/usr/bin/redis-server".into())];
    candidates.into_iter().flatten().map(PathBuf::from).find(|p| p.exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn spawn_server(bin: &Path, port: u16, dir: &Path) -> Child {
    Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
        .arg(dir)
        .args(["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"])
        .args(["--logfile", "redis.log"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server")
}

impl OwnRedis {
    pub async fn start(bin: &Path) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let port = free_port();
        let child = spawn_server(bin, port, &dir);
        let me = Self { port, dir, child: Some(child), _tmp: tmp };
        me.wait_ready().await;
        me
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    async fn wait_ready(&self) {
        let url = self.url();
        for _ in 0..200 {
            if ping(&url).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("own redis-server on port {} did not come up", self.port);
    }

    /// SIGKILL: no shutdown, no final save; only the AOF remains.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn restart(&mut self, bin: &Path) {
        self.kill();
        self.child = Some(spawn_server(bin, self.port, &self.dir));
        self.wait_ready().await;
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
