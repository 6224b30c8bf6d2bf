//! [`PerfMonitor`], the registry of operations, and [`Op`], the handle that
//! records into one of them.
//!
//! Registration (`PerfMonitor::op`) takes a read lock on a per-kind map and
//! only on first sight of a name the write lock; callers on a hot path keep the
//! returned [`Op`] (an `Arc`) and call [`Op::record`], which touches nothing
//! shared but that op's atomics (see `ring`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use clock::Clock;
use ring::Ring;
pub use timer::{observe, Timer};
pub use window::{Window, WindowStats, Windows};

mod clock;
mod histogram;
mod ring;
mod timer;
mod window;

#[cfg(test)]
mod tests;

/// Distinct ops kept before new names are folded into [`OVERFLOW_NAME`]:
/// names must come from small fixed sets (route templates, stage names), and
/// this bounds memory if one does not.
pub const MAX_OPS: usize = 4096;
/// The name that absorbs ops registered past [`MAX_OPS`].
pub const OVERFLOW_NAME: &str = "_overflow";

/// What an operation is; part of its identity with its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// An HTTP route, named by its template (`POST /v1/analyze`).
    Route,
    /// A pipeline stage (tokenize, inference, postprocess).
    Stage,
    /// A model's forward pass.
    Model,
    /// A cache tier look-up (`l1`, `l2`).
    Cache,
    /// A database statement, named by a fixed label.
    Statement,
    /// A background job.
    Job,
    Other,
}

impl OpKind {
    pub const ALL: [OpKind; 7] =
        [OpKind::Route, OpKind::Stage, OpKind::Model, OpKind::Cache, OpKind::Statement, OpKind::Job, OpKind::Other];

    fn slot(self) -> usize {
        self as usize
    }
}

/// Registry of operations and their windows. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct PerfMonitor {
    inner: Arc<MonitorInner>,
}

struct MonitorInner {
    clock: Clock,
    /// One map per [`OpKind`], so a look-up borrows the name as `&str`.
    ops: [RwLock<HashMap<String, Op>>; OpKind::ALL.len()],
}

impl Default for PerfMonitor {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PerfMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerfMonitor").field("ops", &self.len()).finish_non_exhaustive()
    }
}

impl PerfMonitor {
    /// A monitor on the process's monotonic clock (see `clock`: recording
    /// reads a coarse second kept by a background thread).
    pub fn new() -> Self {
        Self::with_clock_source(Clock::monotonic())
    }

    /// A monitor whose notion of "now" (in whole seconds, any origin, never
    /// going backwards) comes from `clock`: tests drive time this way, and
    /// it is called on every [`Op::record`], so it must be cheap.
    pub fn with_clock(clock: Arc<dyn Fn() -> u64 + Send + Sync>) -> Self {
        Self::with_clock_source(Clock::Custom(clock))
    }

    fn with_clock_source(clock: Clock) -> Self {
        Self { inner: Arc::new(MonitorInner { clock, ops: Default::default() }) }
    }

    /// The handle for `(kind, name)`, registering it on first use. Keep the
    /// handle where the operation runs often: recording through it skips the
    /// map look-up.
    pub fn op(&self, kind: OpKind, name: &str) -> Op {
        let map = &self.inner.ops[kind.slot()];
        if let Some(op) = map.read().unwrap_or_else(PoisonError::into_inner).get(name) {
            return op.clone();
        }
        let full = self.len() >= MAX_OPS;
        let mut ops = map.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(op) = ops.get(name) {
            return op.clone();
        }
        let name = if full {
            if let Some(op) = ops.get(OVERFLOW_NAME) {
                return op.clone();
            }
            tracing::warn!(
                ?kind,
                op = name,
                max = MAX_OPS,
                "too many distinct ops; folding new names into {OVERFLOW_NAME}"
            );
            OVERFLOW_NAME
        } else {
            name
        };
        let op = Op::new(kind, name, self.inner.clock.clone());
        ops.insert(name.to_string(), op.clone());
        op
    }

    /// Records one observation of `(kind, name)`; a map look-up plus
    /// [`Op::record`].
    pub fn record(&self, kind: OpKind, name: &str, elapsed: Duration, ok: bool) {
        self.op(kind, name).record(elapsed, ok);
    }

