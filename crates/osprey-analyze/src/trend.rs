//! Trends: the current load report against a baseline report of the same
//! workload. Regressions past the limits below are failures (exit code 2);
//! the p99 limit is a warning. Every compared figure is listed with its
//! delta, so the table reads like `osprey load compare`.
//!
//! | figure | failure | warning |
//! |---|---|---|
//! | p95 latency | up more than 50 % | |
//! | throughput (rps) | down more than 20 % | |
//! | error rate | up more than 1 percentage point | |
//! | p99 latency | | up more than 50 % |

use serde::Serialize;

use crate::facts::finite;
use crate::input::report::LoadReport;

pub const P95_UP_PERCENT: f64 = 50.0;
pub const RPS_DOWN_PERCENT: f64 = 20.0;
pub const ERROR_UP_POINTS: f64 = 1.0;
pub const P99_UP_PERCENT: f64 = 50.0;
/// Offered rates further apart than this make the comparison suspect.
const OFFERED_APART_PERCENT: f64 = 10.0;
/// Changes smaller than this are "same".
const NOISE_PERCENT: f64 = 1.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Better,
    Same,
    Worse,
    Warning,
    Failure,
    NotCompared,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Same => "same",
            Verdict::Worse => "worse",
            Verdict::Warning => "WARNING",
            Verdict::Failure => "FAILURE",
            Verdict::NotCompared => "not compared",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendRow {
    pub metric: &'static str,
    pub unit: &'static str,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// current − baseline (percentage points for the error rate).
    pub delta: Option<f64>,
    /// Relative change, percent (absent when the baseline is 0).
    pub change_percent: Option<f64>,
    /// The limit this figure is held to, if any.
    pub rule: Option<&'static str>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trends {
    /// The baseline file and run.
    pub baseline: String,
    pub baseline_run: String,
    pub rows: Vec<TrendRow>,
    /// One line per failed limit.
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
    pub failed: bool,
}

#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

#[derive(Clone, Copy)]
enum Limit {
    /// Relative rise (percent) beyond which the verdict is given.
    UpPercent(f64, Verdict),
    DownPercent(f64, Verdict),
    UpPoints(f64, Verdict),
}

