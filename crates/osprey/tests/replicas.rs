//! Two `osprey serve` replicas sharing PostgreSQL and Redis, behind a local
//! nginx: topic sets written through one are used by the other, load is
//! spread over both, and a replica stopped with SIGTERM under load drains
//! without failing a request (nginx retries what the stopping replica
//! refuses).
//!
//! Needs the model and the VADER lexicon (`scripts/fetch-models`),
//! PostgreSQL (`OSPREY_TEST_DATABASE_URL`), Redis (`OSPREY_TEST_REDIS_URL`)
//! and nginx (`scripts/install-nginx`; `$NGINX` names another binary).
//! Outside CI a missing one skips the test with a message; under `CI=true`
//! it fails it. Everything listens on 127.0.0.1 only. `OSPREY_TEST_KEEP=1`
//! keeps the logs (under the temp dir, `osprey-replicas-<pid>-*`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::{free_port, listening as reachable, pg_url, redis_url, repo_root, skip as missing};

const ADMIN_TOKEN: &str = "replicas-admin-token-0123456789";

/// Kills what it holds when the test ends, however it ends.
#[derive(Default)]
struct Cleanup {
    children: Vec<(String, Child)>,
    schema: Option<(String, String)>,
    dirs: Vec<PathBuf>,
}

impl Cleanup {
    fn child(&mut self, name: &str) -> Option<&mut Child> {
        self.children.iter_mut().find(|(n, _)| n == name).map(|(_, c)| c)
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for (name, child) in &mut self.children {
            // nginx's master stops its worker on SIGTERM; killed outright,
            // it would leave the worker running.
            if name == "nginx" {
                let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
                let deadline = Instant::now() + Duration::from_secs(5);
                while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some((admin, schema)) = &self.schema {
            let _ = Command::new("psql")
                .args([admin.as_str(), "-q", "-c", &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // OSPREY_TEST_KEEP=1 keeps the replicas' and nginx's logs to read.
        if std::env::var_os("OSPREY_TEST_KEEP").is_none() {
            for dir in &self.dirs {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("osprey-replicas-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A database URL of this test's own: a fresh schema when `psql` can make
/// one, else the shared database as it is (topic-set names are unique).
fn database_url(admin: &str, cleanup: &mut Cleanup) -> String {
    let schema = format!("osprey_replicas_{}", std::process::id());
    let made = Command::new("psql")
        .args([admin, "-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!(
            "SET client_min_messages = warning; DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        eprintln!("note: psql could not make a schema; using {admin} as it is");
        return admin.to_string();
    }
    cleanup.schema = Some((admin.to_string(), schema.clone()));
    osprey_store::bench::url_with_search_path(admin, &schema)
}

struct Replica {
    name: &'static str,
    base: String,
    log: PathBuf,
}

impl Replica {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

fn start_replica(name: &'static str, db: &str, redis: &str, cleanup: &mut Cleanup) -> Replica {
    let port = free_port();
    let dir = temp_dir(name);
    cleanup.dirs.push(dir.clone());
    let log = dir.join("osprey.log");
    let out = std::fs::File::create(&log).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_osprey"))
        .current_dir(repo_root())
        .env_remove("OSPREY_CONFIG")
        .env("OSPREY_SERVER__DRAIN_DELAY", "1s")
        .env("OSPREY_SERVER__SHUTDOWN_TIMEOUT", "15s")
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--log-level", "info"])
        .args(["--data-dir", dir.to_str().expect("utf8")])
        .args(["--database-url", db, "--redis-url", redis, "--admin-token", ADMIN_TOKEN])
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out)
        .spawn()
        .expect("spawn osprey serve");
    cleanup.children.push((name.to_string(), child));
    Replica { name, base: format!("http://127.0.0.1:{port}"), log }
}

async fn wait_ready(client: &reqwest::Client, replica: &Replica, cleanup: &mut Cleanup) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if let Ok(r) = client.get(format!("{}/ready", replica.base)).send().await {
            if r.status() == 200 {
                return;
            }
        }
        if let Some(status) = cleanup.child(replica.name).and_then(|c| c.try_wait().ok().flatten()) {
            panic!("replica {} exited ({status}):\n{}", replica.name, replica.log_tail());
        }
        assert!(Instant::now() < deadline, "replica {} never became ready:\n{}", replica.name, replica.log_tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A private nginx in `dir` balancing over `upstreams`, on a free port.
fn start_nginx(binary: &Path, upstreams: &[&Replica], cleanup: &mut Cleanup) -> String {
    let dir = temp_dir("nginx");
    cleanup.dirs.push(dir.clone());
    // Started as root, nginx runs its worker as `nobody`: it must reach these.
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    for d in [&dir, &tmp] {
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    }
    let port = free_port();
    let d = dir.display();
    let mut conf = vec![
        "worker_processes 1;".to_string(),
        "events { worker_connections 1024; }".into(),
        "http {".into(),
        "    access_log off;".into(),
    ];
    for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        conf.push(format!("    {kind}_temp_path {d}/tmp/{kind};"));
    }
    conf.push("    upstream osprey {".into());
    for r in upstreams {
        conf.push(format!("        server {} max_fails=1 fail_timeout=10s;", r.base.trim_start_matches("http://")));
    }
    conf.extend([
        "        keepalive 16;".to_string(),
        "    }".into(),
        "    server {".into(),
        format!("        listen 127.0.0.1:{port};"),
        "        location / {".into(),
        "            proxy_pass http://osprey;".into(),
        "            proxy_http_version 1.1;".into(),
        "            proxy_set_header Connection \"\";".into(),
        "            proxy_connect_timeout 2s;".into(),
        // The analysis POSTs are pure: one a stopping replica closed on may
        // be sent again to the other.
        "            proxy_next_upstream error timeout http_503 non_idempotent;".into(),
        "        }".into(),
        "    }".into(),
        "}".into(),
    ]);
    let conf = conf.join("\n") + "\n";
    std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
    let log = std::fs::File::create(dir.join("nginx.log")).expect("log");
    let child = Command::new(binary)
        .args(["-p", dir.to_str().expect("utf8"), "-e", "stderr", "-c", "nginx.conf"])
        .args(["-g", &format!("daemon off; pid {d}/nginx.pid; error_log stderr;")])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn nginx");
    cleanup.children.push(("nginx".to_string(), child));
    format!("http://127.0.0.1:{port}")
}

/// `osprey_http_requests_total` summed over `route`'s series; `None` when
/// the replica does not answer.
async fn try_served(client: &reqwest::Client, replica: &Replica, route: &str) -> Option<f64> {
    let text = client.get(format!("{}/metrics", replica.base)).send().await.ok()?.text().await.ok()?;
    let needle = format!("route=\"{route}\"");
    Some(
        text.lines()
            .filter(|l| l.starts_with("osprey_http_requests_total{") && l.contains(&needle))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum(),
    )
}

async fn served(client: &reqwest::Client, replica: &Replica, route: &str) -> f64 {
    try_served(client, replica, route).await.unwrap_or_else(|| panic!("replica {} /metrics", replica.name))
}

/// Sends `/v1/sentiment` requests through `base` from `clients` concurrent
/// clients, each pausing `pause` between requests, until `total` are done or
/// `stop` is set; returns the failures (anything but 200, or no answer) and
/// how many were sent.
async fn load(
    base: &str,
    clients: usize,
    total: usize,
    pause: Duration,
    stop: Arc<AtomicBool>,
) -> (Vec<String>, usize) {
    let sent = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (base, sent, stop) = (base.to_string(), Arc::clone(&sent), Arc::clone(&stop));
            tokio::spawn(async move {
                let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
                let mut failures = Vec::new();
                loop {
                    let n = sent.fetch_add(1, Ordering::Relaxed);
                    if n >= total || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let body = json!({ "inputs": [format!("Request {n} from client {c} is great, thanks!")] });
                    match client.post(format!("{base}/v1/sentiment")).json(&body).send().await {
                        Ok(r) if r.status() == 200 => {}
                        Ok(r) => failures.push(format!("#{n}: {} {}", r.status(), r.text().await.unwrap_or_default())),
                        Err(e) => failures.push(format!("#{n}: {e}")),
                    }
                    tokio::time::sleep(pause).await;
                }
                failures
            })
        })
        .collect();
    let mut failures = Vec::new();
    for t in tasks {
        failures.extend(t.await.expect("client task"));
    }
    (failures, sent.load(Ordering::Relaxed).min(total))
}

fn topic_body() -> Value {
    json!({
        "threshold": 0.3,
        "topics": [
            { "label": "Rust programming", "examples": ["borrow checker errors", "cargo build is slow"] },
            { "label": "databases", "examples": ["slow SQL queries", "PostgreSQL indexes"] },
        ]
    })
}

fn filter_body(set: &str) -> Value {
    json!({ "topic_set": set, "posts": [{ "id": "p1", "title": "Index advice", "body": "This PostgreSQL query is slow even with an index." }] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_share_topic_sets_and_drain_behind_nginx() {
    if common::assets_or_skip().is_none() {
        return;
    }
    let (pg, redis) = (pg_url(), redis_url());
    if !reachable(&pg) {
        let _ = missing(&format!("PostgreSQL at {pg}"));
        return;
    }
    if !reachable(&redis) {
        let _ = missing(&format!("Redis at {redis}"));
        return;
    }
    let nginx = std::env::var_os("NGINX").map_or_else(|| PathBuf::from("/usr/sbin/nginx"), PathBuf::from);
    if !nginx.is_file() {
        let _ = missing(&format!("nginx at {} (run scripts/install-nginx)", nginx.display()));
        return;
    }

    let mut cleanup = Cleanup::default();
    let db = database_url(&pg, &mut cleanup);
    let a = start_replica("a", &db, &redis, &mut cleanup);
    let b = start_replica("b", &db, &redis, &mut cleanup);
    let admin = {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}").parse().expect("header"));
        reqwest::Client::builder().default_headers(headers).build().expect("client")
    };
    wait_ready(&admin, &a, &mut cleanup).await;
    wait_ready(&admin, &b, &mut cleanup).await;

    // A set written through A is used by B, which embeds it itself.
    let set = format!("replicas-{}", std::process::id());
    let put = admin.put(format!("{}/v1/topics/{set}", a.base)).json(&topic_body()).send().await.expect("put");
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap_or_default());
    let r = admin.post(format!("{}/v1/filter", b.base)).json(&filter_body(&set)).send().await.expect("filter");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let body: Value = r.json().await.expect("json");
    assert_eq!((body["version"].as_u64(), body["results"][0]["best_topic"].as_str()), (Some(1), Some("databases")));
    // Versions come from the database: B's PUT makes version 2, A reads it.
    let put = admin.put(format!("{}/v1/topics/{set}", b.base)).json(&topic_body()).send().await.expect("put");
    let put: Value = put.json().await.expect("json");
    assert_eq!(put["version"], 2, "{put}");
    let got: Value =
        admin.get(format!("{}/v1/topics/{set}", a.base)).send().await.expect("get").json().await.expect("json");
    assert_eq!(got["version"], 2);
    // Deleted through B: A answers 404 at once for the set, and its filter
    // stops using it within the recheck interval.
    let del = admin.delete(format!("{}/v1/topics/{set}", b.base)).send().await.expect("delete");
    assert_eq!(del.status(), 204);
    let got = admin.get(format!("{}/v1/topics/{set}", a.base)).send().await.expect("get");
    assert_eq!(got.status(), 404);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = admin.post(format!("{}/v1/filter", a.base)).json(&filter_body(&set)).send().await.expect("filter");
        if r.status() == 404 {
            break;
        }
        assert_eq!(r.status(), 200);
        assert!(Instant::now() < deadline, "A kept filtering with a deleted set");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Load through nginx reaches both replicas, and every request succeeds.
    let lb = start_nginx(&nginx, &[&a, &b], &mut cleanup);
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin.get(format!("{lb}/health")).send().await.map_or(true, |r| r.status() != 200) {
        if let Some(status) = cleanup.child("nginx").and_then(|c| c.try_wait().ok().flatten()) {
            panic!("nginx exited ({status})");
        }
        assert!(Instant::now() < deadline, "nginx never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = (served(&admin, &a, "/v1/sentiment").await, served(&admin, &b, "/v1/sentiment").await);
    let (failures, sent) = load(&lb, 8, 200, Duration::ZERO, Arc::new(AtomicBool::new(false))).await;
    assert!(failures.is_empty(), "{} of {sent} failed: {:?}", failures.len(), &failures[..failures.len().min(5)]);
    assert_eq!(sent, 200);
    let after = (served(&admin, &a, "/v1/sentiment").await, served(&admin, &b, "/v1/sentiment").await);
    let (by_a, by_b) = (after.0 - before.0, after.1 - before.1);
    assert_eq!(by_a + by_b, 200.0, "every request reached one replica: {by_a} + {by_b}");
    assert!(by_a > 0.0 && by_b > 0.0, "both replicas served: A {by_a}, B {by_b}");

    // SIGTERM to A under load: it drains and exits cleanly, and no request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn({
        let (lb, stop) = (lb.clone(), Arc::clone(&stop));
        // About 2,000 requests a second at most, until stopped.
        async move { load(&lb, 8, 50_000, Duration::from_millis(4), stop).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = cleanup.child("a").expect("replica a").id();
    let at_signal = served(&admin, &a, "/v1/sentiment").await;
    let term = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    assert!(term.success());
    let signalled = Instant::now();
    // What A served while draining, as long as it answers.
    let mut while_draining = 0.0;
    let exit = loop {
        if let Some(status) = cleanup.child("a").and_then(|c| c.try_wait().ok().flatten()) {
            break status;
        }
        assert!(signalled.elapsed() < Duration::from_secs(30), "replica A did not stop:\n{}", a.log_tail());
        let now = tokio::time::timeout(Duration::from_millis(200), try_served(&admin, &a, "/v1/sentiment")).await;
        if let Ok(Some(n)) = now {
            while_draining = n - at_signal;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stopped_after = signalled.elapsed();
    // Keep the load going on B alone for a moment, then stop it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (failures, sent) =
        tokio::time::timeout(Duration::from_secs(60), running).await.expect("load ended").expect("load");
    assert!(exit.success(), "replica A exited with {exit}:\n{}", a.log_tail());
    assert!(stopped_after >= Duration::from_secs(1), "A stopped before its drain delay: {stopped_after:?}");
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed while A drained: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(sent > 50, "the load ran throughout ({sent} requests)");
    assert!(while_draining > 0.0, "A kept serving while it drained");
    eprintln!(
        "replicas: A served {by_a} and B {by_b} of 200; under SIGTERM {sent} requests, none failed, \
         A served {while_draining} of them while draining and exited after {stopped_after:?}"
    );
    let log = std::fs::read_to_string(&a.log).unwrap_or_default();
    for step in ["shutdown 1/5", "shutdown 3/5", "shutdown 5/5"] {
        assert!(log.contains(step), "A's log lacks {step:?}:\n{}", a.log_tail());
    }
    assert_eq!(admin.get(format!("{}/ready", b.base)).send().await.expect("b ready").status(), 200);
}
