//! Emotion trajectories: smoothing a per-segment series and reading its arc.
//!
//! A document's segments, read in order, give a series of valences (VADER
//! compound, in [-1, 1]) and emotion distributions. [`smooth`] removes
//! segment-level noise with either a centred rolling mean or the low-pass
//! transform of Jockers' syuzhet package (`get_dct_transform`: take the DCT-II
//! of the series, keep its lowest-frequency coefficients, invert). [`summarize`]
//! then reads the smoothed series: the peaks, troughs and turning points that
//! stand out from it (one pass with a hysteresis threshold, so noise does not
//! count), and its coarse shape, named after the six basic arcs of Reagan,
//! Mitchell, Kiley, Danforth & Dodds (2016), "The emotional arcs of stories are
//! dominated by six basic shapes", EPJ Data Science 5:31. Every function is
//! total: any length (including 0), non-finite inputs read as 0, and the output
//! is finite and deterministic.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::emotion::{EmotionDist, EMOTIONS};

/// Below this range (max − min) the smoothed arc is [`ArcShape::Flat`]: a tenth
/// of a unit on VADER's compound scale, whose full width is 2.
pub const FLAT_RANGE: f64 = 0.1;

/// A peak or trough must swing at least this fraction of the smoothed series'
/// range away from its neighbouring extrema (see [`summarize`]).
pub const PROMINENCE_FRACTION: f64 = 0.1;

/// The absolute floor under the prominence threshold, so that a nearly
/// constant series does not report its rounding noise as peaks.
pub const PROMINENCE_FLOOR: f64 = 0.02;

/// A monotone run counts towards the arc's shape only when it covers at least
/// this fraction of the range: the shape is coarse, a detour of a tenth of the
/// range is a peak but does not turn "rags to riches" into "Cinderella".
pub const SHAPE_SWING_FRACTION: f64 = 0.25;

/// DCT components (the constant plus the three lowest cosines) of the coarse
/// fit used when the smoothed series has more than three significant runs. A
/// sum of the four lowest DCT-II basis functions has at most two interior
/// extrema, so the fit always lands on one of the six named shapes (or flat).
pub const SHAPE_FIT_COMPONENTS: usize = 4;

/// How a per-segment series is smoothed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Smoothing {
    None,
    /// Centred rolling mean over `window` segments. The window shrinks at the
    /// edges (the mean is over the points that exist) and `window` 0 or 1
    /// copies. An even window cannot be centred: it takes one more point after
    /// the segment than before it (`window` 4 averages `i-1..=i+2`).
    Rolling {
        window: usize,
    },
    /// syuzhet-style DCT low-pass keeping the `low_pass` lowest components.
    /// Unlike syuzhet, which resamples the result to 100 points, the output
    /// keeps one value per segment, at the input's scale. `low_pass` at least
    /// the series length copies; 0 is read as 1 (the mean), since keeping
    /// nothing would erase the series.
    Dct {
        low_pass: usize,
    },
}

/// Smooths `values` (same length out). Rolling is O(n); DCT is O(n·k) for `k`
/// kept components.
pub fn smooth(values: &[f64], smoothing: Smoothing) -> Vec<f64> {
    let values: Vec<f64> = values.iter().copied().map(finite_or_zero).collect();
    let smoothed = match smoothing {
        Smoothing::None => values,
        Smoothing::Rolling { window } => rolling_mean(&values, window),
        Smoothing::Dct { low_pass } => dct_low_pass(&values, low_pass.max(1)),
    };
    smoothed.into_iter().map(finite_or_zero).collect()
}

/// Overall direction of a smoothed arc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArcShape {
    Flat,
    Rising,
    Falling,
    RiseFall,
    FallRise,
    RiseFallRise,
    FallRiseFall,
}

impl ArcShape {
    /// Reagan et al.'s name for the shape; a flat arc has none.
    pub fn reagan_name(self) -> Option<&'static str> {
        match self {
            ArcShape::Flat => None,
            ArcShape::Rising => Some("rags to riches"),
            // Also called "tragedy".
            ArcShape::Falling => Some("riches to rags"),
            ArcShape::FallRise => Some("man in a hole"),
            ArcShape::RiseFall => Some("Icarus"),
            ArcShape::RiseFallRise => Some("Cinderella"),
            ArcShape::FallRiseFall => Some("Oedipus"),
        }
    }
}