struct Spec {
    metric: &'static str,
    unit: &'static str,
    read: fn(&LoadReport) -> Option<f64>,
    better: Better,
    limit: Option<(Limit, &'static str)>,
}

fn specs() -> Vec<Spec> {
    let lat = |metric, read: fn(&LoadReport) -> Option<f64>, limit| Spec {
        metric,
        unit: "ms",
        read,
        better: Better::Lower,
        limit,
    };
    vec![
        Spec {
            metric: "throughput",
            unit: "req/s",
            read: |r| r.rps,
            better: Better::Higher,
            limit: Some((Limit::DownPercent(RPS_DOWN_PERCENT, Verdict::Failure), "down > 20% fails")),
        },
        Spec {
            metric: "error rate",
            unit: "%",
            read: |r| r.error_rate.map(|e| 100.0 * e),
            better: Better::Lower,
            limit: Some((Limit::UpPoints(ERROR_UP_POINTS, Verdict::Failure), "up > 1 pp fails")),
        },
        lat("p50", |r| r.latency_ms.p50, None),
        lat("p90", |r| r.latency_ms.p90, None),
        lat("p95", |r| r.latency_ms.p95, Some((Limit::UpPercent(P95_UP_PERCENT, Verdict::Failure), "up > 50% fails"))),
        lat("p99", |r| r.latency_ms.p99, Some((Limit::UpPercent(P99_UP_PERCENT, Verdict::Warning), "up > 50% warns"))),
        lat("p99.9", |r| r.latency_ms.p999, None),
        lat("max", |r| r.latency_ms.max, None),
        Spec {
            metric: "missed arrivals",
            unit: "requests",
            read: |r| r.requests.missed,
            better: Better::Lower,
            limit: None,
        },
    ]
}

fn row(spec: &Spec, current: &LoadReport, baseline: &LoadReport) -> TrendRow {
    let (b, c) = (finite((spec.read)(baseline)), finite((spec.read)(current)));
    let mut out = TrendRow {
        metric: spec.metric,
        unit: spec.unit,
        baseline: b,
        current: c,
        delta: None,
        change_percent: None,
        rule: spec.limit.map(|(_, r)| r),
        verdict: Verdict::NotCompared,
    };
    let (Some(b), Some(c)) = (b, c) else { return out };
    let delta = c - b;
    let change = (b != 0.0).then(|| 100.0 * delta / b.abs());
    out.delta = Some(delta);
    out.change_percent = change;
    let breached = match spec.limit {
        Some((Limit::UpPercent(p, v), _)) => change.is_some_and(|ch| ch > p).then_some(v),
        Some((Limit::DownPercent(p, v), _)) => change.is_some_and(|ch| ch < -p).then_some(v),
        Some((Limit::UpPoints(p, v), _)) => (delta > p).then_some(v),
        None => None,
    };
    out.verdict = match breached {
        Some(v) => v,
        None => {
            let rel = change.unwrap_or(if delta == 0.0 { 0.0 } else { delta.signum() * 100.0 });
            let points = matches!(spec.limit, Some((Limit::UpPoints(..), _)));
            let noise =
                if points { (delta.abs() < 0.01).then_some(()) } else { (rel.abs() < NOISE_PERCENT).then_some(()) };
            match (noise, spec.better, delta > 0.0) {
                (Some(()), _, _) => Verdict::Same,
                (None, Better::Higher, true) | (None, Better::Lower, false) => Verdict::Better,
                _ => Verdict::Worse,
            }
        }
    };
    out
}

fn offered(r: &LoadReport) -> Option<f64> {
    let targets: Vec<f64> = r.timeline.iter().filter_map(|t| finite(t.target)).collect();
    if r.is_open_model() && !targets.is_empty() {
        return Some(targets.iter().sum::<f64>() / targets.len() as f64);
    }
    None
}

/// Compares `current` with `baseline`.
pub fn compare(current: &LoadReport, baseline: &LoadReport, baseline_origin: &str) -> Trends {
    let rows: Vec<TrendRow> = specs().iter().map(|s| row(s, current, baseline)).collect();
    let describe = |r: &TrendRow| {
        let change = match (r.unit, r.delta, r.change_percent) {
            ("%", Some(d), _) => format!("{d:+.2} pp"),
            (_, _, Some(ch)) => format!("{ch:+.1}%"),
            _ => "changed".to_string(),
        };
        format!("{} {change} ({})", r.metric, r.rule.unwrap_or(""))
    };
    let failures: Vec<String> = rows.iter().filter(|r| r.verdict == Verdict::Failure).map(describe).collect();
    let warnings: Vec<String> = rows.iter().filter(|r| r.verdict == Verdict::Warning).map(describe).collect();
    let mut notes = Vec::new();
    if let (Some(a), Some(b)) = (offered(baseline), offered(current)) {
        if a > 0.0 && (100.0 * (b - a) / a).abs() > OFFERED_APART_PERCENT {
            notes.push(format!(
                "the runs offered different load ({a:.1} → {b:.1} req/s): the deltas compare different workloads"
            ));
        }
    }
    if baseline.model.kind.is_some() && current.model.kind.is_some() && baseline.model.kind != current.model.kind {
        notes.push("the runs used different workload models (open vs closed)".to_string());
    }
    if baseline.scenario.is_some() && current.scenario.is_some() && baseline.scenario != current.scenario {
        notes.push(format!(
            "the runs used different scenarios ({} → {})",
            baseline.scenario.as_deref().unwrap_or("?"),
            current.scenario.as_deref().unwrap_or("?")
        ));
    }
    Trends {
        baseline: baseline_origin.to_string(),
        baseline_run: baseline.label().to_string(),
        failed: !failures.is_empty(),
        rows,
        failures,
        warnings,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(rps: f64, error_rate: f64, p95: f64, p99: f64) -> LoadReport {
        let mut r = LoadReport { rps: Some(rps), error_rate: Some(error_rate), ..LoadReport::default() };
        r.latency_ms.p95 = Some(p95);
        r.latency_ms.p99 = Some(p99);
        r
    }

    fn verdict(t: &Trends, metric: &str) -> Verdict {
        t.rows.iter().find(|r| r.metric == metric).map_or(Verdict::NotCompared, |r| r.verdict)
    }

    #[test]
    fn each_limit_fails_just_past_it_and_not_at_it() {
        let base = report(100.0, 0.01, 100.0, 200.0);
        let t = compare(&report(80.0, 0.02, 150.0, 300.0), &base, "b");
        assert!(!t.failed, "exactly at every limit passes: {:?}", t.failures);
        assert_eq!(verdict(&t, "p99"), Verdict::Worse);
        let t = compare(&report(79.9, 0.0201, 150.1, 300.1), &base, "b");
        assert_eq!(t.failures.len(), 3, "{:?}", t.failures);
        assert_eq!(
            [verdict(&t, "throughput"), verdict(&t, "error rate"), verdict(&t, "p95"), verdict(&t, "p99")],
            [Verdict::Failure, Verdict::Failure, Verdict::Failure, Verdict::Warning]
        );
        assert!(t.failures.iter().any(|f| f.starts_with("error rate +1.01 pp")), "{:?}", t.failures);
    }

    #[test]
    fn improvements_and_absent_figures() {
        let base = report(100.0, 0.02, 100.0, 200.0);
        let t = compare(&report(150.0, 0.0, 50.0, 200.5), &base, "b");
        assert!(!t.failed);
        assert_eq!(verdict(&t, "throughput"), Verdict::Better);
        assert_eq!(verdict(&t, "error rate"), Verdict::Better);
        assert_eq!(verdict(&t, "p99"), Verdict::Same);
        assert_eq!(verdict(&t, "p50"), Verdict::NotCompared);
    }
}
