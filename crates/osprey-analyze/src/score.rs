//! The health score: ten signals, each scored 0–100 on a piecewise-linear
//! curve, combined by fixed weights into a total and a grade.
//!
//! A curve is two knots: the value at or beyond `good` scores 100, the value
//! at or beyond `bad` scores 0, and between them the score falls linearly.
//! Whether higher or lower is worse follows from the knots' order.
//!
//! | signal | good (100) | bad (0) | weight |
//! |---|---|---|---|
//! | latency p95 | ≤ SLO (`--slo-p95`, 300 ms) | ≥ 3 × SLO | 0.20 |
//! | error rate | 0 % | ≥ 5 % | 0.20 |
//! | throughput | ≥ target | ≤ 50 % of target | 0.15 |
//! | CPU (host) | ≤ 70 % | ≥ 100 % | 0.10 |
//! | memory (host) | ≤ 75 % | ≥ 98 % | 0.08 |
//! | queue saturation | ≤ 50 % | ≥ 100 % | 0.08 |
//! | cache hit rate | ≥ 80 % | ≤ 20 % | 0.05 |
//! | DB query p95 | ≤ 20 ms | ≥ 500 ms | 0.05 |
//! | pool wait p95 | ≤ 1 ms | ≥ 100 ms | 0.04 |
//! | model fallback rate | 0 % | ≥ 20 % | 0.05 |
//!
//! The total is the weighted mean over the signals that were measured: the
//! weights of the present signals are renormalised to sum to 1, so a missing
//! signal neither helps nor hurts. Since every curve is monotone and the
//! weights do not depend on the values, a signal getting worse never raises
//! the total (the property test in this module checks it). The total is
//! rounded to 0.1 and graded A ≥ 90, B ≥ 80, C ≥ 70, D ≥ 60, F below.

use serde::Serialize;

use crate::facts::{Facts, Figure};

/// The signals, in the order they are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalId {
    LatencyP95,
    ErrorRate,
    Throughput,
    Cpu,
    Memory,
    QueueSaturation,
    CacheHitRate,
    DbQueryP95,
    PoolWaitP95,
    ModelFallback,
}

impl SignalId {
    pub const ALL: [SignalId; 10] = [
        SignalId::LatencyP95,
        SignalId::ErrorRate,
        SignalId::Throughput,
        SignalId::Cpu,
        SignalId::Memory,
        SignalId::QueueSaturation,
        SignalId::CacheHitRate,
        SignalId::DbQueryP95,
        SignalId::PoolWaitP95,
        SignalId::ModelFallback,
    ];

    /// The id used in JSON and in recommendations' evidence.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalId::LatencyP95 => "latency_p95",
            SignalId::ErrorRate => "error_rate",
            SignalId::Throughput => "throughput",
            SignalId::Cpu => "cpu",
            SignalId::Memory => "memory",
            SignalId::QueueSaturation => "queue_saturation",
            SignalId::CacheHitRate => "cache_hit_rate",
            SignalId::DbQueryP95 => "db_query_p95",
            SignalId::PoolWaitP95 => "pool_wait_p95",
            SignalId::ModelFallback => "model_fallback",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SignalId::LatencyP95 => "latency p95",
            SignalId::ErrorRate => "error rate",
            SignalId::Throughput => "throughput",
            SignalId::Cpu => "CPU",
            SignalId::Memory => "memory",
            SignalId::QueueSaturation => "queue saturation",
            SignalId::CacheHitRate => "cache hit rate",
            SignalId::DbQueryP95 => "DB query p95",
            SignalId::PoolWaitP95 => "pool wait p95",
            SignalId::ModelFallback => "model fallback rate",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            SignalId::LatencyP95 | SignalId::DbQueryP95 | SignalId::PoolWaitP95 => "ms",
            SignalId::Throughput => "req/s",
            _ => "%",
        }
    }

    /// The documented weight (the ten sum to 1).
    pub fn weight(self) -> f64 {
        match self {
            SignalId::LatencyP95 | SignalId::ErrorRate => 0.20,
            SignalId::Throughput => 0.15,
            SignalId::Cpu => 0.10,
            SignalId::Memory | SignalId::QueueSaturation => 0.08,
            SignalId::CacheHitRate | SignalId::DbQueryP95 | SignalId::ModelFallback => 0.05,
            SignalId::PoolWaitP95 => 0.04,
        }
    }

    /// The curve, given the SLO and the throughput target (`None` without one).
    pub fn curve(self, slo_p95_ms: f64, target_rps: Option<f64>) -> Option<Curve> {
        let c = |good, bad| Some(Curve { good, bad });
        match self {
            SignalId::LatencyP95 => c(slo_p95_ms, 3.0 * slo_p95_ms),
            SignalId::ErrorRate => c(0.0, 5.0),
            SignalId::Throughput => target_rps.filter(|t| *t > 0.0).and_then(|t| c(t, 0.5 * t)),
            SignalId::Cpu => c(70.0, 100.0),
            SignalId::Memory => c(75.0, 98.0),
            SignalId::QueueSaturation => c(50.0, 100.0),
            SignalId::CacheHitRate => c(80.0, 20.0),
            SignalId::DbQueryP95 => c(20.0, 500.0),
            SignalId::PoolWaitP95 => c(1.0, 100.0),
            SignalId::ModelFallback => c(0.0, 20.0),
        }
    }

    /// The figure this signal reads.
    pub fn figure(self, facts: &Facts) -> Option<&Figure> {
        match self {
            SignalId::LatencyP95 => facts.latency_p95.as_ref(),
            SignalId::ErrorRate => facts.error_rate.as_ref(),
            SignalId::Throughput => facts.throughput.as_ref(),
            SignalId::Cpu => facts.cpu.as_ref(),
            SignalId::Memory => facts.memory.as_ref(),
            SignalId::QueueSaturation => facts.queue_saturation.as_ref(),
            SignalId::CacheHitRate => facts.cache_hit_rate.as_ref(),
            SignalId::DbQueryP95 => facts.db_query_p95.as_ref(),
            SignalId::PoolWaitP95 => facts.pool_wait_p95.as_ref(),
            SignalId::ModelFallback => facts.model_fallback.as_ref(),
        }
    }
}

