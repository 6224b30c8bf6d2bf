//! Window tests on an injected clock: nothing here sleeps.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;

/// A monitor whose clock is the returned counter (unix-like seconds).
fn monitor_at(start: u64) -> (PerfMonitor, Arc<AtomicU64>) {
    let now = Arc::new(AtomicU64::new(start));
    let clock = now.clone();
    (PerfMonitor::with_clock(Arc::new(move || clock.load(Ordering::Relaxed))), now)
}

fn within(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= expected * tolerance
}

/// Not aligned to a minute, so windows straddle minute boundaries.
const T0: u64 = 1_700_000_020;

#[test]
fn percentiles_counts_and_errors_over_one_second() {
    let (perf, _) = monitor_at(T0);
    let op = perf.op(OpKind::Route, "POST /v1/analyze");
    for ms in 1..=1000u64 {
        op.record(Duration::from_millis(ms), ms % 10 != 0);
    }
    let m1 = op.window(Window::M1);
    assert_eq!(m1.count, 1000);
    assert_eq!(m1.errors, 100);
    assert!((m1.error_rate - 0.1).abs() < 1e-12);
    assert!(within(m1.p50_ms, 500.0, 0.03), "p50 {}", m1.p50_ms);
    assert!(within(m1.p95_ms, 950.0, 0.03), "p95 {}", m1.p95_ms);
    assert!(within(m1.p99_ms, 990.0, 0.03), "p99 {}", m1.p99_ms);
    assert_eq!(m1.max_ms, 1000.0, "the maximum is exact");
    assert!((m1.mean_ms - 500.5).abs() < 1e-9, "the mean is exact: {}", m1.mean_ms);
    assert!(m1.p99_ms <= m1.max_ms);
    assert_eq!(m1.throughput_per_sec, 1000.0, "one second since the op was first seen");
    let snap = perf.op_snapshot(OpKind::Route, "POST /v1/analyze").expect("registered");
    assert_eq!((snap.total, snap.total_errors), (1000, 100));
    assert_eq!(snap.windows.m1, m1);
    assert_eq!(snap.windows.m5, m1);
    assert_eq!(snap.windows.h1, m1);
    assert!(perf.op_snapshot(OpKind::Route, "GET /nope").is_none());
    assert!(perf.op_snapshot(OpKind::Stage, "POST /v1/analyze").is_none(), "the kind is part of the identity");
}

#[test]
fn values_age_out_of_one_minute_but_stay_in_five_minutes_and_one_hour() {
    let (perf, now) = monitor_at(T0);
    let op = perf.op(OpKind::Model, "sentiment");
    for _ in 0..100 {
        op.record(Duration::from_millis(20), true);
    }
    now.store(T0 + 59, Ordering::Relaxed);
    assert_eq!(op.window(Window::M1).count, 100, "59 s later it is still within the minute");
    now.store(T0 + 61, Ordering::Relaxed);
    let snap = op.snapshot();
    assert_eq!(snap.windows.m1, WindowStats::default(), "an empty window is all zeros");
    assert_eq!(snap.windows.m5.count, 100);
    assert_eq!(snap.windows.h1.count, 100);
    assert!(within(snap.windows.m5.p50_ms, 20.0, 0.02));
    now.store(T0 + 6 * 60, Ordering::Relaxed);
    assert_eq!(op.window(Window::M5).count, 0, "gone from 5m after 6 minutes");
    assert_eq!(op.window(Window::H1).count, 100);
    now.store(T0 + 3600 + 60, Ordering::Relaxed);
    assert_eq!(op.window(Window::H1).count, 0, "gone from 1h after 61 minutes");
    assert_eq!(op.snapshot().total, 100, "totals never age");
}

#[test]
fn throughput_over_a_steady_two_minutes_with_and_without_tick() {
    for tick in [false, true] {
        let (perf, now) = monitor_at(T0);
        let op = perf.op(OpKind::Stage, "inference");
        for second in 0..120 {
            now.store(T0 + second, Ordering::Relaxed);
            for i in 0..10 {
                op.record(Duration::from_micros(100 + i), i != 0);
            }
            if tick {
                perf.tick();
            }
        }
        let snap = op.snapshot();
        assert_eq!(snap.total, 1200, "tick={tick}");
        assert_eq!(snap.total_errors, 120);
        let w = snap.windows;
        assert_eq!(w.m1.count, 600, "tick={tick}");
        assert_eq!(w.m1.errors, 60);
        assert!((w.m1.throughput_per_sec - 10.0).abs() < 1e-9, "{}", w.m1.throughput_per_sec);
        assert_eq!(w.m5.count, 1200);
        assert!((w.m5.throughput_per_sec - 10.0).abs() < 1e-9, "since first seen: {}", w.m5.throughput_per_sec);
        assert_eq!(w.h1.count, 1200);
        assert!(within(w.m1.p50_ms, 0.1045, 0.02), "{}", w.m1.p50_ms);
    }
}

#[test]
fn throughput_divides_by_the_covered_span_once_the_op_is_old() {
    let (perf, now) = monitor_at(T0);
    let op = perf.op(OpKind::Cache, "l1");
    now.store(T0 + 10 * 60, Ordering::Relaxed);
    for _ in 0..600 {
        op.record(Duration::from_nanos(300), true);
    }
    let w = op.snapshot().windows;
    assert!((w.m1.throughput_per_sec - 10.0).abs() < 1e-9, "600 over 60 s");
    // 5m: the whole minutes overlapping the last 300 s, current minute included.
    let now_s = T0 + 600;
    let span = now_s - (now_s + 1 - 300) / 60 * 60 + 1;
    assert!((300..360).contains(&span));
    assert!((w.m5.throughput_per_sec - 600.0 / span as f64).abs() < 1e-9);
    assert_eq!(w.h1.count, 600);
    assert!((w.m1.p50_ms - 0.0003).abs() < 0.0003 * 0.02, "sub-microsecond values keep their precision");
}

