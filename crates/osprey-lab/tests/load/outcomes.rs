//! Errors by kind, thresholds, exit codes and the safety rules.

use std::process::ExitCode;

use crate::helpers::{closed_port, command, run_load, spawn_app};

#[test]
fn connection_refused_counts_as_connect_errors() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/");
    let r = run_load(&["--url", &url, "-c", "1", "--max-requests", "25", "-d", "5s"]);
    assert_eq!(r.errors.connect, 25);
    assert_eq!(r.requests.completed, 0);
    assert_eq!(r.requests.errors, 25);
    assert_eq!(r.exit_code, 4, "nothing succeeded");
    assert!(r.error_samples.iter().any(|s| s.contains("connect")), "{:?}", r.error_samples);
}

#[test]
fn timeouts_are_counted_and_bounded() {
    let app = spawn_app();
    app.pause(true);
    let r = run_load(&["--url", &app.url("/pausable"), "-c", "2", "-d", "1s", "--timeout", "300ms"]);
    assert!(r.errors.timeout >= 2, "{:?} {:?} {:?}", r.errors, r.requests, r.error_samples);
    assert_eq!(r.requests.ok, 0);
    assert_eq!(r.errors.total(), r.errors.timeout);
    app.pause(false);
}

#[test]
fn status_classes_are_errors_by_kind() {
    let app = spawn_app();
    let r = run_load(&["--url", &app.url("/error"), "-c", "2", "--max-requests", "50", "-d", "5s"]);
    assert_eq!(r.errors.status_5xx, 50);
    assert_eq!(r.requests.completed, 50, "a 5xx is still a response");
    assert!((r.error_rate - 1.0).abs() < 1e-12);

    let r = run_load(&["--url", &app.url("/no-such-route"), "-c", "1", "--max-requests", "10", "-d", "5s"]);
    assert_eq!(r.errors.status_4xx, 10);
}

#[test]
fn thresholds_decide_the_exit_code() {
    let app = spawn_app();
    let url = app.url("/fast");
    let r = run_load(&[
        "--url",
        &url,
        "-c",
        "2",
        "--max-requests",
        "200",
        "-d",
        "5s",
        "--threshold",
        "p95 < 10s",
        "--threshold",
        "error_rate < 1%",
        "--threshold",
        "rps > 100000000",
        "--threshold",
        "p99.9 <= 1s",
    ]);
    let passed: Vec<bool> = r.thresholds.iter().map(|t| t.passed).collect();
    assert_eq!(passed, [true, true, false, true]);
    assert_eq!(r.exit_code, 12, "the third threshold failed: exit code 10 + 2");
    assert!(!r.passed);
    assert_eq!(r.thresholds[1].observed, Some(0.0));

    let r = run_load(&[
        "--url",
        &app.url("/error"),
        "-c",
        "1",
        "--max-requests",
        "20",
        "-d",
        "5s",
        "--threshold",
        "error_rate < 1%",
    ]);
    assert_eq!(r.exit_code, 10);

    // Through the command entry point, as CI sees it.
    let cmd = command(&[
        "--url",
        &url,
        "-c",
        "1",
        "--max-requests",
        "20",
        "-q",
        "--threshold",
        "p50 < 0.0001ms",
        "--threads",
        "1",
    ]);
    assert_eq!(osprey_lab::load::run(cmd), ExitCode::from(10));
    let cmd = command(&[
        "--url",
        &url,
        "-c",
        "1",
        "--max-requests",
        "20",
        "-q",
        "--threshold",
        "p50 < 30s",
        "--threads",
        "1",
    ]);
    assert_eq!(osprey_lab::load::run(cmd), ExitCode::SUCCESS);
}

#[test]
fn aborting_thresholds_stop_the_run_early() {
    let app = spawn_app();
    let r = run_load(&[
        "--url",
        &app.url("/error"),
        "-c",
        "2",
        "-d",
        "30s",
        "--threshold",
        "error_rate < 1%",
        "--abort-on-fail",
    ]);
    let abort = r.aborted.as_ref().expect("the run was aborted");
    assert_eq!(abort.threshold.as_deref(), Some("error_rate < 1%"));
    assert!(r.timeline.len() < 30, "stopped long before the 30 s were up");
    assert!(r.thresholds[0].aborted && !r.thresholds[0].passed);
    assert_eq!(r.exit_code, 10);
}

#[test]
fn remote_targets_are_refused_without_permission() {
    let cmd = command(&["--url", "http://192.0.2.10:8080/", "-d", "1s", "-q"]);
    assert_eq!(osprey_lab::load::run(cmd), ExitCode::from(1));
    let err = osprey_lab::load::RunSpec::from_args(&crate::helpers::args(&["--url", "http://192.0.2.10:8080/"]))
        .expect_err("refused");
    assert!(err.to_string().contains("--allow-remote"), "{err}");
}

#[test]
fn runs_are_always_bounded() {
    let a = crate::helpers::args(&["--url", "http://127.0.0.1:9/", "-d", "2h"]);
    assert!(osprey_lab::load::RunSpec::from_args(&a).is_err(), "over an hour needs the endurance profile");
    let a = crate::helpers::args(&["--url", "http://127.0.0.1:9/"]);
    let spec = osprey_lab::load::RunSpec::from_args(&a).expect("valid");
    assert_eq!(
        spec.max_requests,
        osprey_lab::load::spec::DEFAULT_MAX_REQUESTS,
        "a request cap even when none is given"
    );
    let a = crate::helpers::args(&["--url", "http://127.0.0.1:9/", "--max-requests", "5000000000"]);
    assert!(osprey_lab::load::RunSpec::from_args(&a).is_err());
}

#[test]
fn server_timing_splits_latency() {
    let app = spawn_app();
    let r = run_load(&["--url", &app.url("/timing"), "-c", "1", "--max-requests", "50", "-d", "5s"]);
    let st = r.server_timing.expect("Server-Timing was parsed");
    assert_eq!(st.responses, 50);
    for m in ["queue", "tokenize", "inference", "total"] {
        assert!(st.metrics.contains_key(m), "{m}");
    }
    let service = st.breakdown["service"];
    assert!((service.p50 - 4.6).abs() < 0.05, "total 5.8 − queue 1.2: {}", service.p50);
    assert!((st.breakdown["queueing"].p50 - 1.2).abs() < 0.02);
    assert!(r.histograms.server_timing.contains_key("inference"));
}
