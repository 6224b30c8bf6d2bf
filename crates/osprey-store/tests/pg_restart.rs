//! PostgreSQL restarting under a writer that keeps submitting: every
//! accepted record must be stored exactly once afterwards, and reads must
//! work again once the pool has replaced its dead connections.
//!
//! Runs against a private PostgreSQL instance (initdb in a temporary
//! directory, its own port) so the shared server is never disturbed, and
//! in its own test binary so nothing else runs while it stops and starts.
//! Without PostgreSQL's server binaries it skips loudly (fails under CI).

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection as _;

use common::{analysis, record, unavailable};

/// A throwaway PostgreSQL cluster, stopped when dropped.
struct PrivatePg {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    socket_dir: PathBuf,
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

fn find_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("OSPREY_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PrivatePg {
    fn start() -> Result<PrivatePg, String> {
        let bin = find_bin().ok_or("no PostgreSQL server binaries under /usr/lib/postgresql (set OSPREY_PG_BIN)")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // PostgreSQL refuses to run as root: the cluster belongs to `postgres`.
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").arg("-R").arg("postgres:").arg(dir.path()))?;
        }
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let pg = PrivatePg {
            data: dir.path().join("data"),
            socket_dir: dir.path().to_path_buf(),
            bin,
            port,
            as_postgres,
            _dir: dir,
        };
        let initdb = pg.bin.join("initdb");
        pg.run_pg(&initdb, &["-D", &pg.data.to_string_lossy(), "--auth=trust", "-U", "postgres", "--no-sync"])?;
        pg.ctl("start")?;
        Ok(pg)
    }

    fn run_pg(&self, program: &Path, args: &[&str]) -> Result<(), String> {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        run(cmd.args(args))
    }

    fn ctl(&self, action: &str) -> Result<(), String> {
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.socket_dir.display());
        let log = self.socket_dir.join("postgres.log");
        let ctl = self.bin.join("pg_ctl");
        let data = self.data.to_string_lossy().to_string();
        let log = log.to_string_lossy().to_string();
        match action {
            "start" => self.run_pg(&ctl, &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"]),
            stop => self.run_pg(&ctl, &["-D", &data, "-m", stop, "-w", "stop"]),
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self.ctl("immediate");
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_survives_a_postgres_restart_and_stores_everything_once() {
    let pg = match PrivatePg::start() {
        Ok(pg) => pg,
        Err(why) => return unavailable("a private PostgreSQL instance", &why),
    };
    let mut settings = osprey_store::StoreSettings { url: Some(pg.url()), ..Default::default() };
    settings.writer.max_delay = Duration::from_millis(10);
    settings.writer.batch_size = 50;
    settings.writer.retry_backoff_max = Duration::from_millis(400);
    settings.pool.pool_timeout = Duration::from_secs(1);
    settings.aggregate_refresh_interval = Duration::ZERO;
    let data_dir = tempfile::tempdir().expect("tempdir");
    let store = osprey_store::Store::open(&settings, data_dir.path()).await.expect("open");

    // A producer submitting steadily through the outage.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut accepted = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let mut r = record(&format!("r-{accepted}"), "restart", &format!("record {accepted}"));
                r.analyses.push(analysis("emotion", serde_json::json!({ "n": accepted })));
                store.submit(r).await.expect("accepted while the database is down");
                accepted += 1;
                if accepted.is_multiple_of(20) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            accepted
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(store.query_stats().writer.written > 0, "writing before the restart");

    let ctl = |action: &'static str| {
        let pg = &pg;
        move || pg.ctl(action)
    };
    tokio::task::block_in_place(ctl("fast")).expect("stop PostgreSQL");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = store.get_post("r-0").await;
    assert!(during.is_err(), "reads fail while the server is down: {during:?}");
    tokio::task::block_in_place(ctl("start")).expect("start PostgreSQL");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let accepted = producer.await.expect("producer");

    tokio::time::timeout(Duration::from_secs(30), store.flush()).await.expect("flush in time").expect("flush");
    let stats = store.query_stats();
    assert!(stats.writer.retries > 0, "the outage was felt: {:?}", stats.writer);
    assert_eq!((stats.writer.written as usize, stats.writer.rejected), (accepted, 0), "{:?}", stats.writer);

    // Exactly once, counted by the database itself.
    let mut conn = sqlx::PgConnection::connect(&pg.url()).await.expect("connect");
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let posts = count("SELECT COUNT(*) FROM posts").fetch_one(&mut conn).await.expect("count");
    let distinct = count("SELECT COUNT(DISTINCT content_hash) FROM posts").fetch_one(&mut conn).await.expect("count");
    let analyses = count("SELECT COUNT(*) FROM analyses").fetch_one(&mut conn).await.expect("count");
    assert_eq!((posts as usize, distinct as usize, analyses as usize), (accepted, accepted, 2 * accepted));
    let missing: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM generate_series(0, $1 - 1) AS n WHERE NOT EXISTS (SELECT 1 FROM posts WHERE id = 'r-' || n)",
    )
    .bind(accepted as i64)
    .fetch_one(&mut conn)
    .await
    .expect("gaps");
    assert_eq!(missing, 0);

    // The pool re-verified its connections: reads work again.
    let post = store.get_post(&format!("r-{}", accepted - 1)).await.expect("read after restart").expect("post");
    assert_eq!(post.analyses.len(), 2);
    store.ping().await.expect("ping after restart");
    let report = store.close().await.expect("close");
    assert_eq!(report.left, 0);
    eprintln!("restart test: {accepted} records accepted and stored once; {} batch retries", stats.writer.retries);
}
