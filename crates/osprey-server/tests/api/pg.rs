//! Real PostgreSQL and Redis for the storage tests: a fresh database per
//! test, dropped afterwards. Unreachable services skip the test with a loud
//! message, except under `CI=true`, where they fail it.

use sqlx::Connection as _;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn unavailable(what: &str, why: &str) {
    if ci() {
        panic!("{what} is required under CI=true: {why}");
    }
    eprintln!("SKIPPED: {what} unreachable ({why})");
}

/// The server holding the test databases.
pub fn admin_url() -> String {
    std::env::var("OSPREY_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database of the calling test's own; dropped with the value.
pub struct TestDb {
    pub url: String,
    name: String,
}

pub async fn fresh_database() -> Option<TestDb> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let admin = admin_url();
    let mut conn = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            unavailable("PostgreSQL", &e.to_string());
            return None;
        }
    };
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("osprey_srv_{}_{n}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn).await.expect("drop old");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_string();
    Some(TestDb { url: format!("{base}/{name}"), name })
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (admin_url(), self.name.clone());
        // Drop runs outside any runtime the database could be dropped from.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await.ok()
            })
        })
        .join();
    }
}

/// Redis for the tests, when it answers.
pub fn redis_url() -> Option<String> {
    let url = std::env::var("OSPREY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let addr = url.trim_start_matches("redis://").split('/').next().unwrap_or("127.0.0.1:6379").to_string();
    match std::net::TcpStream::connect_timeout(
        &addr.parse().unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 6379))),
        std::time::Duration::from_secs(1),
    ) {
        Ok(_) => Some(url),
        Err(e) => {
            unavailable("Redis", &e.to_string());
            None
        }
    }
}
