//! Scenario files, data-driven bodies, checks, the built-in scenario and suites.

use std::io::Write as _;

use osprey_lab::load::cli::SuiteArgs;
use osprey_lab::load::suite::{self, Suite};
use osprey_lab::load::Console;
use serde_json::Value;

use crate::helpers::{run_load, spawn_app};

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path).and_then(|mut f| f.write_all(text.as_bytes())).expect("write");
    path
}

#[test]
fn scenario_weights_and_templates_from_jsonl() {
    let app = spawn_app();
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "posts.jsonl",
        concat!(
            r#"{"id": "a", "title": "She said \"no\"", "body": "line one\nline two\ttabbed \\ backslash", "n": 1}"#,
            "\n\n",
            r#"{"id": "b", "title": "naïve café ✓", "body": "</script> & <b>", "n": 2}"#,
            "\n"
        ),
    );
    let scenario = write(
        dir.path(),
        "scenario.toml",
        r#"
            name = "echo-test"
            data = "posts.jsonl"
            headers = { "x-test" = "1" }

            [[request]]
            name = "post"
            weight = 3
            path = "/echo"
            body = '{"id": "{{id}}", "text": "{{title}}: {{body}}", "n": {{json:n}}, "seq": {{@seq}}}'
            check = { status = 200, json = ["results.0.label"] }

            [[request]]
            name = "fast"
            weight = 1
            method = "GET"
            path = "/fast"
            check = { status = "2xx", body_contains = "ok" }
        "#,
    );
    let r = run_load(&[
        "--url",
        &app.url("/"),
        "--scenario",
        scenario.to_str().expect("utf-8"),
        "-c",
        "2",
        "--max-requests",
        "800",
        "-d",
        "20s",
    ]);
    assert_eq!(r.requests.ok, 800, "{:?} {:?}", r.errors, r.error_samples);
    assert_eq!(r.scenario, "echo-test");
    let names: Vec<&str> = r.kinds.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["post", "fast"]);
    let share = r.kinds[0].requests.sent as f64 / 800.0;
    assert!((0.65..0.85).contains(&share), "weight 3:1 gave a {share} share");

    let bodies = app.state.bodies.lock().expect("lock");
    assert_eq!(bodies.len() as u64, r.kinds[0].requests.sent, "every templated body was valid JSON");
    let first = bodies.iter().find(|b| b["id"] == "a").expect("record a was used");
    assert_eq!(first["text"], "She said \"no\": line one\nline two\ttabbed \\ backslash");
    assert_eq!(first["n"], 1);
    let second = bodies.iter().find(|b| b["id"] == "b").expect("record b was used");
    assert_eq!(second["text"], "naïve café ✓: </script> & <b>");
    let mut seqs: Vec<u64> = bodies.iter().filter_map(|b| b["seq"].as_u64()).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert!(seqs.len() > 100, "{{{{@seq}}}} changes per request");
}

#[test]
fn failed_checks_are_their_own_error_kind() {
    let app = spawn_app();
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write(
        dir.path(),
        "s.toml",
        r#"
            [[request]]
            name = "labels"
            path = "/json"
            check = { json = ["results.0.no_such_field"] }
        "#,
    );
    let r = run_load(&[
        "--url",
        &app.url("/"),
        "--scenario",
        scenario.to_str().expect("utf-8"),
        "--max-requests",
        "30",
        "-d",
        "5s",
    ]);
    assert_eq!(r.errors.check, 30);
    assert_eq!(r.requests.completed, 30);
    assert_eq!(r.kinds[0].errors.check, 30);
}

#[test]
fn bad_scenarios_are_refused_up_front() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "d.jsonl", "{\"title\": \"x\"}\n");
    for (text, why) in [
        (
            "[[request]]\npath = \"/x\"\nbody = '{\"t\": \"{{missing}}\"}'\ndata = \"d.jsonl\"",
            "unknown field placement",
        ),
        ("data = \"d.jsonl\"\n[[request]]\npath = \"/x\"\nbody = '{\"t\": \"{{missing}}\"}'", "missing field"),
        ("[[request]]\npath = \"x\"", "relative path"),
        ("[[request]]\npath = \"/x\"\nweight = 0", "zero weight"),
        ("thresholds = [\"p95 300ms\"]\n[[request]]\npath = \"/x\"", "bad threshold"),
        ("thresholds = [\"nope.p95 < 1s\"]\n[[request]]\npath = \"/x\"", "threshold names no request"),
        ("[[request]]\npath = \"/x\"\ncheck = { status = \"9xx\" }", "bad status class"),
        ("name = \"empty\"", "no requests"),
    ] {
        let path = write(dir.path(), "bad.toml", text);
        assert!(osprey_lab::load::scenario::Scenario::load(path.to_str().expect("utf-8")).is_err(), "{why}");
    }
}

#[test]
fn builtin_osprey_scenario_matches_osprey_routes() {
    let app = spawn_app();
    let r = run_load(&[
        "--url",
        &app.url("/"),
        "--scenario",
        "builtin:osprey",
        "-c",
        "4",
        "--threads",
        "2",
        "--max-requests",
        "400",
        "-d",
        "20s",
    ]);
    assert_eq!(r.requests.ok, 400, "every request had the shape osprey accepts: {:?} {:?}", r.errors, r.error_samples);
    let by_path = app.state.by_path.lock().expect("lock");
    for p in ["/embed", "/v1/sentiment", "/v1/emotion", "/v1/analyze"] {
        assert!(by_path.get(p).copied().unwrap_or(0) > 0, "{p} was exercised");
    }
    assert_eq!(r.thresholds.len(), 1, "the scenario's own threshold");
    assert_eq!(r.exit_code, 0);
}

#[test]
fn suites_run_in_sequence_into_one_report() {
    let app = spawn_app();
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        r#"
            name = "ci"
            url = "{}"
            thresholds = ["error_rate < 1%"]
            pause = "0s"

            [[run]]
            name = "smoke"
            profile = "smoke"
            duration = "1s"

            [[run]]
            name = "ramp"
            rate = "100/s"
            [[run.stage]]
            duration = "1s"
            target = "50/s"
            [[run.stage]]
            duration = "1s"
            target = "100/s"
            thresholds = ["p99 < 30s", "rps > 1000000"]
        "#,
        app.url("/fast")
    );
    let path = write(dir.path(), "perf.toml", &text);
    let overrides =
        SuiteArgs { file: path.clone(), url: None, allow_remote: false, threads: Some(1), output: Default::default() };
    let s = Suite::load(&path, &overrides).expect("suite parses");
    let report = suite::execute(&s, &Console::quiet()).expect("suite runs");
    assert_eq!(report.runs.len(), 2);
    assert_eq!(report.runs[0].model.profile.as_deref(), Some("smoke"));
    assert_eq!(report.runs[0].exit_code, 0);
    let ramp = &report.runs[1];
    assert_eq!(ramp.stages.len(), 2);
    assert_eq!(ramp.stages[1].thresholds.len(), 2);
    assert!(ramp.stages[1].thresholds[0].passed);
    assert!(!ramp.stages[1].thresholds[1].passed);
    // Run threshold 0 (suite-wide), then stage 2's two: the failing one is the third → 12.
    assert_eq!(ramp.exit_code, 12);
    assert_eq!(report.exit_code, 12);
    assert!(!report.passed);
    let json = osprey_lab::load::Document::Suite(report).to_json().expect("serialises");
    let v: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["schema"], "osprey.load/v1");
    assert_eq!(v["kind"], "suite");
}