#[test]
fn slots_reused_after_long_idle_periods_fold_correctly() {
    let (perf, now) = monitor_at(T0);
    let op = perf.op(OpKind::Statement, "select_cache");
    // Seconds that map to the same hot slot, far apart, with no tick.
    for k in 0..5 {
        now.store(T0 + k * 4 * 30, Ordering::Relaxed);
        op.record(Duration::from_millis(5), k % 2 == 0);
    }
    let snap = op.snapshot();
    assert_eq!((snap.total, snap.total_errors), (5, 2));
    assert_eq!(snap.windows.m1.count, 1, "only the latest is within the minute");
    assert_eq!(snap.windows.m5.count, 3, "records at -4, -2 and 0 minutes");
    assert_eq!(snap.windows.h1.count, 5);
}

#[test]
fn concurrent_recording_loses_no_counts() {
    let (perf, now) = monitor_at(T0);
    let op = perf.op(OpKind::Route, "GET /health");
    let done = AtomicBool::new(false);
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 200_000;
    std::thread::scope(|s| {
        // The clock moves on (with ticks) while the recorders run, so slots
        // rotate under them both lazily and through tick.
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) && now.load(Ordering::Relaxed) < T0 + 3000 {
                now.fetch_add(1, Ordering::Relaxed);
                if now.load(Ordering::Relaxed) % 3 == 0 {
                    perf.tick();
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        let recorders: Vec<_> = (0..THREADS)
            .map(|t| {
                let op = op.clone();
                s.spawn(move || {
                    for i in 0..PER_THREAD {
                        op.record(Duration::from_micros(1 + (i + t) % 5000), i % 100 != 0);
                    }
                })
            })
            .collect();
        for r in recorders {
            let _ = r.join();
        }
        done.store(true, Ordering::Relaxed);
    });
    let snap = op.snapshot();
    assert_eq!(snap.total, THREADS * PER_THREAD);
    assert_eq!(snap.total_errors, THREADS * PER_THREAD / 100);
    assert!(now.load(Ordering::Relaxed) < T0 + 3600);
    // Stragglers can at worst be counted in a later second, never dropped,
    // and a slot relabelled ahead of time by tick is empty once all recorders
    // have finished — so the hour window holds everything.
    now.fetch_add(5, Ordering::Relaxed);
    assert_eq!(op.window(Window::H1).count, THREADS * PER_THREAD);
}

#[test]
fn timer_records_on_drop_and_fail_marks_an_error() {
    let (perf, _) = monitor_at(T0);
    {
        let _timer = perf.time(OpKind::Stage, "tokenize");
    }
    {
        let mut timer = perf.time(OpKind::Stage, "tokenize");
        timer.fail();
    }
    perf.op(OpKind::Stage, "tokenize").start().finish(false);
    let timer = perf.time(OpKind::Stage, "tokenize");
    assert!(timer.elapsed() < Duration::from_secs(60));
    timer.finish(true);
    let snap = perf.op_snapshot(OpKind::Stage, "tokenize").expect("registered");
    assert_eq!((snap.total, snap.total_errors), (4, 2), "finish records once, not again on drop");
}

#[tokio::test]
async fn observe_records_the_outcome_of_a_future() {
    let (perf, _) = monitor_at(T0);
    let op = perf.op(OpKind::Job, "retention");
    let ok: Result<u32, &str> = observe(&op, async { Ok(7) }).await;
    assert_eq!(ok, Ok(7));
    let err: Result<u32, &str> = observe(&op, async { Err("db down") }).await;
    assert_eq!(err, Err("db down"));
    let w = op.window(Window::M1);
    assert_eq!((w.count, w.errors), (2, 1));
}

#[test]
fn snapshot_lists_ops_by_kind_then_name_and_serialises_window_keys() -> Result<(), serde_json::Error> {
    let (perf, _) = monitor_at(T0);
    perf.record(OpKind::Stage, "b", Duration::from_millis(1), true);
    perf.record(OpKind::Route, "z", Duration::from_millis(1), true);
    perf.record(OpKind::Stage, "a", Duration::from_millis(1), false);
    perf.record(OpKind::Route, "z", Duration::from_millis(3), true);
    assert_eq!(perf.len(), 3);
    let snap = perf.snapshot();
    let ids: Vec<(OpKind, &str)> = snap.ops.iter().map(|o| (o.kind, o.name.as_str())).collect();
    assert_eq!(ids, [(OpKind::Route, "z"), (OpKind::Stage, "a"), (OpKind::Stage, "b")]);
    let json = serde_json::to_value(&snap)?;
    let first = &json["ops"][0];
    assert_eq!(first["kind"], "route");
    assert_eq!(first["windows"]["1m"]["count"], 2);
    assert!(first["windows"]["5m"]["p95_ms"].is_f64());
    assert!(first["windows"]["1h"]["throughput_per_sec"].is_f64());
    let back: PerfSnapshot = serde_json::from_value(json)?;
    assert_eq!(back, snap);
    Ok(())
}

#[test]
fn distinct_ops_are_capped() {
    let (perf, _) = monitor_at(T0);
    for i in 0..MAX_OPS + 10 {
        perf.record(OpKind::Other, &format!("op{i}"), Duration::from_micros(1), true);
    }
    assert_eq!(perf.len(), MAX_OPS + 1, "the overflow op absorbs the rest");
    let overflow = perf.op_snapshot(OpKind::Other, OVERFLOW_NAME).expect("overflow op");
    assert_eq!(overflow.total, 10);
}
