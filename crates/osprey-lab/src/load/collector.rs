//! The collector: merges the threads' per-second buckets into the timeline
//! as soon as every thread has reported a second, keeps per-stage tallies,
//! evaluates aborting thresholds and the breakpoint search every second, and
//! feeds the live view. Memory: one row per second and one coarse histogram
//! per stage, whatever the request rate.

use std::collections::{BTreeMap, VecDeque};

use tokio::sync::watch;

use super::hist::{self, Hist};
use super::live::{Console, LiveFigures, LiveView};
use super::report::{Abort, BreakpointResult, TimelineRow};
use super::spec::RunSpec;
use super::stats::SecondBucket;
use super::threshold::{Metric, Observe, Threshold};
use super::worker::Msg;

/// Seconds of data before an aborting threshold is evaluated.
const MIN_LIVE_SECONDS: f64 = 2.0;
/// Finished requests before an aborting threshold (or a breakpoint window) is evaluated.
const MIN_LIVE_SAMPLES: u64 = 20;
/// Seconds in the breakpoint profile's sliding window.
const BREAKPOINT_WINDOW: usize = 5;
/// Consecutive failing windows that locate the breakpoint.
const BREAKPOINT_CONFIRM: u32 = 2;

/// Counters and a coarse latency histogram over some seconds.
#[derive(Debug, Clone)]
pub struct Tally {
    pub sent: u64,
    pub completed: u64,
    pub ok: u64,
    pub errors: u64,
    pub missed: u64,
    pub seconds: f64,
    pub latency: Hist,
}

impl Default for Tally {
    fn default() -> Self {
        Tally { sent: 0, completed: 0, ok: 0, errors: 0, missed: 0, seconds: 0.0, latency: hist::coarse() }
    }
}

impl Tally {
    pub fn add(&mut self, b: &SecondBucket, seconds: f64) {
        self.sent += b.sent;
        self.completed += b.completed;
        self.ok += b.ok;
        self.errors += b.errors;
        self.missed += b.missed;
        self.seconds += seconds;
        hist::add(&mut self.latency, &b.latency);
    }

    pub fn finished(&self) -> u64 {
        self.ok + self.errors
    }
}

impl Observe for Tally {
    fn latency_ms(&self, kind: Option<&str>, metric: Metric) -> Option<f64> {
        if kind.is_some() || self.latency.is_empty() {
            return None;
        }
        let h = &self.latency;
        Some(match metric {
            Metric::Percentile(p) => hist::percentile_ms(h, p)?,
            Metric::Mean => h.mean() / 1000.0,
            Metric::Min => h.min() as f64 / 1000.0,
            Metric::Max => h.max() as f64 / 1000.0,
            _ => return None,
        })
    }
    fn finished(&self, kind: Option<&str>) -> Option<u64> {
        kind.is_none().then(|| Tally::finished(self))
    }
    fn completed(&self, kind: Option<&str>) -> Option<u64> {
        kind.is_none().then_some(self.completed)
    }
    fn errors(&self, kind: Option<&str>) -> Option<u64> {
        kind.is_none().then_some(self.errors)
    }
    fn missed(&self) -> u64 {
        self.missed
    }
    fn scheduled(&self) -> u64 {
        self.sent + self.missed
    }
    fn seconds(&self) -> f64 {
        self.seconds
    }
}

pub struct Collector<'a> {
    spec: &'a RunSpec,
    console: &'a Console,
    stop: &'a watch::Sender<bool>,
    /// Seconds received per thread (each thread reports them in order).
    received: Vec<u32>,
    done: Vec<bool>,
    pending: BTreeMap<u32, SecondBucket>,
    next_row: u32,
    pub rows: Vec<TimelineRow>,
    pub stages: Vec<Tally>,
    pub totals: Tally,
    window: VecDeque<SecondBucket>,
    failing_windows: u32,
    pub aborted: Option<Abort>,
    pub breakpoint: Option<BreakpointResult>,
    live: LiveView,
}

impl<'a> Collector<'a> {
    pub fn new(spec: &'a RunSpec, threads: usize, console: &'a Console, stop: &'a watch::Sender<bool>) -> Self {
        Collector {
            spec,
            console,
            stop,
            received: vec![0; threads],
            done: vec![false; threads],
            pending: BTreeMap::new(),
            next_row: 0,
            rows: Vec::new(),
            stages: vec![Tally::default(); spec.shape.stages.len()],
            totals: Tally::default(),
            window: VecDeque::new(),
            failing_windows: 0,
            aborted: None,
            breakpoint: spec.is_breakpoint().then(BreakpointResult::default),
            live: LiveView::default(),
        }
    }

