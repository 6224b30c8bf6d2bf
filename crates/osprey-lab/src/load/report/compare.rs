//! `--compare previous.json` and `osprey load compare`: the differences
//! between two reports, metric by metric, marked better or worse.

use std::fmt::Write as _;

use super::{Document, Report};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
}

/// One row of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub metric: String,
    pub before: f64,
    pub after: f64,
    /// `after - before`.
    pub change: f64,
    /// Relative change in percent; `None` when `before` is 0.
    pub percent: Option<f64>,
    /// `Some(true)` when the change is an improvement, `None` when unchanged.
    pub improved: Option<bool>,
}

fn delta(metric: String, before: f64, after: f64, better: Better) -> Delta {
    let change = after - before;
    let percent = (before != 0.0).then(|| change / before * 100.0);
    let improved = (change != 0.0).then(|| (change > 0.0) == (better == Better::Higher));
    Delta { metric, before, after, change, percent, improved }
}

/// Deltas for one pair of runs.
pub fn deltas(before: &Report, after: &Report) -> Vec<Delta> {
    let mut out = vec![
        delta("rps".into(), before.rps, after.rps, Better::Higher),
        delta("error_rate_%".into(), before.error_rate * 100.0, after.error_rate * 100.0, Better::Lower),
        delta("missed".into(), before.requests.missed as f64, after.requests.missed as f64, Better::Lower),
    ];
    let (b, a) = (&before.latency_ms, &after.latency_ms);
    for (name, x, y) in [
        ("p50_ms", b.p50, a.p50),
        ("p90_ms", b.p90, a.p90),
        ("p95_ms", b.p95, a.p95),
        ("p99_ms", b.p99, a.p99),
        ("p999_ms", b.p999, a.p999),
        ("max_ms", b.max, a.max),
    ] {
        out.push(delta(name.into(), x, y, Better::Lower));
    }
    out.push(delta(
        "uncorrected_p99_ms".into(),
        before.latency_uncorrected_ms.p99,
        after.latency_uncorrected_ms.p99,
        Better::Lower,
    ));
    for k in &after.kinds {
        if let Some(old) = before.kinds.iter().find(|o| o.name == k.name) {
            out.push(delta(format!("{}.rps", k.name), old.rps, k.rps, Better::Higher));
            out.push(delta(format!("{}.p95_ms", k.name), old.latency_ms.p95, k.latency_ms.p95, Better::Lower));
            out.push(delta(format!("{}.p99_ms", k.name), old.latency_ms.p99, k.latency_ms.p99, Better::Lower));
        }
    }
    out
}

/// A printable comparison of every run in `after` with its namesake (or sole run) in `before`.
pub fn render(before: &Document, after: &Document) -> String {
    let mut out = String::new();
    let old_runs = before.runs();
    for run in after.runs() {
        let Some(old) =
            old_runs.iter().find(|o| o.name == run.name).or(if old_runs.len() == 1 { old_runs.first() } else { None })
        else {
            let _ = writeln!(out, "{}: no run of that name in the baseline", run.name);
            continue;
        };
        let _ = writeln!(out, "compare {} ({}) → {} ({})", old.name, old.started_at, run.name, run.started_at);
        let _ = writeln!(out, "  {:<26} {:>12} {:>12} {:>12} {:>9}", "metric", "before", "after", "delta", "change");
        for d in deltas(old, run) {
            let verdict = match d.improved {
                Some(true) => "better",
                Some(false) => "worse",
                None => "",
            };
            let _ = writeln!(
                out,
                "  {:<26} {:>12.3} {:>12.3} {:>+12.3} {:>9} {verdict}",
                d.metric,
                d.before,
                d.after,
                d.change,
                d.percent.map_or("n/a".into(), |p| format!("{p:+.1}%"))
            );
        }
    }
    out
}
