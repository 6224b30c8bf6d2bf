//! The command: exit codes, outputs, usage errors.

use std::process::ExitCode;

use osprey_analyze::{exit, run, AnalyzeArgs};

use crate::{analyse, fixture};

fn args() -> AnalyzeArgs {
    AnalyzeArgs::default()
}

fn code(a: AnalyzeArgs) -> ExitCode {
    run(a).expect("runs")
}

#[test]
fn a_regression_against_the_baseline_fails_with_exit_2() {
    let a = analyse(Some("overload.load.json"), Some("overload.samples.json"), Some("baseline.load.json"));
    let t = a.trends.as_ref().expect("trends");
    assert!(t.failed);
    assert_eq!(t.failures, ["p95 +2922.2% (up > 50% fails)"]);
    assert_eq!(t.warnings, ["p99 +3788.9% (up > 50% warns)"]);
    assert!(t.notes.iter().any(|n| n.contains("different load")), "{:?}", t.notes);
    assert_eq!(a.outcome.exit_code, exit::TREND_FAILURE);

    let c = code(AnalyzeArgs {
        report: Some(fixture("overload.load.json")),
        baseline: Some(fixture("baseline.load.json")),
        ..args()
    });
    assert_eq!(c, ExitCode::from(2));
}

#[test]
fn an_improvement_passes_and_the_reverse_comparison_fails_on_throughput() {
    let a = analyse(Some("baseline.load.json"), None, Some("baseline.load.json"));
    assert_eq!(a.outcome.exit_code, exit::OK);
    assert!(a.trends.as_ref().is_some_and(|t| t.rows.iter().all(|r| r.verdict.as_str() == "same")));
    // Baseline 116 req/s, now 10 req/s: throughput down 91%.
    let a = analyse(Some("baseline.load.json"), None, Some("overload.load.json"));
    let t = a.trends.as_ref().expect("trends");
    assert_eq!(t.failures.len(), 1, "{:?}", t.failures);
    assert!(t.failures[0].starts_with("throughput -91.3%"), "{:?}", t.failures);
}

#[test]
fn a_score_below_fail_under_exits_3_and_a_regression_takes_precedence() {
    let base = || AnalyzeArgs { report: Some(fixture("baseline.load.json")), ..args() };
    assert_eq!(code(AnalyzeArgs { fail_under: Some("100".into()), ..base() }), ExitCode::from(0));
    let overload = || AnalyzeArgs { report: Some(fixture("overload.load.json")), ..args() };
    assert_eq!(code(AnalyzeArgs { fail_under: Some("70".into()), ..overload() }), ExitCode::from(3));
    let both =
        AnalyzeArgs { fail_under: Some("70".into()), baseline: Some(fixture("baseline.load.json")), ..overload() };
    assert_eq!(code(both), ExitCode::from(2));
    let a = analyse(Some("overload.load.json"), None, Some("baseline.load.json"));
    assert_eq!(a.outcome.reasons.len(), 1, "no --fail-under given: only the regression");
}

#[test]
fn input_and_usage_errors_are_errors() {
    let e = run(args()).expect_err("no input").to_string();
    assert!(e.contains("nothing to analyse"), "{e}");
    let e = run(AnalyzeArgs { report: Some(fixture("idle.stats.json")), ..args() }).expect_err("wrong kind");
    assert!(e.to_string().contains("--stats"), "{e}");
    let e = run(AnalyzeArgs { stats: Some(fixture("baseline.load.json")), ..args() }).expect_err("wrong kind");
    assert!(e.to_string().contains("--report"), "{e}");
    let e = run(AnalyzeArgs { report: Some(fixture("missing.json")), ..args() }).expect_err("missing file");
    assert!(e.to_string().contains("missing.json"), "{e}");
    let e = run(AnalyzeArgs { url: Some("http://192.0.2.1:8080".into()), ..args() }).expect_err("remote");
    assert!(e.to_string().contains("not a loopback address"), "{e}");
}

