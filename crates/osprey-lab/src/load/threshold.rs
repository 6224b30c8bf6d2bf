//! Thresholds: pass/fail criteria such as `p95 < 300ms`, `error_rate < 1%`
//! or `rps > 400` that decide the exit code, so CI can gate on a run.
//!
//! Grammar: `[KIND.]METRIC OP VALUE`, where `KIND` is a scenario request name
//! (default: all requests), `OP` is one of `<`, `<=`, `>`, `>=`, and `METRIC` is
//!
//! - latency (corrected, milliseconds unless a unit is given: `us`, `ms`, `s`,
//!   `m`): `p50` … `p99.9` (any `pN`; `p999` means 99.9), `median`, `mean`,
//!   `min`, `max`;
//! - ratios (`1%` or `0.01`): `error_rate`, `missed_rate`;
//! - throughput: `rps` (responses per second, any status; `400` or `400/s`);
//! - counts: `errors`, `missed`, `requests`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::LoadError;

/// A parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As written, for reports.
    pub expr: String,
    /// Restricts it to one request kind.
    pub kind: Option<String>,
    pub metric: Metric,
    pub op: Op,
    /// In the metric's unit: milliseconds, a fraction, requests per second or a count.
    pub limit: f64,
    /// Stop the run as soon as the threshold fails (evaluated every second).
    pub abort: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    Percentile(f64),
    Mean,
    Min,
    Max,
    ErrorRate,
    MissedRate,
    Rps,
    Errors,
    Missed,
    Requests,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl Op {
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Op::Lt => observed < limit,
            Op::Le => observed <= limit,
            Op::Gt => observed > limit,
            Op::Ge => observed >= limit,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        })
    }
}

impl Metric {
    fn parse(s: &str) -> Option<Metric> {
        Some(match s {
            "median" => Metric::Percentile(50.0),
            "mean" | "avg" => Metric::Mean,
            "min" => Metric::Min,
            "max" => Metric::Max,
            "error_rate" => Metric::ErrorRate,
            "missed_rate" => Metric::MissedRate,
            "rps" => Metric::Rps,
            "errors" => Metric::Errors,
            "missed" => Metric::Missed,
            "requests" => Metric::Requests,
            "p999" => Metric::Percentile(99.9),
            p => {
                let n = p.strip_prefix('p')?;
                let n = n.strip_prefix('(').and_then(|n| n.strip_suffix(')')).unwrap_or(n);
                let q: f64 = n.parse().ok()?;
                if !(0.0..=100.0).contains(&q) {
                    return None;
                }
                Metric::Percentile(q)
            }
        })
    }

    /// The unit `limit` and observed values are in.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::Percentile(_) | Metric::Mean | Metric::Min | Metric::Max => "ms",
            Metric::ErrorRate | Metric::MissedRate => "ratio",
            Metric::Rps => "req/s",
            Metric::Errors | Metric::Missed | Metric::Requests => "count",
        }
    }

    pub fn is_latency(self) -> bool {
        self.unit() == "ms"
    }
}

/// What a threshold is evaluated against.
pub trait Observe {
    /// Latency at `percentile` (0–100) in milliseconds; `None` without samples.
    fn latency_ms(&self, kind: Option<&str>, metric: Metric) -> Option<f64>;
    /// Requests that ended with a response or an error (not cancelled, not missed).
    fn finished(&self, kind: Option<&str>) -> Option<u64>;
    /// Requests that ended with an HTTP response, whatever its status.
    fn completed(&self, kind: Option<&str>) -> Option<u64>;
    fn errors(&self, kind: Option<&str>) -> Option<u64>;
    fn missed(&self) -> u64;
    fn scheduled(&self) -> u64;
    fn seconds(&self) -> f64;
}

