//! The report: schema keys, round trips, HTML, CSV, comparisons and shard merging.

use osprey_lab::load::report::{compare, csv, html};
use osprey_lab::load::{hist, merge, Document, RunArgs};
use serde_json::Value;

use crate::helpers::{args, run_args, run_load, spawn_app};

#[test]
fn json_report_has_the_schema_and_round_trips() {
    let app = spawn_app();
    let r = run_load(&["--url", &app.url("/fast"), "-c", "2", "-d", "1s", "--threshold", "p95 < 5s"]);
    let doc = Document::Run(Box::new(r.clone()));
    let json = doc.to_json().expect("serialises");
    let v: Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(v["schema"], "osprey.load/v1");
    assert_eq!(v["kind"], "run");
    for key in ["sent", "completed", "missed", "errors", "ok", "scheduled", "cancelled"] {
        assert!(v["requests"][key].is_u64(), "requests.{key}");
    }
    for key in ["p50", "p90", "p95", "p99", "p999", "max"] {
        assert!(v["latency_ms"][key].is_number(), "latency_ms.{key}");
        assert!(v["latency_uncorrected_ms"][key].is_number(), "latency_uncorrected_ms.{key}");
    }
    assert!(v["rps"].as_f64().is_some_and(|x| x > 0.0));
    for key in ["kinds", "timeline", "errors", "connections", "client", "thresholds", "histograms", "stages"] {
        assert!(!v[key].is_null(), "{key}");
    }
    assert!(v["timeline"].as_array().is_some_and(|t| !t.is_empty()));
    assert!(v["timeline"][0]["p99_ms"].is_number());
    assert!(v["client"]["saturated"].is_boolean());
    assert_eq!(v["thresholds"][0]["passed"], true);
    assert_eq!(v["histograms"]["encoding"], "hdrhistogram-v2-deflate-base64");

    let back = Document::parse(&json).expect("parses back");
    let Document::Run(back) = back else { panic!("a run report") };
    assert_eq!(back.requests, r.requests);
    let (x, y) = (back.latency_ms, r.latency_ms);
    assert_eq!(x.count, y.count);
    for (a, b) in [(x.p50, y.p50), (x.p99, y.p99), (x.p999, y.p999), (x.max, y.max), (x.mean, y.mean)] {
        assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}: JSON floats round-trip to the last digit or so");
    }
    let h = hist::decode(&back.histograms.latency_uncorrected).expect("histogram decodes");
    assert_eq!(h.len(), r.requests.completed);
    assert!(Document::parse(&json.replace("osprey.load/v1", "osprey.load/v0")).is_err(), "unknown schema refused");
}

#[test]
fn html_report_is_self_contained_with_charts() {
    let app = spawn_app();
    let r = run_load(&["--url", &app.url("/fast"), "--rate", "100", "-d", "2s"]);
    let page = html::render(&Document::Run(Box::new(r.clone())));
    assert!(page.starts_with("<!doctype html>"));
    let without_target = page.replace(&r.target.url, "");
    assert!(!without_target.contains("http://") && !without_target.contains("https://"), "no external references");
    assert!(!page.contains("<script") && !page.contains("<link") && !page.contains("src="));
    assert!(page.matches("<svg").count() >= 4, "latency over time, percentiles, rps, errors");
    assert!(page.contains("Latency over time") && page.contains("Latency by percentile") && page.contains("polyline"));
    assert!(page.contains(&r.target.url), "the target is named as text");
}

#[test]
fn csv_has_one_row_per_second() {
    let app = spawn_app();
    let r = run_load(&["--url", &app.url("/fast"), "-c", "1", "-d", "2s"]);
    let text = csv::render(&Document::Run(Box::new(r.clone())));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], csv::HEADER);
    assert_eq!(lines.len() - 1, r.timeline.len());
    assert!(lines[1].starts_with("load,0,"));
}

#[test]
fn compare_prints_deltas() {
    let app = spawn_app();
    let fast = run_load(&["--url", &app.url("/fast"), "-c", "2", "-d", "1s"]);
    let slow = run_load(&["--url", &app.url("/slow"), "-c", "2", "-d", "1s"]);
    let out = compare::render(&Document::Run(Box::new(fast.clone())), &Document::Run(Box::new(slow.clone())));
    assert!(out.contains("rps") && out.contains("p99_ms") && out.contains("p50_ms"));
    let deltas = compare::deltas(&fast, &slow);
    let p50 = deltas.iter().find(|d| d.metric == "p50_ms").expect("p50 row");
    assert!(p50.change > 0.0 && p50.improved == Some(false), "50 ms responses are slower: {p50:?}");
    let rps = deltas.iter().find(|d| d.metric == "rps").expect("rps row");
    assert_eq!(rps.improved, Some(false));
    assert!(out.contains("worse"));
}

#[test]
fn shard_reports_merge_into_the_combined_histogram() {
    let app = spawn_app();
    let url = app.url("/fast");
    let shard = |s: &str| -> RunArgs {
        args(&["--url", &url, "--rate", "200", "-d", "2s", "--shard", s, "--threshold", "p99 < 10s"])
    };
    let (a, b) = (shard("1/2"), shard("2/2"));
    let ha = std::thread::spawn(move || run_args(&a));
    let hb = std::thread::spawn(move || run_args(&b));
    let (ra, rb) = (ha.join().expect("shard 1"), hb.join().expect("shard 2"));
    assert_eq!(ra.shard.map(|s| (s.index, s.count)), Some((1, 2)));
    assert_eq!(ra.requests.scheduled + rb.requests.scheduled, 400, "each shard sends its half of the rate");
    assert_eq!(ra.requests.scheduled, 200);

    // Through JSON, as `osprey load merge` reads them.
    let reparse = |r: &osprey_lab::load::Report| match Document::parse(
        &Document::Run(Box::new(r.clone())).to_json().expect("json"),
    )
    .expect("parse")
    {
        Document::Run(r) => *r,
        Document::Suite(_) => unreachable!("a run"),
    };
    let merged = merge::merge(&[reparse(&ra), reparse(&rb)]).expect("merges");
    assert_eq!(merged.merged_from, Some(2));
    assert!(merged.shard.is_none());
    assert_eq!(merged.requests.sent, ra.requests.sent + rb.requests.sent);
    assert_eq!(merged.requests.completed, app.received());
    let mut combined = hist::decode(&ra.histograms.latency).expect("a");
    combined.add(hist::decode(&rb.histograms.latency).expect("b")).expect("add");
    let merged_hist = hist::decode(&merged.histograms.latency).expect("merged");
    assert_eq!(merged_hist, combined, "the merged histogram is the combined one");
    assert_eq!(merged.latency_ms, hist::LatencySummary::of(&combined));
    assert!(merged.thresholds[0].passed);
    assert_eq!(merged.exit_code, 0);
    assert!(merge::merge(&[reparse(&ra), reparse(&ra)]).is_err(), "a shard twice is refused");
}
