//! Batch jobs under faults, with real processes: three `osprey worker`s on
//! a Redis Streams queue store into PostgreSQL; one is SIGKILLed mid-job,
//! another stopped and restarted; in a second run the queue server itself
//! is killed and restarted (its append-only file keeps the queue). Every
//! post must be stored exactly once and the job must complete.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use osprey_jobs::{Backend, JobId, JobSettings, JobSpec, JobState, Jobs};
use osprey_types::analysis::Post;

mod common;
use common::{assets_or_skip, free_port, pg_url, redis_url, repo_root as root, service_or_skip};

const POSTS: usize = 10_000;

/// Kills the process on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").args([sig, &child.id().to_string()]).status().is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} failed");
}

struct Setup {
    dir: tempfile::TempDir,
    redis_url: String,
    pg: String,
    prefix: String,
}

impl Setup {
    fn settings(&self) -> JobSettings {
        JobSettings {
            backend: Backend::Redis,
            redis_url: Some(self.redis_url.clone()),
            prefix: self.prefix.clone(),
            chunk_size: 100,
            ack_wait: Duration::from_secs(3),
            max_deliveries: 20,
            ..JobSettings::default()
        }
    }

    fn worker(&self, n: usize) -> Proc {
        let log = std::fs::File::create(self.dir.path().join(format!("worker{n}.log"))).expect("job test step");
        let child = Command::new(env!("CARGO_BIN_EXE_osprey"))
            .current_dir(root())
            .arg("worker")
            .args(["--bind", "127.0.0.1:0", "--database-url", &self.pg, "--log-level", "warn"])
            .args(["--data-dir", self.dir.path().to_str().expect("job test step")])
            .env("OSPREY_CONFIG", self.dir.path().join("empty.toml"))
            .env("OSPREY_JOBS__BACKEND", "redis")
            .env("OSPREY_JOBS__REDIS_URL", &self.redis_url)
            .env("OSPREY_JOBS__PREFIX", &self.prefix)
            .env("OSPREY_JOBS__ACK_WAIT", "3s")
            .env("OSPREY_JOBS__MAX_DELIVERIES", "20")
            .env("OSPREY_JOBS__CONCURRENCY", "2")
            .env("OSPREY_SERVER__DRAIN_DELAY", "0s")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start osprey worker");
        Proc(child)
    }
}

fn setup(redis_url: String) -> Option<Setup> {
    let pg = pg_url();
    assets_or_skip()?;
    service_or_skip(&redis_url)?;
    service_or_skip(&pg)?;
    let dir = tempfile::tempdir().expect("job test step");
    std::fs::write(dir.path().join("empty.toml"), "").expect("job test step");
    let prefix = format!("osprey-test-jobs-{}", uuid_like());
    Some(Setup { dir, redis_url, pg, prefix })
}

fn uuid_like() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("job test step").as_nanos()
    )
}

/// `POSTS` posts of distinct content (the run's prefix is in every body).
fn posts(prefix: &str) -> Vec<Post> {
    (0..POSTS)
        .map(|i| Post {
            id: format!("{prefix}-{i}"),
            title: format!("Post {i} about build times"),
            body: format!("Run {prefix}. Cargo took {i} seconds today, which is annoying. The cache helped a little."),
            author: None,
            created: None,
            persona_id: Some(prefix.to_string()),
            source: Some("job-test".into()),
            external_id: None,
        })
        .collect()
}

