//! The numbers behind `osprey bench suite`: a metric's repeated samples, the
//! noise band those samples imply, and the verdict of a comparison with a
//! baseline report.
//!
//! A metric's spread is its median absolute deviation scaled to a standard
//! deviation (×1.4826) and divided by the median, so it is relative and one
//! outlier cannot inflate it. Its noise band is three such deviations, never
//! less than the floor (`--noise-floor`): changes inside it are what
//! repeating the same build on the same machine produces. A comparison uses
//! the wider of the two runs' bands, so a noisy baseline cannot make a quiet
//! run look like a regression, nor the other way round. A metric regressed
//! when its median got worse by a factor above `1 + band` (throughput:
//! baseline over current; latency: current over baseline) *and* every sample
//! of this run is worse than every sample of the baseline; it improved on the
//! same terms the other way.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// The report's schema; bumped when a field changes meaning.
pub const SCHEMA: &str = "osprey.bench.suite/1";

/// Robust standard deviations that make up a noise band.
const BAND_SIGMAS: f64 = 3.0;
/// MAD to standard deviation for normally distributed samples.
const MAD_TO_SIGMA: f64 = 1.4826;

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// One measured figure over every repetition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// `category.name`, stable across versions: baselines are matched on it.
    pub id: String,
    pub category: String,
    pub description: String,
    pub unit: String,
    pub better: Better,
    pub samples: Vec<f64>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Robust relative standard deviation of the samples (0.02 = 2 %).
    pub spread: f64,
    /// Relative change that repetition alone explains (0.05 = ±5 %).
    pub band: f64,
}

impl Metric {
    /// Summarises `samples` (at least one, all finite).
    pub fn new(id: &str, description: &str, unit: &str, better: Better, samples: Vec<f64>, floor: f64) -> Self {
        let category = id.split_once('.').map_or(id, |(c, _)| c).to_string();
        let median = median(&samples);
        let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let deviations: Vec<f64> = samples.iter().map(|s| (s - median).abs()).collect();
        let spread = if median.abs() > 0.0 { MAD_TO_SIGMA * self::median(&deviations) / median.abs() } else { 0.0 };
        Metric {
            id: id.to_string(),
            category,
            description: description.to_string(),
            unit: unit.to_string(),
            better,
            samples,
            median,
            min,
            max,
            spread,
            band: (BAND_SIGMAS * spread).max(floor),
        }
    }
}

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// What a comparison concluded about one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Worse than the baseline by more than the noise band.
    Regression,
    /// Better by more than the noise band.
    Improvement,
    /// Within the noise band.
    Unchanged,
    /// Not in the baseline.
    New,
    /// In the baseline, not measured now.
    Missing,
}

/// One metric set against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    pub id: String,
    pub unit: String,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// Relative change of the median, signed as measured (+0.10 = 10 % larger).
    pub change: Option<f64>,
    /// The band the change was judged against (the wider of the two runs').
    pub band: Option<f64>,
    pub verdict: Verdict,
}

/// A whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline: String,
    pub regressions: usize,
    pub improvements: usize,
    pub deltas: Vec<Delta>,
}

/// Judges `current` against `baseline`, metric by metric, in `current`'s order
/// (baseline-only metrics last).
pub fn compare(baseline_name: &str, baseline: &[Metric], current: &[Metric]) -> Comparison {
    let mut deltas: Vec<Delta> = current
        .iter()
        .map(|cur| match baseline.iter().find(|b| b.id == cur.id) {
            Some(base) => judge(base, cur),
            None => Delta {
                id: cur.id.clone(),
                unit: cur.unit.clone(),
                baseline: None,
                current: Some(cur.median),
                change: None,
                band: None,
                verdict: Verdict::New,
            },
        })
        .collect();
    deltas.extend(baseline.iter().filter(|b| !current.iter().any(|c| c.id == b.id)).map(|b| Delta {
        id: b.id.clone(),
        unit: b.unit.clone(),
        baseline: Some(b.median),
        current: None,
        change: None,
        band: None,
        verdict: Verdict::Missing,
    }));
    let count = |v| deltas.iter().filter(|d| d.verdict == v).count();
    Comparison {
        baseline: baseline_name.to_string(),
        regressions: count(Verdict::Regression),
        improvements: count(Verdict::Improvement),
        deltas,
    }
}

