//! The three windows and the statistics reported for each.
//!
//! - **1 min** — exactly the last 60 seconds, current second included, at
//!   one-second resolution.
//! - **5 min** and **1 h** — the whole minutes overlapping the last 300 (3600)
//!   seconds, the current partial minute included: the window is its nominal
//!   length rounded out to minute boundaries, between 300 and 359 seconds
//!   (3600 and 3659). Minute resolution is what keeps an op's memory small.
//!
//! Throughput divides the count by the span the window actually covers, or by
//! the time since the op was registered when that is shorter, so a fresh op
//! does not report a fraction of its real rate.

use serde::{Deserialize, Serialize};

use super::histogram::{self, BUCKETS};
use super::ring::{Summary, View, SECONDS_KEPT};

/// A window length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Window {
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "1h")]
    H1,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::M1, Window::M5, Window::H1];

    /// Nominal length in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            Window::M1 => 60,
            Window::M5 => 300,
            Window::H1 => 3600,
        }
    }
}

/// Statistics of one op over one window. Every field is 0 when `count` is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    pub count: u64,
    pub errors: u64,
    /// `errors / count`, in 0..=1.
    pub error_rate: f64,
    pub throughput_per_sec: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The three windows of one op, serialised with keys `"1m"`, `"5m"`, `"1h"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Windows {
    #[serde(rename = "1m")]
    pub m1: WindowStats,
    #[serde(rename = "5m")]
    pub m5: WindowStats,
    #[serde(rename = "1h")]
    pub h1: WindowStats,
}

/// Computes `window` from `view`; `first_seen` is the op's registration second.
pub(crate) fn stats(view: &View, first_seen: u64, window: Window) -> WindowStats {
    let now = view.now;
    let mut acc = Accumulator::default();
    let start = match window {
        Window::M1 => {
            let start = (now + 1).saturating_sub(SECONDS_KEPT);
            view.seconds.iter().filter(|(s, _)| *s >= start).for_each(|(_, sum)| acc.add(sum));
            start
        }
        Window::M5 | Window::H1 => {
            let first_minute = (now + 1).saturating_sub(window.seconds()) / 60;
            view.minutes.iter().filter(|(m, _)| *m >= first_minute).for_each(|(_, sum)| acc.add(sum));
            first_minute * 60
        }
    };
    view.hot.iter().filter(|(s, _)| *s >= start).for_each(|(_, sum)| acc.add(sum));
    let span = (now - start + 1).min(now.saturating_sub(first_seen) + 1);
    acc.finish(span)
}

struct Accumulator {
    counts: Vec<u64>,
    errors: u64,
    sum_ns: u64,
    max_ns: u64,
}

impl Default for Accumulator {
    fn default() -> Self {
        Self { counts: vec![0; BUCKETS], errors: 0, sum_ns: 0, max_ns: 0 }
    }
}

impl Accumulator {
    fn add(&mut self, summary: &Summary) {
        summary.hist.add_to(&mut self.counts);
        self.errors += summary.errors;
        self.sum_ns = self.sum_ns.saturating_add(summary.sum_ns);
        self.max_ns = self.max_ns.max(summary.max_ns);
    }

    fn finish(self, span_secs: u64) -> WindowStats {
        let count: u64 = self.counts.iter().sum();
        if count == 0 {
            return WindowStats::default();
        }
        // Counters are read without a lock and may be a few increments apart.
        let errors = self.errors.min(count);
        let max_ns = self.max_ns as f64;
        let q = |q| histogram::quantile(&self.counts, count, q).min(max_ns) / 1e6;
        WindowStats {
            count,
            errors,
            error_rate: errors as f64 / count as f64,
            throughput_per_sec: count as f64 / span_secs.max(1) as f64,
            mean_ms: self.sum_ns as f64 / count as f64 / 1e6,
            p50_ms: q(0.50),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            max_ms: max_ns / 1e6,
        }
    }
}
