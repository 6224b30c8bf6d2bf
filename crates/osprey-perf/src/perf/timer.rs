//! Instrumenting an operation: the [`Timer`] guard and [`observe`] for
//! futures — what Python users know as the `@performance_monitor` decorator
//! and the `measure_time()` context manager.
//!
//! ```
//! use osprey_perf::{observe, OpKind, PerfMonitor};
//!
//! # async fn demo() -> Result<(), std::io::Error> {
//! let perf = PerfMonitor::new();
//! {
//!     let mut timer = perf.time(OpKind::Stage, "tokenize");
//!     // ... work; on a failure path:
//!     timer.fail();
//! } // recorded here, as an error
//!
//! let op = perf.op(OpKind::Statement, "insert_analysis");
//! let rows = observe(&op, async { Ok::<_, std::io::Error>(3) }).await?;
//! # let _ = rows;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::time::{Duration, Instant};

use crate::Op;

/// Records the time from its creation to its drop (or [`Timer::finish`]) into
/// an [`Op`], as a success unless [`Timer::fail`] was called.
///
/// A `Timer` holds its own clone of the op, so it can outlive the handle it
/// was started from and move into a task. Hot loops should prefer
/// [`Op::record`], which avoids the `Arc` clone.
#[must_use = "a Timer records when dropped; bind it with `let _timer = ...`"]
#[derive(Debug)]
pub struct Timer {
    op: Op,
    start: Instant,
    ok: bool,
    recorded: bool,
}

impl Timer {
    pub(crate) fn new(op: Op) -> Self {
        Self { op, start: Instant::now(), ok: true, recorded: false }
    }

    /// Marks the operation as failed; it is still recorded on drop.
    pub fn fail(&mut self) {
        self.ok = false;
    }

    /// Records now with the given outcome (instead of at drop).
    pub fn finish(mut self, ok: bool) {
        self.ok = ok;
        self.record();
    }

    /// Time since the timer started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn record(&mut self) {
        if !self.recorded {
            self.recorded = true;
            self.op.record_since(self.start, self.ok);
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.record();
    }
}

/// Awaits `fut` and records its duration into `op`, as an error when it
/// returns `Err`. A future dropped before completing (a cancelled request) is
/// not recorded: it has neither a duration nor an outcome.
pub async fn observe<T, E>(op: &Op, fut: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    let start = Instant::now();
    let out = fut.await;
    op.record_since(start, out.is_ok());
    out
}
