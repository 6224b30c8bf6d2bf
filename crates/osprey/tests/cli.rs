//! The `osprey` binary, run as a user would.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn osprey() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_osprey"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    c.env_remove("OSPREY_CONFIG");
    c
}

#[test]
fn config_print_shows_layered_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("osprey.toml");
    std::fs::write(&file, "[batching]\nmax_batch_tokens = 2048\nmax_batch_requests = 9\n").expect("write");
    let out = osprey()
        .args(["--config", file.to_str().expect("utf8"), "config", "print", "--max-batch-requests", "5"])
        .env("OSPREY_SERVER__BIND", "127.0.0.1:9999")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf8");
    let v: toml::Value = toml::from_str(&text).expect("config print emits TOML");
    assert_eq!(v["batching"]["max_batch_tokens"].as_integer(), Some(2048), "from the file");
    assert_eq!(v["batching"]["max_batch_requests"].as_integer(), Some(5), "flag beats file");
    assert_eq!(v["server"]["bind"].as_str(), Some("127.0.0.1:9999"), "from the environment");
    assert_eq!(v["model"]["device"].as_str(), Some("auto"), "default");
}

#[test]
fn migrate_creates_the_schema_and_is_idempotent() {
    let data = tempfile::tempdir().expect("tempdir");
    let dir = data.path().to_str().expect("utf8");
    for run in 0..2 {
        let out = osprey().args(["migrate", "--data-dir", dir]).output().expect("run");
        assert!(out.status.success(), "run {run}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Sqlite") && text.contains("osprey.db"), "run {run}: {text}");
    }
    assert!(data.path().join("osprey.db").is_file());
    let bad = osprey().args(["migrate", "--database-url", "mysql://nope"]).output().expect("run");
    assert!(!bad.status.success(), "an unsupported URL is an error");
}

#[test]
fn bad_settings_fail_with_a_clear_message() {
    let out = osprey().args(["config", "print", "--device", "tpu"]).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid device"));
}

#[test]
fn models_info_reads_the_model_directory() {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/all-MiniLM-L6-v2");
    if !std::path::Path::new(model).is_dir() {
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "model missing under CI=true");
        eprintln!("SKIPPED: model missing; run scripts/fetch-models");
        return;
    }
    let out = osprey().args(["models", "info", "models/all-MiniLM-L6-v2"]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["pooling"], "mean");
    assert_eq!(v["max_seq_length"], 256);
    assert_eq!(v["normalize"], true);
    assert_eq!(v["hidden_size"], 384);
}

#[test]
fn missing_model_keeps_the_server_alive_but_not_ready() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let data = tempfile::tempdir().expect("tempdir");
    let mut child = osprey()
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--model", "no/such-model", "--log-level", "error"])
        .args(["--data-dir", data.path().to_str().expect("utf8")])
        .env("OSPREY_OFFLINE", "1")
        .env("HF_HUB_CACHE", "/nonexistent")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let result = rt.block_on(async {
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(format!("{base}/health")).send().await {
                assert_eq!(r.status(), 200);
                break;
            }
            assert!(Instant::now() < deadline, "server never answered /health");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Readiness reports the load failure and where osprey looked.
        loop {
            let r = client.get(format!("{base}/ready")).send().await.expect("ready");
            assert_eq!(r.status(), 503);
            let body: serde_json::Value = r.json().await.expect("json");
            let msg = body["error"]["message"].as_str().unwrap_or_default().to_string();
            if msg.contains("failed to load") {
                return msg;
            }
            assert!(Instant::now() < deadline, "readiness never reported the failure: {msg}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(result.contains("looked in") && result.contains("offline"), "{result}");
}