/// A local extremum of the smoothed series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Extremum {
    pub index: usize,
    pub value: f64,
}

/// Summary of one trajectory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArcSummary {
    pub dominant_emotion: &'static str,
    pub mean_valence: f64,
    pub volatility: f64,
    pub peaks: Vec<Extremum>,
    pub troughs: Vec<Extremum>,
    pub turning_points: Vec<usize>,
    pub shape: ArcShape,
    /// Reagan et al.'s name for the shape, where one fits.
    pub arc: Option<&'static str>,
}

/// Summarises a trajectory from raw valence, its smoothed form and the
/// per-segment emotion distributions (all the same length; if they are not,
/// only the common prefix is read).
///
/// - `dominant_emotion`: the class with the most probability mass summed over
///   segments (ties: the earlier class; no mass at all: "neutral").
/// - `mean_valence`: mean of the raw valence.
/// - `volatility`: population standard deviation of the raw valence's first
///   differences, i.e. how unevenly the text moves from one segment to the
///   next; a steady climb has none. 0 below two segments.
/// - `peaks`, `troughs`, `turning_points`: the smoothed series is walked once
///   with hysteresis: a direction change is confirmed only after the series
///   retraces at least `max(PROMINENCE_FRACTION × range, PROMINENCE_FLOOR)`
///   from the running extreme. Each confirmed extreme therefore stands at least
///   that far above (peaks) or below (troughs) the neighbouring extremes on
///   both sides, a one-pass form of topographic prominence. Turning points are
///   the confirmed extremes strictly inside the walk; the first and last
///   extremes (at or near the ends) count as peaks or troughs only when they
///   are the series' global maximum or minimum.
/// - `shape`: [`ArcShape::Flat`] when the smoothed range is below
///   [`FLAT_RANGE`]; otherwise the same walk with the coarser
///   [`SHAPE_SWING_FRACTION`] gives the significant monotone runs, and one to
///   three runs name the shape directly. With more runs the shape is that of a
///   coarse fit, the series' [`SHAPE_FIT_COMPONENTS`] lowest DCT components
///   (flat if that fit's range is below [`FLAT_RANGE`]).
pub fn summarize(valence: &[f64], smoothed: &[f64], emotions: &[EmotionDist]) -> ArcSummary {
    let n = valence.len().min(smoothed.len()).min(emotions.len());
    let valence: Vec<f64> = valence[..n].iter().copied().map(finite_or_zero).collect();
    let smoothed: Vec<f64> = smoothed[..n].iter().copied().map(finite_or_zero).collect();

    let (low, high) = bounds(&smoothed);
    let threshold = (PROMINENCE_FRACTION * (high - low)).max(PROMINENCE_FLOOR);
    let pivots = pivots(&smoothed, threshold);
    let mut peaks = Vec::new();
    let mut troughs = Vec::new();
    let mut turning_points = Vec::new();
    for (position, pivot) in pivots.iter().enumerate() {
        let interior = position > 0 && position + 1 < pivots.len();
        let extremum = Extremum { index: pivot.index, value: smoothed[pivot.index] };
        if interior {
            turning_points.push(pivot.index);
        }
        match pivot.turn {
            Turn::Peak if interior || extremum.value >= high => peaks.push(extremum),
            Turn::Trough if interior || extremum.value <= low => troughs.push(extremum),
            _ => {}
        }
    }

    let shape = classify(&smoothed);
    ArcSummary {
        dominant_emotion: dominant_emotion(&emotions[..n]),
        mean_valence: finite_or_zero(mean(&valence)),
        volatility: finite_or_zero(volatility(&valence)),
        peaks,
        troughs,
        turning_points,
        shape,
        arc: shape.reagan_name(),
    }
}

