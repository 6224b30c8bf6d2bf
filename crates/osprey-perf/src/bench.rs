//! `osprey bench perf`: the cost of [`Op::record`] on the hot path.
//!
//! Times a tight loop of `record` calls on one op, first from one thread, then
//! from two threads recording into the *same* op at once (the contended case:
//! both threads hit the same second's cache lines). Durations vary over a few
//! hundred buckets so the loop does not hammer a single counter. The default
//! clock is used, so the figures include reading the coarse second.
//!
//! Figures only mean something from an optimised build (`--release`); nothing
//! here asserts on them.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{Op, OpKind, PerfMonitor};

/// Nanoseconds per [`Op::record`] call.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchRecordReport {
    /// One thread recording alone.
    pub ns_per_record_single_thread: f64,
    /// Two threads recording into the same op concurrently, each doing
    /// `iterations` calls: wall time divided by `iterations`, i.e. what one
    /// call costs a thread while another records alongside it.
    pub ns_per_record_two_threads: f64,
}

/// Runs `iterations` records single-threaded (after a warm-up of a tenth as
/// many), then `iterations` per thread on two threads.
pub fn bench_record(iterations: u64) -> BenchRecordReport {
    let iterations = iterations.max(1);
    let perf = PerfMonitor::new();
    let op = perf.op(OpKind::Other, "bench_record");

    run(&op, iterations / 10 + 1, 0);
    let single = run(&op, iterations, 0);

    let wall = std::thread::scope(|s| {
        let start = Instant::now();
        let other = s.spawn(|| run(&op, iterations, 7));
        run(&op, iterations, 3);
        // A panic in the other thread is a bug in `record`; surface it.
        if let Err(panic) = other.join() {
            std::panic::resume_unwind(panic);
        }
        start.elapsed()
    });

    BenchRecordReport {
        ns_per_record_single_thread: single.as_nanos() as f64 / iterations as f64,
        ns_per_record_two_threads: wall.as_nanos() as f64 / iterations as f64,
    }
}

fn run(op: &Op, iterations: u64, seed: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iterations {
        let ns = 20_000 + ((i.wrapping_add(seed) & 1023) * 977);
        op.record(black_box(Duration::from_nanos(ns)), black_box(i & 63 != 0));
    }
    start.elapsed()
}