    /// A guard that records `(kind, name)` when dropped.
    pub fn time(&self, kind: OpKind, name: &str) -> Timer {
        self.op(kind, name).start()
    }

    /// Housekeeping, meant to run once a second: folds finished seconds out of
    /// every op's hot slots so that recorders never take the slow path, and
    /// drops data older than an hour. Statistics are correct without it.
    pub fn tick(&self) {
        let now = self.inner.clock.now();
        for op in self.all_ops() {
            op.stats.ring.tick(now);
        }
    }

    /// Every op, sorted by kind then name.
    pub fn snapshot(&self) -> PerfSnapshot {
        PerfSnapshot { ops: self.all_ops().iter().map(Op::snapshot).collect() }
    }

    /// One op, if it was ever registered.
    pub fn op_snapshot(&self, kind: OpKind, name: &str) -> Option<OpSnapshot> {
        let op = self.inner.ops[kind.slot()].read().unwrap_or_else(PoisonError::into_inner).get(name).cloned();
        op.map(|op| op.snapshot())
    }

    /// Number of registered ops.
    pub fn len(&self) -> usize {
        self.inner.ops.iter().map(|m| m.read().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn all_ops(&self) -> Vec<Op> {
        let mut all = Vec::new();
        for map in &self.inner.ops {
            let map = map.read().unwrap_or_else(PoisonError::into_inner);
            let start = all.len();
            all.extend(map.values().cloned());
            all[start..].sort_by(|a: &Op, b: &Op| a.name().cmp(b.name()));
        }
        all
    }
}

/// Handle to one operation's statistics. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Op {
    stats: Arc<OpStats>,
}

struct OpStats {
    kind: OpKind,
    name: String,
    clock: Clock,
    first_seen: u64,
    ring: Ring,
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Op").field("kind", &self.stats.kind).field("name", &self.stats.name).finish()
    }
}

impl Op {
    fn new(kind: OpKind, name: &str, clock: Clock) -> Self {
        let first_seen = clock.now();
        Self { stats: Arc::new(OpStats { kind, name: name.to_string(), clock, first_seen, ring: Ring::new() }) }
    }

    pub fn kind(&self) -> OpKind {
        self.stats.kind
    }

    pub fn name(&self) -> &str {
        &self.stats.name
    }

    /// Records one observation: lock-free, a relaxed load of the coarse
    /// clock and three or four relaxed atomic operations.
    #[inline]
    pub fn record(&self, elapsed: Duration, ok: bool) {
        let second = self.stats.clock.recording_second();
        self.stats.ring.record(second, nanos(elapsed), ok);
    }

    /// Records an operation that started at `start` and ends now.
    #[inline]
    pub(crate) fn record_since(&self, start: Instant, ok: bool) {
        let end = Instant::now();
        let second = self.stats.clock.second_of(end);
        self.stats.ring.record(second, nanos(end.saturating_duration_since(start)), ok);
    }

    /// A guard that records the time until it is dropped (see [`Timer`]).
    pub fn start(&self) -> Timer {
        Timer::new(self.clone())
    }

    /// One window's statistics now.
    pub fn window(&self, window: Window) -> WindowStats {
        let view = self.stats.ring.view(self.stats.clock.now());
        window::stats(&view, self.stats.first_seen, window)
    }

    /// Totals and all three windows now.
    pub fn snapshot(&self) -> OpSnapshot {
        let view = self.stats.ring.view(self.stats.clock.now());
        let first_seen = self.stats.first_seen;
        OpSnapshot {
            kind: self.stats.kind,
            name: self.stats.name.clone(),
            total: view.total,
            total_errors: view.total_errors,
            windows: Windows {
                m1: window::stats(&view, first_seen, Window::M1),
                m5: window::stats(&view, first_seen, Window::M5),
                h1: window::stats(&view, first_seen, Window::H1),
            },
        }
    }
}

#[inline]
fn nanos(d: Duration) -> u64 {
    d.as_secs().saturating_mul(1_000_000_000).saturating_add(u64::from(d.subsec_nanos()))
}

/// All ops, as served by the performance endpoints.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PerfSnapshot {
    pub ops: Vec<OpSnapshot>,
}

/// One op: totals since registration and its three windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpSnapshot {
    pub kind: OpKind,
    pub name: String,
    pub total: u64,
    pub total_errors: u64,
    pub windows: Windows,
}