fn judge(base: &Metric, cur: &Metric) -> Delta {
    let band = base.band.max(cur.band);
    let change = if base.median.abs() > 0.0 { (cur.median - base.median) / base.median.abs() } else { 0.0 };
    // How many times worse the metric got (below 1: better). A factor, not a
    // difference, so a throughput falling tenfold counts as much as a latency
    // growing tenfold, and no band can swallow it the way it could a -90 %.
    let worse = match cur.better {
        _ if base.median == cur.median => 1.0,
        Better::Higher => base.median / cur.median,
        Better::Lower => cur.median / base.median,
    };
    // Every sample of one run on the bad (or good) side of every sample of the
    // other: with three repetitions a side, chance alone does that one time in
    // twenty, with five one time in 252. A median past the band is not enough
    // on its own, because a band estimated from three samples is itself rough.
    let (lower_now, higher_now) = (cur.max < base.min, cur.min > base.max);
    let (separated_worse, separated_better) = match cur.better {
        Better::Higher => (lower_now, higher_now),
        Better::Lower => (higher_now, lower_now),
    };
    let verdict = if separated_worse && worse > 1.0 + band {
        Verdict::Regression
    } else if separated_better && worse * (1.0 + band) < 1.0 {
        Verdict::Improvement
    } else {
        Verdict::Unchanged
    };
    Delta {
        id: cur.id.clone(),
        unit: cur.unit.clone(),
        baseline: Some(base.median),
        current: Some(cur.median),
        change: Some(change),
        band: Some(band),
        verdict,
    }
}

