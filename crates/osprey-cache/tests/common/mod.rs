//! Helpers shared by the integration tests: a real Redis (from
//! `OSPREY_TEST_REDIS_URL`, else `redis://127.0.0.1:6379`), a key prefix of
//! each test's own that is deleted afterwards, private `redis-server`
//! children, and a recorder for the `metrics` facade.
//!
//! A missing Redis skips the calling test with a loud message, except under
//! `CI=true`, where it fails it.

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::HashMap;
use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use osprey_cache::{Cache, CacheSettings, L2Settings};

pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips loudly, or fails under `CI=true`.
pub fn unavailable(test: &str, why: &str) {
    if ci() {
        panic!("{test}: {why}; required under CI=true");
    }
    // Straight to the stream: the test harness captures `eprintln!` of
    // passing tests, and a skip must not pass silently.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPED {test}: {why}\n!!! start `redis-server` on 127.0.0.1:6379 or set OSPREY_TEST_REDIS_URL\n"
    );
}

pub fn redis_url() -> String {
    std::env::var("OSPREY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn ping(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut conn = tokio::time::timeout(Duration::from_secs(2), client.get_multiplexed_async_connection())
        .await
        .map_err(|_| "connection timed out".to_string())?
        .map_err(|e| e.to_string())?;
    redis::cmd("PING").query_async::<String>(&mut conn).await.map(|_| ()).map_err(|e| e.to_string())
}

/// The shared test Redis and a key prefix of this test's own, whose keys are
/// deleted on drop (also when the test panics).
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    pub async fn new(test: &str) -> Option<Self> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let url = redis_url();
        if let Err(e) = ping(&url).await {
            unavailable(test, &format!("Redis unreachable at {}: {e}", osprey_cache::redact_url(&url)));
            return None;
        }
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let n = N.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("osprey-test-{test}-{}-{nanos}-{n}", std::process::id());
        Some(Self { url, prefix })
    }

    /// Settings for a cache on this prefix, with short timeouts.
    pub fn settings(&self) -> CacheSettings {
        settings_for(&self.url, &self.prefix)
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url.as_str()).expect("valid url");
        client.get_multiplexed_async_connection().await.expect("test Redis connection")
    }

    /// Keys under this prefix, straight from Redis.
    pub async fn keys(&self) -> Vec<String> {
        let mut conn = self.conn().await;
        let mut keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}:*", self.prefix)).query_async(&mut conn).await.expect("KEYS");
        keys.sort();
        keys
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else { return };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else { return };
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}:*", self.prefix)).query(&mut conn).unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<u64, _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

pub fn settings_for(url: &str, prefix: &str) -> CacheSettings {
    CacheSettings {
        l2: L2Settings {
            url: Some(url.to_string()),
            prefix: prefix.to_string(),
            command_timeout: Duration::from_millis(500),
            ..L2Settings::default()
        },
        ..CacheSettings::default()
    }
}

/// Polls until `cache`'s L2 is up; false after `within`.
pub async fn wait_up(cache: &Cache, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while !cache.l2_state().is_up() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// A `redis-server` child of this test on a free port; killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// `None` (after [`unavailable`]) when `redis-server` is not installed.
    pub fn start(test: &str) -> Option<Self> {
        if Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_err() {
            unavailable(test, "redis-server is not installed");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let mut redis = Self { port, child: None };
        redis.restart();
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, on the same port) and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let up = redis::Client::open(self.url().as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if up.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "private redis-server on port {} did not start", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown, no goodbye to clients.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `metrics` recorder that keeps the latest value of every counter and
/// gauge, keyed `name{label=value,...}` (labels in registration order).
#[derive(Default)]
pub struct Recorder {
    values: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

impl Recorder {
    fn slot(&self, key: &metrics::Key) -> Arc<AtomicU64> {
        let labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        Arc::clone(self.values.lock().expect("recorder lock").entry(name).or_default())
    }

    pub fn counter(&self, name: &str) -> Option<u64> {
        self.values.lock().expect("recorder lock").get(name).map(|v| v.load(Ordering::Relaxed))
    }

    pub fn gauge(&self, name: &str) -> Option<f64> {
        self.counter(name).map(f64::from_bits)
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}

    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.slot(key))
    }

    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(self.slot(key))
    }

    fn register_histogram(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}
