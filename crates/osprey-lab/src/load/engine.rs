//! Runs one [`RunSpec`]: starts the generator threads, collects their
//! seconds while they run, stops them on abort or Ctrl-C, and merges what
//! they measured into a [`RunOutcome`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use super::collector::{Collector, Tally};
use super::error::LoadError;
use super::hist;
use super::live::Console;
use super::report::{Abort, BreakpointResult, TimelineRow};
use super::request::{Picker, PreparedKind};
use super::saturation::{self, CpuTime};
use super::spec::{shard_share, Model, RunSpec};
use super::stats::{micros, IoCounters, ThreadStats};
use super::worker::{self, Plan, Shared, ThreadOutput};
use super::workload::ArrivalSchedule;

/// Lets every thread build its runtime before the first request is due.
const START_DELAY: Duration = Duration::from_millis(50);

/// What a run measured, before it becomes a report.
pub struct RunOutcome {
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// From the first scheduled request until the last thread stopped.
    pub elapsed: Duration,
    /// All threads' figures merged; the closed model's corrected histograms filled in.
    pub stats: ThreadStats,
    pub rows: Vec<TimelineRow>,
    pub stages: Vec<Tally>,
    pub aborted: Option<Abort>,
    pub interrupted: bool,
    pub breakpoint: Option<BreakpointResult>,
    pub threads: usize,
    /// Per generator thread: CPU time and wall time.
    pub thread_cpu: Vec<(Option<CpuTime>, Duration)>,
    pub process_cpu: Option<CpuTime>,
    /// Closed model: the interval used for the corrected figures.
    pub expected_interval: Option<Duration>,
}

/// Runs `spec` to completion.
pub fn run(spec: &RunSpec, console: &Console) -> Result<RunOutcome, LoadError> {
    let kinds = PreparedKind::prepare_all(&spec.scenario, &spec.target, spec.http2)?;
    let threads = spec.threads;
    let plan = match &spec.model {
        Model::Closed { think, .. } => Plan::Closed {
            shape: spec.shape.clone(),
            think: *think,
            peak: spec.shape.peak().round() as u64,
            budget: AtomicU64::new(shard_share(spec.max_requests, spec.shard)),
        },
        Model::Open { max_connections, max_backlog } => Plan::Open {
            schedule: ArrivalSchedule::new(&spec.shape),
            limit: spec.max_requests,
            connections_per_thread: max_connections.div_ceil(threads as u32).max(1),
            backlog_per_thread: max_backlog.div_ceil(threads),
        },
    };
    let started_at = chrono::Utc::now();
    let start = Instant::now() + START_DELAY;
    let deadline = start + spec.shape.duration();
    let shared = Arc::new(Shared {
        kinds,
        picker: Picker::new(&spec.scenario),
        records: spec.scenario.records.clone(),
        addr: spec.target.addr,
        http2: spec.http2,
        timeout: spec.timeout,
        start,
        deadline,
        drain_deadline: deadline + spec.timeout,
        threads,
        shard: spec.shard,
        seed: spec.seed,
        plan,
    });
    let cpu_before = saturation::process_cpu();
    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let interrupt = console.handle_interrupt.then(|| watch_interrupt(console));
    let mut handles = Vec::with_capacity(threads);
    for i in 0..threads {
        let (sh, tx, stop) = (shared.clone(), tx.clone(), stop_rx.clone());
        let handle = std::thread::Builder::new()
            .name(format!("osprey-load-{i}"))
            .spawn(move || worker::thread_main(sh, i, tx, stop))
            .map_err(LoadError::Start)?;
        handles.push(handle);
    }
    drop(tx);
    let mut collector = Collector::new(spec, threads, console, &stop_tx);
    let mut interrupted = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(msg) => collector.on_msg(msg),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if console.is_interrupted() && !interrupted {
            interrupted = true;
            console.note("interrupted: stopping the run and writing the report");
            let _ = stop_tx.send(true);
        }
    }
    collector.finish();
    let mut outputs: Vec<ThreadOutput> = Vec::with_capacity(threads);
    for h in handles {
        let out = h
            .join()
            .map_err(|_| LoadError::Start(std::io::Error::other("a generator thread panicked")))?
            .map_err(LoadError::Start)?;
        outputs.push(out);
    }
    let elapsed = Instant::now().saturating_duration_since(start);
    if let Some((done, helper)) = interrupt {
        let _ = done.send(());
        let _ = helper.join();
    }
    let process_cpu = saturation::process_cpu().zip(cpu_before).map(|(a, b)| a.since(b));
    let mut stats = ThreadStats::new(shared.kinds.len(), start, Arc::new(IoCounters::default()));
    for o in &outputs {
        stats.merge(&o.stats);
    }
    let expected_interval = match &spec.model {
        Model::Closed { think, expected_interval } => Some(correct_closed(&mut stats, *think, *expected_interval)),
        Model::Open { .. } => None,
    };
    Ok(RunOutcome {
        started_at,
        elapsed,
        stats,
        rows: std::mem::take(&mut collector.rows),
        stages: std::mem::take(&mut collector.stages),
        aborted: collector.aborted.take(),
        interrupted,
        breakpoint: collector.breakpoint.take(),
        threads,
        thread_cpu: outputs.iter().map(|o| (o.cpu, o.wall)).collect(),
        process_cpu,
        expected_interval,
    })
}

/// Closed model: fills each kind's corrected histogram from its raw one with
/// HdrHistogram's `record_correct` rule: a response that took `n` expected
/// intervals stands for the `n - 1` requests the user could not send meanwhile.
fn correct_closed(stats: &mut ThreadStats, think: Duration, given: Option<Duration>) -> Duration {
    let mut all = hist::precise();
    for k in &stats.kinds {
        hist::add(&mut all, &k.raw);
    }
    let interval = given.unwrap_or_else(|| {
        let median = if all.is_empty() { 0 } else { all.value_at_quantile(0.5) };
        think + Duration::from_micros(median)
    });
    // Bounded so that correction stays cheap whatever the latency spread.
    let interval_us = micros(interval).max(all.max() / 10_000).max(1);
    for k in &mut stats.kinds {
        k.latency = k.raw.clone_correct(interval_us);
    }
    Duration::from_micros(interval_us)
}

/// Sets `console.interrupted` on Ctrl-C until the returned sender fires.
fn watch_interrupt(console: &Console) -> (oneshot::Sender<()>, std::thread::JoinHandle<()>) {
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let flag = console.interrupted.clone();
    let helper = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async move {
            tokio::select! {
                r = tokio::signal::ctrl_c() => {
                    if r.is_ok() {
                        flag.store(true, Ordering::Relaxed);
                    }
                }
                _ = done_rx => {}
            }
        });
    });
    (done_tx, helper)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::stats::Timing;

    #[test]
    fn closed_correction_backfills_stalls() {
        let start = Instant::now();
        let mut stats = ThreadStats::new(1, start, Arc::new(IoCounters::default()));
        for _ in 0..999 {
            stats.on_response(0, start, Timing { raw_us: 1_000, corrected_us: None }, None, 0);
        }
        stats.on_response(0, start, Timing { raw_us: 500_000, corrected_us: None }, None, 0);
        let interval = correct_closed(&mut stats, Duration::ZERO, None);
        assert_eq!(interval, Duration::from_millis(1));
        let k = &stats.kinds[0];
        assert!(k.raw.value_at_quantile(0.99) < 2_000, "raw p99 misses the stall");
        assert!(k.latency.value_at_quantile(0.99) > 200_000, "corrected p99 shows it");
        assert!(k.latency.len() > 1_400);
    }
}
