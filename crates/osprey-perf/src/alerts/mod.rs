//! The alert engine: rules with raise and clear levels and a hold, evaluated
//! on windowed averages of signals the server samples (CPU, memory, disk,
//! p95 latency, error rate, cache hit rate, queue saturation, slow queries,
//! model fallbacks), with a bounded history, a live event stream and optional
//! webhook delivery with retries.
//!
//! # Feeding it
//!
//! The server samples its signals every `eval_interval` and calls
//! [`AlertEngine::observe`] with the sampling time and a [`Signals`] map.
//! Each signal's samples are kept for the longest window of the rules that
//! read it; every enabled rule is then evaluated on the mean of its signal's
//! samples in `(at - window, at]`. A rule with no samples in its window does
//! not change state (a sampler that fails for a while neither raises nor
//! clears anything).
//!
//! # State machine (per rule)
//!
//! "Beyond raise" means strictly above `raise` for an `above` rule (below for
//! `below`); "cleared" means at or below `clear` (at or above for `below`).
//!
//! ```text
//!          beyond raise              beyond raise for >= hold
//!   Ok ─────────────────▶ Pending ─────────────────────────▶ Firing  (raised)
//!    ▲                       │                                │  ▲
//!    │     not beyond raise  │                       cleared  │  │ not cleared
//!    └───────────────────────┘                                ▼  │
//!    ◀──────────────────────────────────────────────────── Resolving
//!              cleared for >= hold  (cleared)
//! ```
//!
//! - `Pending` and `Resolving` are timers: their condition must hold at every
//!   evaluation (with data) until `hold` has passed, or the rule goes back to
//!   where it came from. A hold of zero skips them: the alert fires (clears)
//!   on the first evaluation beyond raise (cleared).
//! - Values between the two levels never start a timer, so they keep `Ok` as
//!   `Ok` and `Firing` as `Firing`: that band is the hysteresis. A signal
//!   oscillating around the raise level raises once and stays firing until
//!   it truly falls to the clear level for a whole hold.
//! - Each alert gets an id, shared by its `raised` and `cleared`
//!   [`AlertEvent`]s and its [`AlertRecord`] in the history.
//!
//! # Layout
//!
//! - `rule` — [`AlertRule`], [`Comparison`], [`Severity`], the default rules.
//! - `settings` — [`AlertSettings`], [`WebhookSettings`], validation.
//! - `engine` — [`AlertEngine`]: windows, state machines, history, fan-out.
//! - `signal` — per-signal sample windows.
//! - `event` — the reported types ([`AlertEvent`], [`ActiveAlert`], ...).
//! - `webhook` — bounded queue and delivery task with retries.

mod engine;
mod event;
mod rule;
mod settings;
mod signal;
mod webhook;

#[cfg(test)]
mod tests;

pub use engine::AlertEngine;
pub use event::{ActiveAlert, AlertEvent, AlertRecord, EventKind, RuleState, RuleStatus, Signals};
pub use rule::{validate_rules, AlertRule, Comparison, Severity};
pub use settings::{origin, AlertSettings, WebhookSettings};
pub use webhook::WebhookStats;