impl Threshold {
    pub fn parse(expr: &str) -> Result<Self, LoadError> {
        let bad = |why: &str| LoadError::invalid(format!("threshold `{expr}`: {why}"));
        let (op, at, len) = [("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)]
            .iter()
            .find_map(|(tok, op)| expr.find(tok).map(|i| (*op, i, tok.len())))
            .ok_or_else(|| bad("expected one of <, <=, >, >="))?;
        let lhs = expr[..at].trim();
        let rhs = expr[at + len..].trim();
        let (kind, metric) = match Metric::parse(lhs) {
            Some(m) => (None, m),
            None => {
                let (kind, m) = lhs.split_once('.').ok_or_else(|| bad("unknown metric"))?;
                let m = Metric::parse(m).ok_or_else(|| bad("unknown metric"))?;
                if kind.is_empty() {
                    return Err(bad("empty request name"));
                }
                (Some(kind.to_string()), m)
            }
        };
        if kind.is_some() && matches!(metric, Metric::MissedRate | Metric::Missed) {
            return Err(bad("missed sends are not attributed to a request kind"));
        }
        let limit = parse_limit(metric, rhs)
            .ok_or_else(|| bad(&format!("bad value `{rhs}` for a {} metric", metric.unit())))?;
        Ok(Threshold { expr: expr.trim().to_string(), kind, metric, op, limit, abort: false })
    }

    /// The observed value, or `None` when there is nothing to measure (which fails).
    pub fn observe(&self, o: &dyn Observe) -> Option<f64> {
        let kind = self.kind.as_deref();
        match self.metric {
            m if m.is_latency() => o.latency_ms(kind, m),
            Metric::ErrorRate => {
                let done = o.finished(kind)?;
                (done > 0).then(|| o.errors(kind).unwrap_or(0) as f64 / done as f64)
            }
            Metric::MissedRate => {
                let s = o.scheduled();
                Some(if s == 0 { 0.0 } else { o.missed() as f64 / s as f64 })
            }
            Metric::Rps => {
                let secs = o.seconds();
                let done = o.completed(kind)?;
                (secs > 0.0).then(|| done as f64 / secs)
            }
            Metric::Errors => o.errors(kind).map(|e| e as f64),
            Metric::Missed => Some(o.missed() as f64),
            Metric::Requests => o.finished(kind).map(|n| n as f64),
            _ => None,
        }
    }

    /// Evaluates against `o`: `(passed, observed)`.
    pub fn evaluate(&self, o: &dyn Observe) -> (bool, Option<f64>) {
        let observed = self.observe(o);
        (observed.is_some_and(|v| self.op.holds(v, self.limit)), observed)
    }
}

fn parse_limit(metric: Metric, s: &str) -> Option<f64> {
    let s = s.trim();
    let v = match metric.unit() {
        "ms" => {
            let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let n: f64 = num.parse().ok()?;
            n * match unit.trim() {
                "" | "ms" => 1.0,
                "us" | "µs" => 0.001,
                "s" => 1000.0,
                "m" => 60_000.0,
                _ => return None,
            }
        }
        "ratio" => match s.strip_suffix('%') {
            Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
            None => s.parse().ok()?,
        },
        "req/s" => s.strip_suffix("/s").unwrap_or(s).trim().parse().ok()?,
        _ => s.parse().ok()?,
    };
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// Exit code for the threshold at `index` (declaration order) when it fails.
pub fn exit_code_for(index: usize) -> u8 {
    const FIRST: usize = 10;
    const LAST: usize = 109;
    (FIRST + index).min(LAST) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let t = Threshold::parse("p95 < 300ms").expect("parses");
        assert_eq!((t.metric, t.op, t.limit, t.kind.as_deref()), (Metric::Percentile(95.0), Op::Lt, 300.0, None));
        let t = Threshold::parse("error_rate < 1%").expect("parses");
        assert_eq!((t.metric, t.limit), (Metric::ErrorRate, 0.01));
        let t = Threshold::parse("rps > 400").expect("parses");
        assert_eq!((t.metric, t.op, t.limit), (Metric::Rps, Op::Gt, 400.0));
        let t = Threshold::parse("p99.9 <= 1s").expect("parses");
        assert_eq!((t.metric, t.op, t.limit), (Metric::Percentile(99.9), Op::Le, 1000.0));
        let t = Threshold::parse("embed.p99.9<=250us").expect("parses");
        assert_eq!(t.kind.as_deref(), Some("embed"));
        assert_eq!(t.metric, Metric::Percentile(99.9));
        assert!((t.limit - 0.25).abs() < 1e-12);
        let t = Threshold::parse("p(90) >= 2").expect("parses");
        assert_eq!((t.metric, t.op, t.limit), (Metric::Percentile(90.0), Op::Ge, 2.0));
        assert_eq!(Threshold::parse("error_rate < 0.05").expect("parses").limit, 0.05);
        assert_eq!(Threshold::parse("p999 < 5s").expect("parses").metric, Metric::Percentile(99.9));
    }

    #[test]
    fn refuses_nonsense() {
        for bad in ["p95 300ms", "p101 < 1s", "latency < 1s", "p95 < fast", "error_rate < x%", "rps > -1", ".p95 < 1"] {
            assert!(Threshold::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn exit_codes_are_distinct_and_capped() {
        assert_eq!(exit_code_for(0), 10);
        assert_eq!(exit_code_for(3), 13);
        assert_eq!(exit_code_for(500), 109);
    }
}