/// A figure with about four significant digits and thousands kept readable.
pub fn figure(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        "–".into()
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The terminal table: one row per metric, with the baseline's columns when
/// there is one.
pub fn table(metrics: &[Metric], comparison: Option<&Comparison>) -> String {
    let mut out = String::new();
    let _ = write!(out, "{:<38} {:>12} {:<10} {:>21} {:>7}", "benchmark", "median", "unit", "min – max", "noise");
    if comparison.is_some() {
        let _ = write!(out, " {:>12} {:>8}  verdict", "baseline", "change");
    }
    out.push('\n');
    let mut category = "";
    for m in metrics {
        if m.category != category {
            category = &m.category;
            let _ = writeln!(out, "[{category}]");
        }
        let range = format!("{} – {}", figure(m.min), figure(m.max));
        let arrow = match m.better {
            Better::Higher => "↑",
            Better::Lower => "↓",
        };
        let _ = write!(
            out,
            "  {:<36} {:>12} {:<10} {:>21} {:>6.1}%",
            format!("{} {arrow}", m.id.split_once('.').map_or(m.id.as_str(), |(_, n)| n)),
            figure(m.median),
            m.unit,
            range,
            m.band * 100.0
        );
        if let Some(c) = comparison {
            match c.deltas.iter().find(|d| d.id == m.id) {
                Some(d) => {
                    let base = d.baseline.map_or("–".into(), figure);
                    let change = d.change.map_or("–".into(), |c| format!("{:+.1}%", c * 100.0));
                    let _ = write!(out, " {base:>12} {change:>8}  {}", verdict_word(d.verdict));
                }
                None => out.push_str("  –"),
            }
        }
        out.push('\n');
    }
    if let Some(c) = comparison {
        for d in c.deltas.iter().filter(|d| d.verdict == Verdict::Missing) {
            let _ = writeln!(out, "  {:<36} not measured in this run (in the baseline)", d.id);
        }
        let _ = writeln!(
            out,
            "\nagainst {}: {} regression(s), {} improvement(s) beyond the noise band",
            c.baseline, c.regressions, c.improvements
        );
    }
    out
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Regression => "REGRESSION",
        Verdict::Improvement => "improved",
        Verdict::Unchanged => "within noise",
        Verdict::New => "new",
        Verdict::Missing => "missing",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(id: &str, better: Better, samples: &[f64]) -> Metric {
        Metric::new(id, "", "ops/s", better, samples.to_vec(), 0.02)
    }

    #[test]
    fn spread_is_robust_to_one_outlier() {
        let quiet = metric("a.x", Better::Higher, &[100.0, 101.0, 99.0, 100.0, 100.5]);
        let outlier = metric("a.x", Better::Higher, &[100.0, 101.0, 99.0, 100.0, 10.0]);
        assert_eq!(quiet.median, 100.0);
        assert_eq!(outlier.median, 100.0);
        assert!(outlier.spread < 0.02, "one bad run must not widen the band: {}", outlier.spread);
        assert_eq!((outlier.min, outlier.max), (10.0, 101.0));
        assert_eq!(quiet.category, "a");
    }

    #[test]
    fn band_is_three_robust_deviations_and_never_below_the_floor() {
        let steady = metric("a.x", Better::Higher, &[50.0, 50.0, 50.0]);
        assert_eq!(steady.spread, 0.0);
        assert_eq!(steady.band, 0.02, "the floor");
        // Median 100, absolute deviations 0,10,10 → MAD 10 → σ 14.826 % → band 44.5 %.
        let noisy = metric("a.x", Better::Higher, &[90.0, 100.0, 110.0]);
        assert!((noisy.spread - 0.14826).abs() < 1e-9, "{}", noisy.spread);
        assert!((noisy.band - 3.0 * 0.14826).abs() < 1e-9, "{}", noisy.band);
        // An even count takes the middle pair's mean.
        assert_eq!(metric("a.x", Better::Lower, &[1.0, 2.0, 3.0, 10.0]).median, 2.5);
    }

    #[test]
    fn direction_decides_what_is_a_regression() {
        let base_tp = metric("cat.throughput", Better::Higher, &[100.0, 100.0, 100.0]);
        let base_lat = metric("cat.latency", Better::Lower, &[10.0, 10.0, 10.0]);
        let slower = [
            metric("cat.throughput", Better::Higher, &[80.0, 80.0, 80.0]),
            metric("cat.latency", Better::Lower, &[13.0, 13.0, 13.0]),
        ];
        let c = compare("base.json", &[base_tp.clone(), base_lat.clone()], &slower);
        assert_eq!(c.regressions, 2);
        assert_eq!(c.deltas[0].verdict, Verdict::Regression);
        assert!((c.deltas[0].change.expect("change") + 0.2).abs() < 1e-12);
        assert!((c.deltas[1].change.expect("change") - 0.3).abs() < 1e-12);

        let faster = [
            metric("cat.throughput", Better::Higher, &[130.0, 130.0, 130.0]),
            metric("cat.latency", Better::Lower, &[7.0, 7.0, 7.0]),
        ];
        let c = compare("base.json", &[base_tp, base_lat], &faster);
        assert_eq!((c.regressions, c.improvements), (0, 2));
    }

    #[test]
    fn changes_inside_the_wider_band_are_noise() {
        // The baseline is noisy (band 44.5 %): 100 → 70 (1.43 times worse) is within it.
        let noisy_base = metric("a.x", Better::Higher, &[90.0, 100.0, 110.0]);
        let quiet_now = metric("a.x", Better::Higher, &[70.0, 70.0, 70.0]);
        let c = compare("b", &[noisy_base], &[quiet_now]);
        assert_eq!(c.deltas[0].verdict, Verdict::Unchanged);
        assert!((c.deltas[0].band.expect("band") - 0.44478).abs() < 1e-4);
        // Just past the floor counts; just inside it does not.
        let base = metric("a.x", Better::Higher, &[100.0; 3]);
        assert_eq!(
            compare("b", std::slice::from_ref(&base), &[metric("a.x", Better::Higher, &[97.9; 3])]).regressions,
            1
        );
        assert_eq!(compare("b", &[base], &[metric("a.x", Better::Higher, &[98.1; 3])]).regressions, 0);
    }

    #[test]
    fn a_tenfold_drop_is_a_regression_even_under_a_wide_band() {
        // Band 100 %: anything within a factor of two is noise, a tenth is not.
        let base = Metric { band: 1.0, ..metric("a.x", Better::Higher, &[100.0; 3]) };
        assert_eq!(
            compare("b", std::slice::from_ref(&base), &[metric("a.x", Better::Higher, &[10.0; 3])]).regressions,
            1
        );
        assert_eq!(
            compare("b", std::slice::from_ref(&base), &[metric("a.x", Better::Higher, &[55.0; 3])]).regressions,
            0
        );
        let c = compare("b", &[base], &[metric("a.x", Better::Higher, &[1000.0; 3])]);
        assert_eq!(c.improvements, 1);
        // A throughput of zero is infinitely worse.
        let zero =
            compare("b", &[metric("a.x", Better::Higher, &[5.0; 3])], &[metric("a.x", Better::Higher, &[0.0; 3])]);
        assert_eq!(zero.regressions, 1);
    }

    #[test]
    fn overlapping_samples_are_noise_even_past_the_band() {
        let base = metric("a.x", Better::Higher, &[100.0, 101.0, 99.0]);
        // The median fell 5 %, beyond the baseline's 4.4 % band, but one sample still beats its worst.
        let now = metric("a.x", Better::Higher, &[94.5, 95.0, 99.5]);
        assert!(base.median / now.median > 1.0 + base.band.max(now.band));
        assert_eq!(compare("b", std::slice::from_ref(&base), &[now]).deltas[0].verdict, Verdict::Unchanged);
        let now = metric("a.x", Better::Higher, &[94.5, 95.0, 95.5]);
        assert_eq!(compare("b", &[base], &[now]).deltas[0].verdict, Verdict::Regression);
    }

    #[test]
    fn zero_medians_are_judged_sensibly() {
        let zero = |better| metric("a.x", better, &[0.0; 3]);
        assert_eq!(compare("b", &[zero(Better::Lower)], &[zero(Better::Lower)]).deltas[0].verdict, Verdict::Unchanged);
        let errors_appeared = compare("b", &[zero(Better::Lower)], &[metric("a.x", Better::Lower, &[2.0; 3])]);
        assert_eq!(errors_appeared.deltas[0].verdict, Verdict::Regression);
        let errors_gone = compare("b", &[metric("a.x", Better::Lower, &[2.0; 3])], &[zero(Better::Lower)]);
        assert_eq!(errors_gone.deltas[0].verdict, Verdict::Improvement);
    }

    #[test]
    fn new_and_missing_metrics_are_listed_not_judged() {
        let base = [metric("a.old", Better::Higher, &[1.0]), metric("a.kept", Better::Higher, &[1.0])];
        let now = [metric("a.kept", Better::Higher, &[1.0]), metric("a.new", Better::Higher, &[1.0])];
        let c = compare("b", &base, &now);
        let verdicts: Vec<(&str, Verdict)> = c.deltas.iter().map(|d| (d.id.as_str(), d.verdict)).collect();
        assert_eq!(verdicts, [("a.kept", Verdict::Unchanged), ("a.new", Verdict::New), ("a.old", Verdict::Missing)]);
        assert_eq!(c.regressions, 0);
        let text = table(&now, Some(&c));
        assert!(text.contains("a.old") && text.contains("not measured"), "{text}");
        assert!(text.contains("0 regression(s)"), "{text}");
    }

    #[test]
    fn table_groups_by_category_and_marks_regressions() {
        let base = [metric("encode.batch_1", Better::Higher, &[100.0; 3])];
        let now =
            [metric("encode.batch_1", Better::Higher, &[50.0; 3]), metric("http.p99_ms", Better::Lower, &[3.5; 3])];
        let text = table(&now, Some(&compare("base.json", &base, &now)));
        assert!(text.contains("[encode]") && text.contains("[http]"), "{text}");
        assert!(text.contains("REGRESSION") && text.contains("-50.0%"), "{text}");
        assert!(text.contains("batch_1 ↑") && text.contains("p99_ms ↓"), "{text}");
    }
}