async fn wait_done(jobs: &Jobs, id: &JobId, at_least: u64, limit: Duration) -> osprey_jobs::JobStatus {
    let deadline = Instant::now() + limit;
    loop {
        match jobs.status(id).await {
            Ok(Some(s)) if s.done >= at_least || s.state.is_terminal() => return s,
            Ok(_) | Err(_) => {}
        }
        assert!(Instant::now() < deadline, "job did not reach {at_least} done within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every post is stored, once, with exactly one sentiment analysis.
async fn check_stored_once(pg: &str, data: &Path, prefix: &str) {
    let settings = osprey_store::StoreSettings { url: Some(pg.to_string()), ..Default::default() };
    let store = osprey_store::Store::open(&settings, data).await.expect("open store");
    let ids: Vec<String> = (0..POSTS).map(|i| format!("{prefix}-{i}")).collect();
    let found: Vec<(String, Option<usize>)> = futures::stream::iter(ids)
        .map(|id| {
            let store = store.clone();
            async move {
                let p = store.get_post(&id).await.expect("get_post");
                (id, p.map(|p| p.analyses.len()))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let missing: Vec<&String> = found.iter().filter(|(_, n)| n.is_none()).map(|(id, _)| id).collect();
    assert!(missing.is_empty(), "{} posts missing, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    let repeated: Vec<&(String, Option<usize>)> = found.iter().filter(|(_, n)| *n != Some(1)).collect();
    assert!(repeated.is_empty(), "posts without exactly one analysis: {:?}", &repeated[..repeated.len().min(5)]);
    store.close().await.expect("job test step");
}

/// Waits for the job to complete with every post done, stops the workers
/// and checks the store.
async fn finish(jobs: &Jobs, id: &JobId, workers: Vec<Proc>, s: &Setup) {
    let st = wait_done(jobs, id, POSTS as u64, Duration::from_secs(300)).await;
    let st = if st.state.is_terminal() { st } else { wait_done(jobs, id, u64::MAX, Duration::from_secs(60)).await };
    assert_eq!(st.state, JobState::Completed, "{st:?}");
    assert_eq!((st.done, st.failed, st.total), (POSTS as u64, 0, POSTS as u64), "{st:?}");
    drop(workers);
    check_stored_once(&s.pg, s.dir.path(), &s.prefix).await;
}

async fn submit(jobs: &Jobs, prefix: &str) -> JobId {
    let spec = JobSpec {
        label: Some(prefix.into()),
        options: serde_json::json!({"tasks": ["sentiment"]}),
        sealed_total: None,
    };
    jobs.submit(spec, posts(prefix)).await.expect("submit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_and_a_restarted_one_lose_and_repeat_nothing() {
    let Some(s) = setup(redis_url()) else { return };
    let jobs = Jobs::connect(&s.settings()).await.expect("connect");
    let mut workers: Vec<Proc> = (0..3).map(|n| s.worker(n)).collect();
    let id = submit(&jobs, &s.prefix).await;

    let st = wait_done(&jobs, &id, 2_000, Duration::from_secs(240)).await;
    assert!(!st.state.is_terminal(), "the job finished before the faults: raise POSTS ({st:?})");
    signal(&workers[0].0, "-KILL");
    let st = wait_done(&jobs, &id, 5_000, Duration::from_secs(240)).await;
    assert!(!st.state.is_terminal(), "the job finished before the restart ({st:?})");
    signal(&workers[1].0, "-TERM");
    let _ = workers[1].0.wait();
    workers[1] = s.worker(3);

    finish(&jobs, &id, workers, &s).await;
}

fn redis_server() -> Option<&'static str> {
    ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].into_iter().find(|p| Path::new(p).exists())
}

/// A redis-server of the test's own, with an append-only file.
struct OwnRedis {
    child: Option<Proc>,
    port: u16,
    dir: PathBuf,
}

impl OwnRedis {
    fn start(dir: &Path) -> Option<Self> {
        if redis_server().is_none() {
            common::skip("a redis-server binary")?;
        }
        let mut r = Self { child: None, port: free_port(), dir: dir.to_path_buf() };
        r.spawn();
        Some(r)
    }

    fn spawn(&mut self) {
        let bin = redis_server().expect("redis-server, checked by start");
        let child = Command::new(bin)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.dir.to_str().expect("job test step"),
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(Proc(child));
    }

    fn kill(&mut self) {
        if let Some(c) = &self.child {
            signal(&c.0, "-KILL");
        }
        self.child = None;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_server_restarting_mid_job_loses_and_repeats_nothing() {
    let redis_dir = tempfile::tempdir().expect("job test step");
    let Some(mut redis) = OwnRedis::start(redis_dir.path()) else { return };
    let Some(s) = setup(format!("redis://127.0.0.1:{}", redis.port)) else { return };
    let jobs = Jobs::connect(&s.settings()).await.expect("connect");
    let workers: Vec<Proc> = (0..3).map(|n| s.worker(n)).collect();
    let id = submit(&jobs, &s.prefix).await;

    let st = wait_done(&jobs, &id, 3_000, Duration::from_secs(240)).await;
    assert!(!st.state.is_terminal(), "the job finished before the fault ({st:?})");
    redis.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.spawn();

    finish(&jobs, &id, workers, &s).await;
}