    pub fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Second(thread, bucket) => {
                self.received[thread] = self.received[thread].max(bucket.second.saturating_add(1));
                self.pending.entry(bucket.second).or_insert_with(|| SecondBucket::new(bucket.second)).merge(&bucket);
            }
            Msg::Done(thread) => self.done[thread] = true,
        }
        self.drain();
    }

    /// Turns every second that all threads have reported into a timeline row.
    fn drain(&mut self) {
        loop {
            let s = self.next_row;
            let ready = self.received.iter().zip(&self.done).all(|(r, d)| *d || *r > s);
            if !ready {
                return;
            }
            let all_done = self.done.iter().all(|d| *d);
            let bucket = match self.pending.remove(&s) {
                Some(b) => b,
                None if all_done && self.pending.is_empty() => return,
                None => SecondBucket::new(s),
            };
            self.finish_second(bucket);
            self.next_row += 1;
        }
    }

    fn finish_second(&mut self, b: SecondBucket) {
        let t = f64::from(b.second);
        let shape = &self.spec.shape;
        let in_load = t < shape.duration().as_secs_f64();
        let row = TimelineRow::from_bucket(&b, shape.value_at(t + 0.5));
        if let Some(stage) = self.stages.get_mut(shape.stage_at(t + 0.5)) {
            stage.add(&b, 1.0);
        }
        self.totals.add(&b, 1.0);
        if self.aborted.is_none() && in_load {
            self.evaluate_aborts(t);
        }
        if in_load && self.breakpoint.as_ref().is_some_and(|r| !r.found) {
            self.search_breakpoint(&b);
        }
        self.live.update(
            self.console,
            &LiveFigures {
                title: &self.spec.name,
                // Seconds after the end (draining in-flight requests) show as 100 %.
                elapsed_s: (t + 1.0).min(shape.duration().as_secs_f64()),
                total_s: shape.duration().as_secs_f64(),
                row: &row,
                sent: self.totals.sent,
                ok: self.totals.ok,
                errors: self.totals.errors,
                missed: self.totals.missed,
            },
        );
        self.rows.push(row);
    }

    fn evaluate_aborts(&mut self, t: f64) {
        let spec = self.spec;
        let stage = spec.shape.stage_at(t + 0.5);
        let checks = spec
            .thresholds
            .iter()
            .map(|th| (th, None, &self.totals))
            .chain(spec.stage_thresholds[stage].iter().map(|th| (th, Some(stage), &self.stages[stage])));
        let mut failure = None;
        for (th, stage, tally) in checks {
            if !th.abort || th.kind.is_some() || tally.seconds < MIN_LIVE_SECONDS || tally.finished() < MIN_LIVE_SAMPLES
            {
                continue;
            }
            let (passed, observed) = th.evaluate(tally);
            if !passed {
                failure = Some((th, stage, observed));
                break;
            }
        }
        let Some((th, stage, observed)) = failure else { return };
        let scope = stage.map_or(String::new(), |s| format!(" in stage {}", s + 1));
        let reason = format!(
            "threshold `{}` failed{scope} after {:.0}s (observed {})",
            th.expr,
            t + 1.0,
            observed.map_or("nothing".into(), |v| format!("{v:.3}"))
        );
        self.console.note(&format!("aborting: {reason}"));
        self.aborted = Some(Abort { reason, threshold: Some(th.expr.clone()), stage, at_s: t + 1.0 });
        let _ = self.stop.send(true);
    }

    fn search_breakpoint(&mut self, b: &SecondBucket) {
        self.window.push_back(b.clone());
        if self.window.len() > BREAKPOINT_WINDOW {
            self.window.pop_front();
        }
        let mut tally = Tally::default();
        for w in &self.window {
            tally.add(w, 1.0);
        }
        if self.window.len() < 3 || tally.finished() < MIN_LIVE_SAMPLES {
            return;
        }
        let failed: Vec<&Threshold> =
            self.spec.thresholds.iter().filter(|t| t.kind.is_none() && !t.evaluate(&tally).0).collect();
        let rate = self.spec.shape.value_at(f64::from(b.second) + 1.0);
        let Some(result) = self.breakpoint.as_mut() else { return };
        if failed.is_empty() {
            self.failing_windows = 0;
            result.last_passing_rate = Some(rate);
            result.last_passing_rps = Some(tally.completed as f64 / tally.seconds);
            return;
        }
        self.failing_windows += 1;
        if self.failing_windows >= BREAKPOINT_CONFIRM {
            result.found = true;
            result.broken_at_rate = Some(rate);
            result.broken_at_s = Some(f64::from(b.second) + 1.0);
            result.failed = failed.iter().map(|t| t.expr.clone()).collect();
            self.console.note(&format!(
                "breakpoint: {} failed at {rate:.0} req/s; last passing rate {}",
                result.failed.join(", "),
                result.last_passing_rate.map_or("none".into(), |r| format!("{r:.0} req/s"))
            ));
            let _ = self.stop.send(true);
        }
    }

    /// Rows for seconds still pending when the threads are gone.
    pub fn finish(&mut self) {
        for d in &mut self.done {
            *d = true;
        }
        self.drain();
        let rest: Vec<SecondBucket> = std::mem::take(&mut self.pending).into_values().collect();
        for b in rest {
            self.finish_second(b);
        }
    }
}
