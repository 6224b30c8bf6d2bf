//! What the binary's test files share: the repository root, the skip rule
//! (a loud skip outside CI, a failure under `CI=true`), service checks and
//! loopback ports.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;
use std::time::Duration;

pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `None` after a `SKIPPED` line outside CI; a failure under `CI=true`.
pub fn skip(what: &str) -> Option<()> {
    assert!(!ci(), "{what} is required under CI=true");
    eprintln!("SKIPPED: {what}");
    None
}

/// The model and the VADER lexicon (`scripts/fetch-models`), or a skip.
pub fn assets_or_skip() -> Option<()> {
    let root = repo_root();
    if ["models/all-MiniLM-L6-v2/model.safetensors", "models/vader"].iter().all(|p| root.join(p).exists()) {
        Some(())
    } else {
        skip("the model or the VADER lexicon (run scripts/fetch-models)")
    }
}

/// Whether something listens at `url`'s host and port.
pub fn listening(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    std::net::ToSocketAddrs::to_socket_addrs(authority)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// `Some` when something listens at `url`, else a skip.
pub fn service_or_skip(url: &str) -> Option<()> {
    if listening(url) {
        Some(())
    } else {
        skip(&format!("a service at {url}"))
    }
}

/// The test PostgreSQL (`OSPREY_TEST_DATABASE_URL`).
pub fn pg_url() -> String {
    std::env::var("OSPREY_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The test Redis (`OSPREY_TEST_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("OSPREY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}
