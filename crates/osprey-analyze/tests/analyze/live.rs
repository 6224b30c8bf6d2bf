//! `--url`: a stand-in server on port 0 answers with the overload fixture's
//! recorded documents (first sample, then second), and 404 for the alerts.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::ExitCode;

use osprey_analyze::{run, AnalyzeArgs};
use serde_json::Value;

use crate::{analyse, fixture};

fn recorded() -> Vec<Value> {
    let text = std::fs::read_to_string(fixture("overload.samples.json")).expect("fixture");
    let bundle: Value = serde_json::from_str(&text).expect("json");
    bundle["samples"].as_array().cloned().expect("samples")
}

/// Serves `/performance/stats` and `/performance/cache/stats` from the
/// recorded samples in turn (the last one repeats); everything else is 404.
fn stand_in() -> u16 {
    let samples = recorded();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let (mut stats, mut cache) = (0usize, 0usize);
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Ok(read) = stream.try_clone() else { continue };
            let mut reader = BufReader::new(read);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let pick = |i: &mut usize, key: &str| {
                let v = samples[(*i).min(samples.len() - 1)][key].to_string();
                *i += 1;
                v
            };
            let (status, body) = match path.as_str() {
                "/performance/stats" => ("200 OK", pick(&mut stats, "stats")),
                "/performance/cache/stats" => ("200 OK", pick(&mut cache, "cache_stats")),
                _ => ("404 Not Found", r#"{"error": {"code": "not_found", "message": "no"}}"#.to_string()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn one_live_sample() {
    let port = stand_in();
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("a.json");
    let code = run(AnalyzeArgs {
        url: Some(format!("http://127.0.0.1:{port}/")),
        json: Some(json.clone()),
        ..AnalyzeArgs::default()
    })
    .expect("runs");
    assert_eq!(code, ExitCode::from(0));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(json).expect("json")).expect("parses");
    assert_eq!(v["inputs"]["stats"]["samples"], 1);
    assert_eq!(v["bottlenecks"][0]["id"], "cpu_bound");
    let missing: Vec<&str> =
        v["missing_signals"].as_array().expect("list").iter().filter_map(|m| m["id"].as_str()).collect();
    assert!(missing.contains(&"model_fallback"), "the alerts answered 404: {missing:?}");
}

#[test]
fn two_samples_saved_and_read_back_give_the_same_analysis() {
    let port = stand_in();
    let dir = tempfile::tempdir().expect("tempdir");
    let (saved, live_json, file_json) =
        (dir.path().join("s.json"), dir.path().join("l.json"), dir.path().join("f.json"));
    let live = AnalyzeArgs {
        url: Some(format!("http://127.0.0.1:{port}/performance/stats")),
        sample: Some("1s".into()),
        save_stats: Some(saved.clone()),
        json: Some(live_json.clone()),
        ..AnalyzeArgs::default()
    };
    assert_eq!(run(live).expect("runs"), ExitCode::from(0));
    let again = AnalyzeArgs { stats: Some(saved.clone()), json: Some(file_json.clone()), ..AnalyzeArgs::default() };
    assert_eq!(run(again).expect("runs"), ExitCode::from(0));
    let read = |p: &std::path::Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(p).expect("json")).expect("parses")
    };
    let (l, f) = (read(&live_json), read(&file_json));
    assert_eq!(l["inputs"]["stats"]["samples"], 2);
    assert_eq!(l["score"], f["score"]);
    assert_eq!(l["bottlenecks"], f["bottlenecks"]);
    let bundle = read(&saved);
    assert_eq!(bundle["schema"], "osprey.analyze.samples/v1");
    assert_eq!(bundle["samples"].as_array().map(Vec::len), Some(2));
    // The cache counters are differences between the two samples.
    let cache = l["bottlenecks"].as_array().expect("list").iter().all(|b| b["id"] != "cache_misses");
    assert!(cache, "unique traffic evicts nothing: no cache bottleneck");
}

#[test]
fn rss_growing_between_samples_is_memory_growth() {
    let mut samples = recorded();
    samples.truncate(1);
    let mut later = samples[0].clone();
    let at = samples[0]["taken_at_ms"].as_f64().expect("time");
    let rss = samples[0]["stats"]["live"]["process"]["rss_bytes"].as_f64().expect("rss");
    later["taken_at_ms"] = (at + 20_000.0).into();
    later["stats"]["live"]["process"]["rss_bytes"] = (rss + 60.0 * 1024.0 * 1024.0).into();
    samples.push(later);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("growth.json");
    let bundle = serde_json::json!({"schema": "osprey.analyze.samples/v1", "samples": samples});
    std::fs::write(&path, bundle.to_string()).expect("write");
    let inputs = osprey_analyze::Inputs::read(None, None, Some(&path), None).expect("reads");
    let a = osprey_analyze::analyze(&inputs, &Default::default());
    let b = a.bottlenecks.iter().find(|b| b.id == "memory_growth").expect("memory growth found");
    assert_eq!(b.evidence[0].value, 3.0 * 1024.0 * 1024.0, "60 MiB over 20 s");
    assert_eq!(b.evidence[0].window, "sample (20.0 s)");
    assert!(a
        .recommendations
        .iter()
        .any(|r| r.setting == "cache.l1.max_bytes" && r.evidence.contains(&"memory_growth".to_string())));
    // The unchanged recorded run has no such growth.
    assert!(!analyse(None, Some("overload.samples.json"), None).bottlenecks.iter().any(|b| b.id == "memory_growth"));
}

#[test]
fn a_server_that_is_not_there_is_an_input_error() {
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let e = run(AnalyzeArgs { url: Some(format!("http://127.0.0.1:{port}")), ..AnalyzeArgs::default() })
        .expect_err("nothing listens");
    let msg = e.to_string();
    assert!(msg.contains("/performance/stats failed"), "{msg}");
}
