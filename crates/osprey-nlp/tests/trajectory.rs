//! Trajectory scenarios: synthetic arcs with seeded noise, extrema, edge cases.

use std::f64::consts::PI;
use std::time::Instant;

use osprey_nlp::emotion::{EmotionDist, EMOTIONS};
use osprey_nlp::trajectory::{smooth, summarize, ArcShape, ArcSummary, Smoothing};

/// A 64-bit linear congruential generator (Knuth's MMIX constants), so the
/// noise is the same on every run and platform.
struct Lcg(u64);

impl Lcg {
    /// Uniform in [-1, 1).
    fn next_signed(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// `f` sampled at `n` points over [0, 1] plus uniform noise of `noise` amplitude.
fn series(n: usize, noise: f64, seed: u64, f: impl Fn(f64) -> f64) -> Vec<f64> {
    let mut rng = Lcg(seed);
    (0..n).map(|j| f(j as f64 / (n - 1) as f64) + noise * rng.next_signed()).collect()
}

/// An expected shape, its name, and the arc that should produce it.
type ShapeCase = (ArcShape, Option<&'static str>, fn(f64) -> f64);

fn neutral(n: usize) -> Vec<EmotionDist> {
    vec![EmotionDist::neutral(); n]
}

/// Summarises `raw` after the syuzhet-default DCT low-pass of 5 components.
fn summary_of(raw: &[f64]) -> ArcSummary {
    let smoothed = smooth(raw, Smoothing::Dct { low_pass: 5 });
    summarize(raw, &smoothed, &neutral(raw.len()))
}

#[test]
fn noisy_sine_segments_get_their_shapes_and_names() {
    let cases: [ShapeCase; 7] = [
        (ArcShape::Rising, Some("rags to riches"), |t| -0.6 * (PI * t).cos()),
        (ArcShape::Falling, Some("riches to rags"), |t| 0.6 * (PI * t).cos()),
        (ArcShape::RiseFall, Some("Icarus"), |t| 0.7 * (PI * t).sin() - 0.3),
        (ArcShape::FallRise, Some("man in a hole"), |t| 0.3 - 0.7 * (PI * t).sin()),
        (ArcShape::RiseFallRise, Some("Cinderella"), |t| -0.6 * (3.0 * PI * t).cos()),
        (ArcShape::FallRiseFall, Some("Oedipus"), |t| 0.6 * (3.0 * PI * t).cos()),
        (ArcShape::Flat, None, |t| 0.02 * (2.0 * PI * t).sin()),
    ];
    for (seed, (shape, name, f)) in cases.into_iter().enumerate() {
        for n in [40, 200, 1000] {
            // A flat arc under strong noise is not flat once 40 points are
            // smoothed: what is left of the noise is then the arc.
            let noise = if shape == ArcShape::Flat { 0.1 } else { 0.3 };
            let raw = series(n, noise, seed as u64 + 1, f);
            let summary = summary_of(&raw);
            assert_eq!(summary.shape, shape, "n={n}: {summary:?}");
            assert_eq!(summary.arc, name);
        }
    }
}

#[test]
fn a_small_detour_is_a_peak_but_does_not_change_the_shape() {
    // A rise with a dip of about 15% of the range halfway: peaks and turning
    // points see it, the shape stays "rags to riches".
    let smoothed: Vec<f64> = (0..201)
        .map(|j| {
            let t = j as f64 / 200.0;
            t - 0.5 - 0.3 * (-((t - 0.55) / 0.05).powi(2)).exp()
        })
        .collect();
    let summary = summarize(&smoothed, &smoothed, &neutral(201));
    assert_eq!(summary.shape, ArcShape::Rising);
    assert_eq!(summary.turning_points.len(), 2, "{summary:?}");
    assert_eq!(summary.peaks.len(), 2);
    assert_eq!(summary.peaks[1].index, 200);
    assert_eq!(summary.troughs.len(), 2);
    assert_eq!(summary.troughs[0].index, 0);
}

#[test]
fn peaks_troughs_and_turning_points_of_two_periods() {
    let n = 400;
    // sin(4πt) over [0, 1): peaks at t = 1/8, 5/8, troughs at 3/8, 7/8; a bump
    // of 0.05 (2.5% of the range) at t = 0.3 is not prominent.
    let smoothed: Vec<f64> = (0..n)
        .map(|j| {
            let t = j as f64 / n as f64;
            (4.0 * PI * t).sin() + 0.05 * (-((t - 0.3) / 0.01).powi(2)).exp()
        })
        .collect();
    let summary = summarize(&smoothed, &smoothed, &neutral(n));
    let peaks: Vec<usize> = summary.peaks.iter().map(|e| e.index).collect();
    let troughs: Vec<usize> = summary.troughs.iter().map(|e| e.index).collect();
    assert_eq!(peaks, [50, 250]);
    assert_eq!(troughs, [150, 350]);
    assert_eq!(summary.turning_points, [50, 150, 250, 350]);
    assert!((summary.peaks[0].value - 1.0).abs() < 1e-12);
    assert!(summary.turning_points.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn prominent_global_extremes_at_the_ends_count() {
    let falling: Vec<f64> = (0..50).map(|j| 0.8 - j as f64 / 30.0).collect();
    let summary = summarize(&falling, &falling, &neutral(50));
    assert_eq!(summary.shape, ArcShape::Falling);
    assert_eq!(summary.peaks.iter().map(|e| e.index).collect::<Vec<_>>(), [0]);
    assert_eq!(summary.troughs.iter().map(|e| e.index).collect::<Vec<_>>(), [49]);
    assert!(summary.turning_points.is_empty());

    // Rise, fall, rise to a lower end: the start is the global minimum, the
    // end is neither extreme.
    let xs = [-1.0, 0.0, 1.0, 0.0, -0.5, 0.0, 0.5];
    let summary = summarize(&xs, &xs, &neutral(xs.len()));
    assert_eq!(summary.shape, ArcShape::RiseFallRise);
    assert_eq!(summary.troughs.iter().map(|e| e.index).collect::<Vec<_>>(), [0, 4]);
    assert_eq!(summary.peaks.iter().map(|e| e.index).collect::<Vec<_>>(), [2]);
    assert_eq!(summary.turning_points, [2, 4]);
}

#[test]
fn mean_and_volatility() {
    let steady: Vec<f64> = (0..10).map(|j| j as f64 / 10.0).collect();
    let summary = summarize(&steady, &steady, &neutral(10));
    assert!((summary.mean_valence - 0.45).abs() < 1e-12);
    assert!(summary.volatility < 1e-12);

    // Steps +1, -1, +1: mean 1/3, population SD sqrt(8/9).
    let jumpy = [0.0, 1.0, 0.0, 1.0];
    let summary = summarize(&jumpy, &jumpy, &neutral(4));
    assert!((summary.volatility - (8.0f64 / 9.0).sqrt()).abs() < 1e-12);
}

#[test]
fn dominant_emotion_is_the_largest_total_mass() {
    let class = |name: &str| EMOTIONS.iter().position(|e| *e == name).unwrap_or(0);
    let mut mostly_joy = [0.0f32; 7];
    mostly_joy[class("joy")] = 0.6;
    mostly_joy[class("sadness")] = 0.4;
    let mut sad = [0.0f32; 7];
    sad[class("sadness")] = 1.0;
    // Joy wins two segments of three but sadness has more mass (1.8 vs 1.2).
    let emotions = [EmotionDist(mostly_joy), EmotionDist(mostly_joy), EmotionDist(sad)];
    assert_eq!(summarize(&[0.0; 3], &[0.0; 3], &emotions).dominant_emotion, "sadness");

    let mut tie = [0.0f32; 7];
    tie[class("surprise")] = 0.5;
    tie[class("fear")] = 0.5;
    assert_eq!(summarize(&[0.0], &[0.0], &[EmotionDist(tie)]).dominant_emotion, "fear");

    let nothing = [EmotionDist([0.0; 7]), EmotionDist([f32::NAN; 7])];
    assert_eq!(summarize(&[0.0; 2], &[0.0; 2], &nothing).dominant_emotion, "neutral");
}

#[test]
fn short_empty_mismatched_and_non_finite_inputs() {
    let empty = summarize(&[], &[], &[]);
    assert_eq!(empty.shape, ArcShape::Flat);
    assert_eq!(empty.arc, None);
    assert_eq!(empty.dominant_emotion, "neutral");
    assert_eq!((empty.mean_valence, empty.volatility), (0.0, 0.0));
    assert!(empty.peaks.is_empty() && empty.troughs.is_empty() && empty.turning_points.is_empty());

    let one = summarize(&[0.7], &[0.7], &neutral(1));
    assert_eq!(one.shape, ArcShape::Flat);
    assert_eq!((one.mean_valence, one.volatility), (0.7, 0.0));

    let two = summarize(&[-0.5, 0.5], &[-0.5, 0.5], &neutral(2));
    assert_eq!(two.shape, ArcShape::Rising);
    assert!(two.turning_points.is_empty());

    // Only the common prefix (two segments) is read.
    let mismatched = summarize(&[0.0, 1.0, 5.0, 9.0], &[0.0, 1.0, 5.0], &neutral(2));
    assert_eq!(mismatched.mean_valence, 0.5);
    assert_eq!(mismatched.shape, ArcShape::Rising);

    let weird = [f64::NAN, f64::INFINITY, 0.5, f64::NEG_INFINITY, -0.5, f64::MAX, f64::MIN];
    let summary = summarize(&weird, &smooth(&weird, Smoothing::Dct { low_pass: 3 }), &neutral(weird.len()));
    assert!(summary.mean_valence.is_finite() && summary.volatility.is_finite());
    assert!(summary.peaks.iter().chain(&summary.troughs).all(|e| e.value.is_finite()));
}

#[test]
fn summaries_are_deterministic() {
    let raw = series(500, 0.4, 7, |t| (5.0 * t).sin());
    assert_eq!(summary_of(&raw), summary_of(&raw));
    assert_eq!(smooth(&raw, Smoothing::Dct { low_pass: 9 }), smooth(&raw, Smoothing::Dct { low_pass: 9 }));
}

/// Rough timings, not assertions:
/// `cargo test --release -p osprey-nlp --test trajectory -- --ignored --nocapture`.
#[test]
#[ignore = "timing report; run in release with --nocapture"]
fn timing_smooth_and_summarize_10k_points() {
    let raw = series(10_000, 0.5, 42, |t| (3.0 * PI * t).sin());
    for smoothing in
        [Smoothing::Rolling { window: 101 }, Smoothing::Dct { low_pass: 5 }, Smoothing::Dct { low_pass: 20 }]
    {
        let start = Instant::now();
        let smoothed = smooth(&raw, smoothing);
        let elapsed = start.elapsed();
        println!("smooth 10,000 points, {smoothing:?}: {elapsed:?}");
        let start = Instant::now();
        let summary = summarize(&raw, &smoothed, &neutral(raw.len()));
        println!("summarize 10,000 points: {:?} ({:?})", start.elapsed(), summary.shape);
    }
}
