//! The `osprey` binary, run as a user would.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{assets_or_skip, pg_url, redis_url, service_or_skip};

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

#[test]
fn bench_suite_reports_every_category_and_flags_a_regression_against_a_baseline() {
    let (redis, pg) = (redis_url(), pg_url());
    if assets_or_skip().is_none() || service_or_skip(&redis).is_none() || service_or_skip(&pg).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("first.json");
    // Every category, quick, against the real Redis and PostgreSQL.
    let out = osprey()
        .args(["bench", "suite", "--quick", "--repeats", "3", "--json", first.to_str().expect("utf8")])
        .args(["--redis-url", &redis, "--postgres-url", &pg])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&first).expect("report")).expect("json");
    assert_eq!(report["schema"], "osprey.bench.suite/1");
    let metrics = report["metrics"].as_array().expect("metrics");
    let ids: Vec<&str> = metrics.iter().filter_map(|m| m["id"].as_str()).collect();
    for id in [
        "model.load_ms",
        "model.cached_lookup_ns",
        "encode.batch_8_texts_per_s",
        "analysis.sentiment_texts_per_s",
        "analysis.analyze_posts_per_s",
        "cache.l1_get_ops_per_s",
        "cache.l2_get_ops_per_s",
        "store.sqlite_rows_per_s",
        "store.postgres_rows_per_s",
        "http.start_to_ready_s",
        "http.analyze_posts_per_s",
        "http.sentiment_requests_per_s",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
        assert!(table.contains(id.split_once('.').expect("dotted").1), "{id} missing from the table:\n{table}");
    }
    for m in metrics {
        let samples: Vec<f64> = m["samples"].as_array().expect("samples").iter().filter_map(|v| v.as_f64()).collect();
        assert_eq!(samples.len(), 3, "{m}");
        let (median, min, max) = (
            m["median"].as_f64().expect("number"),
            m["min"].as_f64().expect("number"),
            m["max"].as_f64().expect("number"),
        );
        assert!(min > 0.0 && min <= median && median <= max, "{m}");
        assert!(m["band"].as_f64().expect("number") >= 0.03, "the band is never below the floor: {m}");
    }

    // A baseline ten times faster at sentiment: this run must be flagged.
    let mut doctored = report.clone();
    for m in doctored["metrics"].as_array_mut().expect("metrics") {
        if m["id"] == "analysis.sentiment_texts_per_s" {
            for key in ["median", "min", "max"] {
                m[key] = serde_json::json!(m[key].as_f64().expect("number") * 10.0);
            }
            let samples: Vec<f64> =
                m["samples"].as_array().expect("array").iter().map(|v| v.as_f64().expect("number") * 10.0).collect();
            m["samples"] = serde_json::json!(samples);
        }
    }
    let baseline = dir.path().join("baseline.json");
    std::fs::write(&baseline, serde_json::to_vec(&doctored).expect("json")).expect("write");
    let second = dir.path().join("second.json");
    let out = osprey()
        .args(["bench", "suite", "--quick", "--repeats", "3", "--categories", "analysis"])
        .args(["--baseline", baseline.to_str().expect("utf8"), "--json", second.to_str().expect("utf8")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "a regression exits 3: {}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(table.contains("REGRESSION"), "{table}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&second).expect("report")).expect("json");
    let deltas = report["comparison"]["deltas"].as_array().expect("deltas");
    let verdict = |id: &str| deltas.iter().find(|d| d["id"] == id).map(|d| d["verdict"].as_str().unwrap_or_default());
    assert_eq!(verdict("analysis.sentiment_texts_per_s"), Some("regression"));
    assert_eq!(verdict("cache.l1_get_ops_per_s"), Some("missing"), "not run this time, so not judged");
    assert!(report["comparison"]["regressions"].as_u64() >= Some(1));

    // A baseline that is not a suite report is refused before anything runs.
    let out = osprey()
        .args(["bench", "suite", "--quick", "--baseline", dir.path().to_str().expect("utf8")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("baseline"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A keep-alive HTTP/1.1 server on a loopback port answering every request
/// with a tiny 200, for as long as the test runs.
fn tiny_server() -> u16 {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = stream.read(&mut chunk) {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        if stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

#[test]
fn load_html_report_carries_the_analysis() {
    let port = tiny_server();
    let dir = tempfile::tempdir().expect("tempdir");
    let (json, html) = (dir.path().join("run.json"), dir.path().join("run.html"));
    let out = osprey()
        .args(["load", "--url", &format!("http://127.0.0.1:{port}/"), "--connections", "2", "--duration", "1s"])
        .args(["--json", json.to_str().expect("utf8"), "--html", html.to_str().expect("utf8")])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("json");
    assert!(report["requests"]["completed"].as_u64() > Some(0), "{report}");
    let page = std::fs::read_to_string(&html).expect("html");
    let (runs, analysis) = page.split_once("<section class=\"osprey-analysis\">").expect("analysis section");
    assert!(runs.contains("osprey load"), "the load report comes first");
    assert!(analysis.contains("Performance analysis") && analysis.contains("<h3>Signals</h3>"), "{analysis}");
    assert!(page.trim_end().ends_with("</body></html>"));
}

/// `osprey watch --once` from a settings file written as users write it
/// (TOML `[[watch]]` tables, humantime durations): it reads a JSONL file to
/// its end, prints the counts, and a second run reads nothing again.
#[test]
fn watch_once_runs_a_toml_watch_to_the_end_and_resumes_from_its_cursor() {
    if assets_or_skip().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let posts = dir.path().join("posts.jsonl");
    let line =
        |id: &str, title: &str, body: &str| serde_json::json!({"id": id, "title": title, "body": body}).to_string();
    let lines = [
        line("1", "The borrow checker rejects my Rust code", "Lifetimes everywhere. Cargo builds are slow too."),
        line("2", "Slow PostgreSQL query", "The planner ignores my index. What should I check?"),
        line("3", "My sourdough finally rose", "Rye flour and a long proof. The crust was perfect."),
        line("4", "The borrow checker rejects my Rust code", "Lifetimes everywhere. Cargo builds are slow too."),
    ];
    std::fs::write(&posts, lines.join("\n") + "\n").expect("write posts");
    let settings = dir.path().join("watch.toml");
    let toml = format!(
        r#"[server]
bind = "127.0.0.1:0"
data_dir = "{data}"
drain_delay = "0s"

[[watch]]
name = "tech"
threshold = 0.3
analyses = ["sentiment", "summary"]
seen_retention = "7days"
topics = [
  {{ label = "programming", examples = ["Rust compiler errors", "cargo build"] }},
  {{ label = "databases", examples = ["slow SQL query", "PostgreSQL index"] }},
]

[[watch.sources]]
type = "jsonl"
name = "inbox"
path = "{posts}"
tail = false

[[watch.alerts]]
type = "log"
name = "log"
"#,
        data = dir.path().join("data").display(),
        posts = posts.display()
    );
    std::fs::write(&settings, toml).expect("write settings");
    let run = || {
        let out =
            osprey().args(["--config", settings.to_str().expect("utf8"), "watch", "--once"]).output().expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).expect("utf8");
        let v: serde_json::Value = serde_json::from_str(&text).expect("counts as JSON");
        v["watches"][0].clone()
    };
    let first = run();
    assert_eq!(
        (&first["received"], &first["kept"], &first["filtered"], &first["duplicate"]),
        (&serde_json::json!(4), &serde_json::json!(2), &serde_json::json!(1), &serde_json::json!(1)),
        "{first}"
    );
    assert_eq!(first["cursors"][0]["source"], "inbox", "{first}");
    let second = run();
    assert_eq!(second["received"], 0, "resumed after the committed cursor: {second}");
}