/// Two knots: `good` scores 100, `bad` scores 0, linear between, flat beyond.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Curve {
    pub good: f64,
    pub bad: f64,
}

impl Curve {
    pub fn score(self, value: f64) -> f64 {
        let t = (value - self.good) / (self.bad - self.good);
        if t.is_nan() {
            return 0.0;
        }
        100.0 * (1.0 - t.clamp(0.0, 1.0))
    }

    /// Higher values are worse.
    pub fn higher_is_worse(self) -> bool {
        self.bad > self.good
    }
}

/// One measured signal and its score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalScore {
    pub id: SignalId,
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
    /// 0–100, rounded to 0.1.
    pub score: f64,
    /// The documented weight.
    pub weight: f64,
    /// The weight after renormalising over the present signals.
    pub effective_weight: f64,
    pub curve: Curve,
    pub metric: String,
    pub window: String,
    pub source: crate::facts::Source,
}

/// A signal the inputs did not measure, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Missing {
    pub id: SignalId,
    pub reason: String,
}

/// Grades by the rounded total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Grade {
    A,
    B,
    C,
    D,
    F,
}

impl Grade {
    pub fn of(score: f64) -> Grade {
        match score {
            s if s >= 90.0 => Grade::A,
            s if s >= 80.0 => Grade::B,
            s if s >= 70.0 => Grade::C,
            s if s >= 60.0 => Grade::D,
            _ => Grade::F,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
            Grade::F => "F",
        }
    }
}

/// The score and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// `None` when no signal was measured.
    pub score: Option<f64>,
    pub grade: Option<Grade>,
    pub signals: Vec<SignalScore>,
    pub missing: Vec<Missing>,
    /// Sum of the present signals' documented weights.
    pub weight_present: f64,
}

pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Scores every measured signal. `target_rps` is `--target-rps`, else the
/// open-model report's offered rate.
pub fn health(facts: &Facts, slo_p95_ms: f64, target_rps: Option<f64>) -> Health {
    let target = target_rps.or_else(|| facts.offered_rps.as_ref().map(|f| f.value));
    let mut signals = Vec::new();
    let mut missing = Vec::new();
    for id in SignalId::ALL {
        let (Some(figure), Some(curve)) = (id.figure(facts), id.curve(slo_p95_ms, target)) else {
            let reason = match id {
                SignalId::Throughput if id.figure(facts).is_some() => {
                    "no target: pass --target-rps (an open-model load report supplies its offered rate)"
                }
                SignalId::ModelFallback => "no model_fallback_percent value (needs /performance/alerts or --url)",
                SignalId::CacheHitRate => "too few cache look-ups, or no server stats",
                SignalId::DbQueryP95 | SignalId::PoolWaitP95 => {
                    "no figure: no statements or pool waits in the last minute, storage off, or no server stats"
                }
                _ => "not measured by the inputs given",
            };
            missing.push(Missing { id, reason: reason.to_string() });
            continue;
        };
        signals.push(SignalScore {
            id,
            name: id.label(),
            value: figure.value,
            unit: id.unit(),
            score: curve.score(figure.value),
            weight: id.weight(),
            effective_weight: 0.0,
            curve,
            metric: figure.metric.clone(),
            window: figure.window.clone(),
            source: figure.source,
        });
    }
    let weight_present: f64 = signals.iter().map(|s| s.weight).sum();
    let score = (weight_present > 0.0)
        .then(|| round1(signals.iter().map(|s| s.weight * s.score).sum::<f64>() / weight_present));
    for s in &mut signals {
        s.effective_weight = (s.weight / weight_present * 1000.0).round() / 1000.0;
        s.score = round1(s.score);
    }
    Health {
        score,
        grade: score.map(Grade::of),
        signals,
        missing,
        weight_present: round1(weight_present * 100.0) / 100.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Source;

    #[test]
    fn weights_sum_to_one() {
        let sum: f64 = SignalId::ALL.iter().map(|s| s.weight()).sum();
        assert!((sum - 1.0).abs() < 1e-12, "{sum}");
    }

    #[test]
    fn curves_score_100_and_0_at_their_knots_and_half_between() {
        let slo = 300.0;
        let expect = [
            (SignalId::LatencyP95, 300.0, 900.0),
            (SignalId::ErrorRate, 0.0, 5.0),
            (SignalId::Throughput, 200.0, 100.0),
            (SignalId::Cpu, 70.0, 100.0),
            (SignalId::Memory, 75.0, 98.0),
            (SignalId::QueueSaturation, 50.0, 100.0),
            (SignalId::CacheHitRate, 80.0, 20.0),
            (SignalId::DbQueryP95, 20.0, 500.0),
            (SignalId::PoolWaitP95, 1.0, 100.0),
            (SignalId::ModelFallback, 0.0, 20.0),
        ];
        for (id, good, bad) in expect {
            let c = id.curve(slo, Some(200.0)).expect("a curve");
            assert_eq!((c.good, c.bad), (good, bad), "{id:?}");
            assert_eq!(c.score(good), 100.0, "{id:?} at good");
            assert_eq!(c.score(bad), 0.0, "{id:?} at bad");
            assert!((c.score((good + bad) / 2.0) - 50.0).abs() < 1e-9, "{id:?} midway");
            let beyond_good = good - (bad - good);
            let beyond_bad = bad + (bad - good);
            assert_eq!((c.score(beyond_good), c.score(beyond_bad)), (100.0, 0.0), "{id:?} flat beyond the knots");
        }
        assert!(SignalId::Throughput.curve(slo, None).is_none());
    }

    #[test]
    fn grades_at_their_boundaries() {
        let g = |s| Grade::of(s).as_str();
        assert_eq!(
            [g(100.0), g(90.0), g(89.9), g(80.0), g(79.9), g(70.0), g(60.0), g(59.9), g(0.0)],
            ["A", "A", "B", "B", "C", "C", "D", "F", "F"]
        );
    }

    fn put(facts: &mut Facts, id: SignalId, value: f64) {
        let f = Some(Figure::new("m", "w", value, Source::ServerStats));
        match id {
            SignalId::LatencyP95 => facts.latency_p95 = f,
            SignalId::ErrorRate => facts.error_rate = f,
            SignalId::Throughput => facts.throughput = f,
            SignalId::Cpu => facts.cpu = f,
            SignalId::Memory => facts.memory = f,
            SignalId::QueueSaturation => facts.queue_saturation = f,
            SignalId::CacheHitRate => facts.cache_hit_rate = f,
            SignalId::DbQueryP95 => facts.db_query_p95 = f,
            SignalId::PoolWaitP95 => facts.pool_wait_p95 = f,
            SignalId::ModelFallback => facts.model_fallback = f,
        }
    }

    /// A value spread over and beyond the curve, often exactly on a knot.
    fn value(rng: &mut fastrand::Rng, c: Curve) -> f64 {
        let span = (c.bad - c.good).abs();
        let lo = c.good.min(c.bad) - span;
        match rng.u8(0..8) {
            0 => c.good,
            1 => c.bad,
            _ => (lo + rng.f64() * 3.0 * span).max(0.0),
        }
    }

    #[test]
    fn a_missing_signal_neither_helps_nor_hurts() {
        let mut facts = Facts::default();
        put(&mut facts, SignalId::ErrorRate, 2.5);
        assert_eq!(health(&facts, 300.0, None).score, Some(50.0));
        put(&mut facts, SignalId::LatencyP95, 600.0);
        assert_eq!(health(&facts, 300.0, None).score, Some(50.0));
        assert_eq!(health(&Facts::default(), 300.0, None).score, None);
    }

    #[test]
    fn property_making_one_signal_worse_never_raises_the_score() {
        let mut rng = fastrand::Rng::with_seed(0x05b2e7);
        for case in 0..20_000 {
            let slo = 10.0 + rng.f64() * 2000.0;
            let target = 1.0 + rng.f64() * 5000.0;
            let mut facts = Facts::default();
            let mut present = Vec::new();
            for id in SignalId::ALL {
                if rng.bool() {
                    let c = id.curve(slo, Some(target)).expect("a curve");
                    put(&mut facts, id, value(&mut rng, c));
                    present.push(id);
                }
            }
            let Some(&id) = rng.choice(present.iter()) else { continue };
            let before = health(&facts, slo, Some(target));
            let c = id.curve(slo, Some(target)).expect("a curve");
            let old = id.figure(&facts).expect("present").value;
            let step = rng.f64() * 2.0 * (c.bad - c.good).abs();
            let worse = if c.higher_is_worse() { old + step } else { (old - step).max(0.0) };
            put(&mut facts, id, worse);
            let after = health(&facts, slo, Some(target));
            assert_eq!(before.signals.len(), after.signals.len(), "same set of signals");
            let (b, a) = (before.score.expect("scored"), after.score.expect("scored"));
            assert!(a <= b, "case {case}: {id:?} {old} → {worse} raised the score {b} → {a}");
        }
    }
}