fn finite_or_zero(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// (min, max) of a series; (0, 0) when empty.
fn bounds(xs: &[f64]) -> (f64, f64) {
    match xs.first() {
        None => (0.0, 0.0),
        Some(&first) => xs.iter().fold((first, first), |(lo, hi), &x| (lo.min(x), hi.max(x))),
    }
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn volatility(valence: &[f64]) -> f64 {
    let steps: Vec<f64> = valence.windows(2).map(|w| w[1] - w[0]).collect();
    if steps.is_empty() {
        return 0.0;
    }
    let m = mean(&steps);
    (steps.iter().map(|s| (s - m) * (s - m)).sum::<f64>() / steps.len() as f64).sqrt()
}

fn dominant_emotion(emotions: &[EmotionDist]) -> &'static str {
    let mut mass = [0.0f64; EMOTIONS.len()];
    for dist in emotions {
        for (total, &p) in mass.iter_mut().zip(dist.0.iter()) {
            if p.is_finite() && p > 0.0 {
                *total += f64::from(p);
            }
        }
    }
    let mut best: Option<(&'static str, f64)> = None;
    for (&name, &m) in EMOTIONS.iter().zip(mass.iter()) {
        if m > 0.0 && best.is_none_or(|(_, b)| m > b) {
            best = Some((name, m));
        }
    }
    best.map_or("neutral", |(name, _)| name)
}

fn rolling_mean(values: &[f64], window: usize) -> Vec<f64> {
    let n = values.len();
    if window <= 1 || n == 0 {
        return values.to_vec();
    }
    let before = (window - 1) / 2;
    let after = window / 2;
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0);
    let mut total = 0.0;
    for &v in values {
        total += v;
        prefix.push(total);
    }
    (0..n)
        .map(|i| {
            let lo = i.saturating_sub(before);
            let hi = i.saturating_add(after).min(n - 1);
            (prefix[hi + 1] - prefix[lo]) / (hi + 1 - lo) as f64
        })
        .collect()
}

fn dct_low_pass(values: &[f64], keep: usize) -> Vec<f64> {
    if keep >= values.len() {
        return values.to_vec();
    }
    inverse_dct(&dct(values, keep), values.len())
}

/// The `keep` lowest DCT-II coefficients, X_k = Σ_j x_j cos(πk(j + ½)/n).
fn dct(values: &[f64], keep: usize) -> Vec<f64> {
    let n = values.len();
    let mut coefficients = vec![0.0; keep.min(n)];
    for (j, &x) in values.iter().enumerate() {
        for (c, cosine) in coefficients.iter_mut().zip(Cosines::new(angle(j, n))) {
            *c += x * cosine;
        }
    }
    coefficients
}

/// The length-`n` series whose DCT-II starts with `coefficients` and is zero
/// after them: x_j = (X_0 + 2 Σ_{k≥1} X_k cos(πk(j + ½)/n)) / n.
fn inverse_dct(coefficients: &[f64], n: usize) -> Vec<f64> {
    let first = coefficients.first().copied().unwrap_or(0.0);
    (0..n)
        .map(|j| {
            let rest: f64 = coefficients.iter().zip(Cosines::new(angle(j, n))).skip(1).map(|(c, cos)| c * cos).sum();
            (first + 2.0 * rest) / n as f64
        })
        .collect()
}

fn angle(j: usize, n: usize) -> f64 {
    PI * (j as f64 + 0.5) / n as f64
}

/// cos(0), cos(θ), cos(2θ), … by the Chebyshev recurrence
/// cos((k+1)θ) = 2 cos θ cos(kθ) − cos((k−1)θ): one `cos` call per series.
struct Cosines {
    current: f64,
    previous: f64,
    twice_cos: f64,
}

impl Cosines {
    fn new(theta: f64) -> Self {
        let cos = theta.cos();
        Self { current: 1.0, previous: cos, twice_cos: 2.0 * cos }
    }
}

impl Iterator for Cosines {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        let out = self.current;
        let next = self.twice_cos * self.current - self.previous;
        self.previous = self.current;
        self.current = next;
        Some(out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    Peak,
    Trough,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pivot {
    index: usize,
    turn: Turn,
}

/// The alternating extremes of `xs` that a walk with hysteresis `threshold`
/// (> 0) confirms, plus the unconfirmed extreme the walk ends on. Consecutive
/// pivots differ by at least `threshold`; between them the series moves one
/// way up to retracements smaller than `threshold`. Empty when the whole
/// series moves less than `threshold`. On plateaus the first index wins.
fn pivots(xs: &[f64], threshold: f64) -> Vec<Pivot> {
    enum Walk {
        Undecided { low: usize, high: usize },
        Rising { high: usize },
        Falling { low: usize },
    }
    let mut out = Vec::new();
    let mut walk = Walk::Undecided { low: 0, high: 0 };
    for (i, &x) in xs.iter().enumerate().skip(1) {
        walk = match walk {
            Walk::Undecided { mut low, mut high } => {
                if x < xs[low] {
                    low = i;
                }
                if x > xs[high] {
                    high = i;
                }
                if x - xs[low] >= threshold {
                    out.push(Pivot { index: low, turn: Turn::Trough });
                    Walk::Rising { high: i }
                } else if xs[high] - x >= threshold {
                    out.push(Pivot { index: high, turn: Turn::Peak });
                    Walk::Falling { low: i }
                } else {
                    Walk::Undecided { low, high }
                }
            }
            Walk::Rising { high } if x > xs[high] => Walk::Rising { high: i },
            Walk::Rising { high } if xs[high] - x >= threshold => {
                out.push(Pivot { index: high, turn: Turn::Peak });
                Walk::Falling { low: i }
            }
            Walk::Falling { low } if x < xs[low] => Walk::Falling { low: i },
            Walk::Falling { low } if x - xs[low] >= threshold => {
                out.push(Pivot { index: low, turn: Turn::Trough });
                Walk::Rising { high: i }
            }
            unchanged => unchanged,
        };
    }
    match walk {
        Walk::Rising { high } => out.push(Pivot { index: high, turn: Turn::Peak }),
        Walk::Falling { low } => out.push(Pivot { index: low, turn: Turn::Trough }),
        Walk::Undecided { .. } => {}
    }
    out
}

fn classify(smoothed: &[f64]) -> ArcShape {
    let (low, high) = bounds(smoothed);
    let range = high - low;
    if range < FLAT_RANGE {
        return ArcShape::Flat;
    }
    let runs = pivots(smoothed, SHAPE_SWING_FRACTION * range);
    if runs.len() <= 4 {
        return shape_of(&runs);
    }
    let fit = dct_low_pass(smoothed, SHAPE_FIT_COMPONENTS);
    let (low, high) = bounds(&fit);
    if high - low < FLAT_RANGE {
        return ArcShape::Flat;
    }
    shape_of(&pivots(&fit, SHAPE_SWING_FRACTION * (high - low)))
}

/// The shape of the runs between `pivots`; more than three runs (which the
/// coarse fit cannot produce) read as three.
fn shape_of(pivots: &[Pivot]) -> ArcShape {
    let Some(first) = pivots.first() else {
        return ArcShape::Flat;
    };
    let rises_first = first.turn == Turn::Trough;
    match (pivots.len() - 1, rises_first) {
        (0, _) => ArcShape::Flat,
        (1, true) => ArcShape::Rising,
        (1, false) => ArcShape::Falling,
        (2, true) => ArcShape::RiseFall,
        (2, false) => ArcShape::FallRise,
        (_, true) => ArcShape::RiseFallRise,
        (_, false) => ArcShape::FallRiseFall,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine_series(n: usize, frequency: usize) -> Vec<f64> {
        (0..n).map(|j| (frequency as f64 * angle(j, n)).cos()).collect()
    }

    fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
    }

    #[test]
    fn constant_series_is_unchanged_by_every_method() {
        let values = vec![0.3; 257];
        for smoothing in [
            Smoothing::None,
            Smoothing::Rolling { window: 7 },
            Smoothing::Rolling { window: 8 },
            Smoothing::Dct { low_pass: 5 },
            Smoothing::Dct { low_pass: 0 },
        ] {
            assert!(max_abs_diff(&smooth(&values, smoothing), &values) < 1e-12, "{smoothing:?}");
        }
    }

    #[test]
    fn low_frequency_cosine_survives_a_low_pass() {
        let values = cosine_series(200, 2);
        assert!(max_abs_diff(&smooth(&values, Smoothing::Dct { low_pass: 5 }), &values) < 1e-9);
    }

    #[test]
    fn high_frequency_alternation_is_removed() {
        let values: Vec<f64> = (0..200).map(|j| if j % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let dct = smooth(&values, Smoothing::Dct { low_pass: 5 });
        assert!(dct.iter().all(|v| v.abs() < 0.05), "{dct:?}");
        let rolling = smooth(&values, Smoothing::Rolling { window: 2 });
        assert!(rolling[..199].iter().all(|v| v.abs() < 1e-12));
    }

    #[test]
    fn dct_round_trip_with_every_component_reproduces_the_input() {
        let values: Vec<f64> = (0..97).map(|j| ((j * 37 % 11) as f64 - 5.0) / 7.0).collect();
        let back = inverse_dct(&dct(&values, values.len()), values.len());
        assert!(max_abs_diff(&back, &values) < 1e-9);
        assert_eq!(smooth(&values, Smoothing::Dct { low_pass: 97 }), values);
    }

    #[test]
    fn dct_matches_the_direct_cosine_sum() {
        let values: Vec<f64> = (0..50).map(|j| (j as f64 * 0.37).sin()).collect();
        let fast = dct(&values, 20);
        for (k, &c) in fast.iter().enumerate() {
            let direct: f64 = values.iter().enumerate().map(|(j, x)| x * (k as f64 * angle(j, 50)).cos()).sum();
            assert!((c - direct).abs() < 1e-10, "k={k}");
        }
    }

    #[test]
    fn rolling_window_shrinks_at_the_edges() {
        let values = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(smooth(&values, Smoothing::Rolling { window: 3 }), [1.5, 2.0, 3.0, 4.0, 4.5]);
        assert_eq!(smooth(&values, Smoothing::Rolling { window: 4 }), [2.0, 2.5, 3.5, 4.0, 4.5]);
        assert_eq!(smooth(&values, Smoothing::Rolling { window: 1 }), values);
        assert_eq!(smooth(&values, Smoothing::Rolling { window: usize::MAX }), [3.0; 5]);
    }

    #[test]
    fn smoothing_handles_short_and_non_finite_input() {
        for smoothing in [Smoothing::None, Smoothing::Rolling { window: 5 }, Smoothing::Dct { low_pass: 3 }] {
            assert!(smooth(&[], smoothing).is_empty());
            assert_eq!(smooth(&[0.5], smoothing), [0.5]);
            assert_eq!(smooth(&[f64::NAN, f64::INFINITY], smoothing).len(), 2);
            assert!(smooth(&[f64::NAN, 1.0, f64::NEG_INFINITY, 0.2], smoothing).iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn pivots_alternate_and_ignore_small_retracements() {
        let xs = [0.0, 1.0, 0.5, 1.2, 0.0, 0.05, -0.3];
        let found = pivots(&xs, 0.6);
        let indices: Vec<usize> = found.iter().map(|p| p.index).collect();
        assert_eq!(indices, [0, 3, 6]);
        assert_eq!(found[0].turn, Turn::Trough);
        assert_eq!(found[1].turn, Turn::Peak);
        assert!(pivots(&[0.0, 0.1, 0.0], 0.5).is_empty());
        assert!(pivots(&[], 0.5).is_empty());
    }

    #[test]
    fn many_runs_fall_back_to_the_coarse_fit() {
        let n = 400;
        let xs: Vec<f64> = (0..n).map(|j| -0.6 * angle(j, n).cos() + 0.4 * (6.0 * angle(j, n)).cos()).collect();
        let (low, high) = bounds(&xs);
        assert!(pivots(&xs, SHAPE_SWING_FRACTION * (high - low)).len() > 4);
        assert_eq!(classify(&xs), ArcShape::Rising);
    }

    #[test]
    fn every_shape_has_its_name() {
        assert_eq!(ArcShape::Flat.reagan_name(), None);
        assert_eq!(ArcShape::FallRise.reagan_name(), Some("man in a hole"));
        assert_eq!(ArcShape::RiseFallRise.reagan_name(), Some("Cinderella"));
    }
}
