//! Performance monitoring and alerting for osprey.
//!
//! Two independent halves, both fed by the server:
//!
//! - [`PerfMonitor`] — per operation (route, pipeline stage, model, cache
//!   tier, statement, job) counts, errors and latency percentiles (p50, p95,
//!   p99, max) over 1-minute, 5-minute and 1-hour windows, plus throughput.
//!   Recording is lock-free (a few relaxed atomics into the current second's
//!   histogram), so it can sit on every request. Instrument with a
//!   [`Timer`] guard, [`observe`] for futures, or [`Op::record`] directly.
//! - [`AlertEngine`] — rules with raise and clear levels and a hold,
//!   evaluated on windowed signal averages; history, a live event stream and
//!   webhook delivery with retries. See [`alerts`].
//!
//! ```
//! use std::time::Duration;
//! use osprey_perf::{OpKind, PerfMonitor, Window};
//!
//! let perf = PerfMonitor::new();
//! let route = perf.op(OpKind::Route, "POST /v1/analyze");
//! route.record(Duration::from_millis(12), true);
//! {
//!     let _timer = route.start(); // records on drop
//! }
//! assert_eq!(route.window(Window::M1).count, 2);
//! let snapshot = perf.snapshot(); // what GET /performance serves
//! assert_eq!(snapshot.ops[0].windows.m1.count, 2);
//! ```
//!
//! # Layout
//!
//! - `perf` — [`PerfMonitor`], [`Op`], [`OpKind`], snapshots; submodules
//!   `clock` (the coarse recording clock and its thread), `histogram`
//!   (log-linear buckets, ±1.6 %), `ring` (lock-free hot slots,
//!   folded seconds and minutes, the concurrency argument), `window` (the
//!   three windows and [`WindowStats`]), `timer` ([`Timer`], [`observe`]).
//! - [`alerts`] — [`AlertEngine`], rules, settings, events, webhook.
//! - [`mod@bench`] — `osprey bench perf`: the cost of [`Op::record`].
//! - `error` — [`AlertError`].

pub mod alerts;
pub mod bench;
mod error;
mod perf;

pub use alerts::{
    ActiveAlert, AlertEngine, AlertEvent, AlertRecord, AlertRule, AlertSettings, Comparison, EventKind, RuleState,
    RuleStatus, Severity, Signals, WebhookSettings, WebhookStats,
};
pub use bench::{bench_record, BenchRecordReport};
pub use error::AlertError;
pub use perf::{
    observe, Op, OpKind, OpSnapshot, PerfMonitor, PerfSnapshot, Timer, Window, WindowStats, Windows, MAX_OPS,
    OVERFLOW_NAME,
};