#[test]
fn json_and_html_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (json, html) = (dir.path().join("a.json"), dir.path().join("a.html"));
    let c = code(AnalyzeArgs {
        report: Some(fixture("constrained.load.json")),
        stats: Some(fixture("constrained.samples.json")),
        json: Some(json.clone()),
        html: Some(html.clone()),
        ..args()
    });
    assert_eq!(c, ExitCode::from(0));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parses");
    assert_eq!(v["schema"], "osprey.analysis/v1");
    assert_eq!(v["score"], 73.7);
    assert_eq!(v["grade"], "C");
    assert_eq!(v["saturates_first"], "result cache");
    assert_eq!(v["bottlenecks"][0]["evidence"][1]["source"], "server stats");
    assert_eq!(v["recommendations"][1]["setting"], "batching.max_concurrent_requests");
    assert_eq!(v["outcome"]["exit_code"], 0);
    assert_eq!(v["signals"].as_array().map(Vec::len), Some(10));

    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.starts_with("<!DOCTYPE html>"));
    for external in ["<script", "src=", "<link", "@import", "url("] {
        assert!(!page.contains(external), "the page must be self-contained: found {external}");
    }
    assert!(page.contains("73.7") && page.contains("g-C") && page.contains("cache.l1.max_entries"));
    let a = analyse(Some("constrained.load.json"), Some("constrained.samples.json"), None);
    let section = osprey_analyze::html_section(&a);
    assert!(section.starts_with("<section class=\"osprey-analysis\">") && section.trim_end().ends_with("</section>"));
    assert!(page.contains(&section), "the page embeds the same section other reports get");
}

#[test]
fn the_text_summary_names_everything() {
    let a = analyse(Some("overload.load.json"), Some("overload.samples.json"), Some("baseline.load.json"));
    let text = osprey_analyze::render::text::render(&a);
    for want in [
        "health 58.9 / 100   grade F",
        "saturates first: CPU",
        "1. CPU-bound model threads",
        "live.system.cpu_percent = 100.0 % ≥ 85.0 % (server stats, now)",
        "R1 [high] Add a replica",
        "setting   replicas: 1 → 2",
        "p95 (ms)",
        "FAILURE",
        "exit 2: regression against the baseline",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

/// Every number in `v` replaced by `null`.
fn nullify(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(_) => Value::Null,
        Value::Array(a) => Value::Array(a.into_iter().map(nullify).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, nullify(v))).collect()),
        other => other,
    }
}

#[test]
fn documents_whose_every_number_is_null_are_analysed_not_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(fixture(name)).expect("fixture")).expect("json")
    };
    let (report, stats) = (dir.path().join("r.json"), dir.path().join("s.json"));
    std::fs::write(&report, nullify(read("overload.load.json")).to_string()).expect("write");
    std::fs::write(&stats, nullify(read("overload.samples.json")).to_string()).expect("write");
    let inputs = osprey_analyze::Inputs::read(Some(&report), None, Some(&stats), Some(&report)).expect("tolerated");
    let a = osprey_analyze::analyze(&inputs, &osprey_analyze::Options { fail_under: Some(50.0), ..Default::default() });
    assert_eq!(a.score, None);
    assert!(a.signals.is_empty() && a.missing_signals.len() == 10);
    let ids: Vec<&str> = a.bottlenecks.iter().map(|b| b.id).collect();
    assert_eq!(ids, ["client_saturation"], "only the report's own (boolean) saturation verdict is left");
    assert_eq!(a.bottlenecks[0].evidence[0].metric, "client.saturated");
    assert!(a.trends.as_ref().is_some_and(|t| !t.failed), "nothing to compare is not a regression");
    assert_eq!(a.outcome.exit_code, exit::BELOW_FAIL_UNDER, "no score cannot pass --fail-under");
    // And with whole sections missing.
    std::fs::write(&stats, r#"{"uptime_seconds": 3}"#).expect("write");
    std::fs::write(&report, r#"{"schema": "osprey.load/v1", "rps": 5}"#).expect("write");
    let inputs = osprey_analyze::Inputs::read(Some(&report), None, Some(&stats), None).expect("tolerated");
    let a = osprey_analyze::analyze(&inputs, &Default::default());
    assert_eq!(a.missing_signals.len(), 10, "rps without a target is not scored");
    let text = osprey_analyze::render::text::render(&a);
    assert!(text.contains("health: not scored"), "{text}");
}
