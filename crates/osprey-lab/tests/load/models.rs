//! Closed and open models: counts, schedules, coordinated omission.

use crate::helpers::{run_load, spawn_app};

#[test]
fn closed_model_counts_match_the_server() {
    let app = spawn_app();
    let url = app.url("/fast");
    let r = run_load(&["--url", &url, "-c", "4", "--threads", "2", "-d", "20s", "--max-requests", "600"]);
    assert_eq!(r.requests.sent, 600, "--max-requests is exact");
    assert_eq!(r.requests.completed, 600);
    assert_eq!(r.requests.ok, 600);
    assert_eq!(app.received(), 600, "the server saw every request");
    assert_eq!(r.connections.opened, 4, "one keep-alive connection per VU");
    assert!((r.connections.requests_per_connection - 150.0).abs() < 1e-9);
    assert_eq!(r.model.kind, "closed");
    assert!(r.latency_ms.count >= 600, "corrected figures cover at least the raw samples");
    assert_eq!(r.latency_uncorrected_ms.count, 600);
    assert_eq!(r.exit_code, 0);

    let app = spawn_app();
    let r = run_load(&["--url", &app.url("/slow"), "-c", "3", "-d", "1s"]);
    assert_eq!(r.requests.completed, app.received(), "duration-bounded run: every response counted once");
    assert_eq!(r.requests.cancelled, 0);
    assert!(r.requests.completed > 0);
    assert_eq!(r.requests.sent, r.requests.ok + r.requests.errors + r.requests.cancelled);
}

#[test]
fn open_model_sends_rate_times_duration() {
    let app = spawn_app();
    let r = run_load(&["--url", &app.url("/fast"), "--rate", "200/s", "-d", "2s", "--threads", "2"]);
    assert_eq!(r.model.kind, "open");
    assert_eq!(r.requests.scheduled, 400, "200/s for 2 s is 400 arrivals");
    assert!((396..=404).contains(&r.requests.sent), "sent {}", r.requests.sent);
    assert_eq!(r.requests.missed, 0);
    assert_eq!(r.requests.completed, app.received());
    let lag = r.client.scheduler_lag_ms.expect("open model reports scheduler lag");
    assert!(lag.count >= 396);
}

#[test]
fn open_model_ramps_follow_the_stages() {
    let app = spawn_app();
    // 0 → 100/s over 1 s (50 arrivals), then 100/s for 1 s (100 arrivals).
    let r = run_load(&["--url", &app.url("/fast"), "--stage", "1s:100/s", "--stage", "1s:100/s"]);
    assert_eq!(r.requests.scheduled, 150);
    assert_eq!(r.stages.len(), 2);
    assert!(r.stages[0].requests.completed < r.stages[1].requests.completed);
}

#[test]
fn coordinated_omission_is_corrected_in_the_open_model() {
    let app = spawn_app();
    // Two connections; the target stalls for 500 ms once, 500 ms in. Arrivals keep their schedule:
    // those due during the stall wait for a connection, and their latency counts from when they were due.
    let r = run_load(&["--url", &app.url("/stall-once"), "--rate", "200", "-d", "2s", "-c", "2"]);
    assert!(r.requests.ok >= 390, "{:?}", r.requests);
    assert!(r.latency_ms.p99 >= 400.0, "corrected p99 {} ms should show the 500 ms stall", r.latency_ms.p99);
    assert!(
        r.latency_uncorrected_ms.p99 < 100.0,
        "a naive (send-to-response) p99 of {} ms would hide it",
        r.latency_uncorrected_ms.p99
    );
    assert!(r.client.send_delay_ms.is_some_and(|d| d.max >= 400.0), "arrivals waited for a connection");
}

#[test]
fn coordinated_omission_is_corrected_in_the_closed_model() {
    let app = spawn_app();
    // One user: during the stall it sends nothing, so its raw samples see one slow response only.
    let r = run_load(&["--url", &app.url("/stall-once"), "-c", "1", "-d", "2s"]);
    assert!(r.latency_uncorrected_ms.max >= 400.0, "the stalled response itself was measured");
    assert!(r.latency_uncorrected_ms.p99 < 100.0, "raw p99 {} hides the stall", r.latency_uncorrected_ms.p99);
    assert!(r.latency_ms.p99 >= 100.0, "corrected p99 {} ms shows it", r.latency_ms.p99);
    assert!(r.model.expected_interval_ms.is_some());
}

#[test]
fn closed_ramps_activate_users_gradually() {
    let app = spawn_app();
    let r = run_load(&["--url", &app.url("/slow"), "--stage", "1s:4", "--stage", "1s:4", "--threads", "2"]);
    assert_eq!(r.model.stages.len(), 2);
    assert!(r.timeline.first().is_some_and(|row| row.target < 4.0));
    assert!(r.connections.opened <= 4);
    assert_eq!(r.requests.completed, app.received());
}

#[test]
fn http2_multiplexes_one_connection() {
    let app = spawn_app();
    let r = run_load(&["--url", &app.url("/fast"), "--http2", "-c", "8", "--max-requests", "400", "-d", "10s"]);
    assert_eq!(r.requests.ok, 400, "{:?} {:?}", r.errors, r.error_samples);
    assert_eq!(r.connections.opened, 1, "8 users share one HTTP/2 connection per thread");
    assert!(r.connections.http2);
}

#[test]
fn breakpoint_finds_the_last_passing_rate() {
    let app = spawn_app();
    // 4 connections to a 50 ms route serve at most ~80 req/s; the rate ramps from 2 to 200 req/s over 10 s.
    let r = run_load(&[
        "--url",
        &app.url("/slow"),
        "--profile",
        "breakpoint",
        "--rate",
        "200",
        "-d",
        "10s",
        "-c",
        "4",
        "--threshold",
        "p95 < 200ms",
    ]);
    let b = r.breakpoint.as_ref().expect("breakpoint result");
    assert!(b.found, "{b:?}");
    let last = b.last_passing_rate.expect("some rate passed");
    assert!(last < 200.0, "{b:?}");
    assert!(b.broken_at_rate.is_some_and(|x| x >= last));
    assert_eq!(b.failed, ["p95 < 200ms"]);
    assert!(r.timeline.len() < 10, "stopped at the break");
    assert_eq!(r.exit_code, 0, "finding the break is the point");
}
