//! Workload models: how many virtual users (closed model) or how many
//! arrivals per second (open model) a run asks for at each instant.
//!
//! Both are a [`Shape`]: a start level and [`Stage`]s that ramp linearly to
//! their target, k6-style. Profiles are named shapes. For the open model,
//! [`ArrivalSchedule`] integrates the rate so request *k* has one intended
//! send time, computed without reference to when earlier requests returned;
//! that is what makes coordinated-omission-free latency possible.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::LoadError;

/// Hard ceiling on a run's length, except for the endurance profile.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Hard ceiling on an endurance run's length.
pub const MAX_ENDURANCE_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Most virtual users (or open-model connections) one run may ask for.
pub const MAX_VUS: u32 = 10_000;
/// Highest arrival rate one run may ask for, in requests per second.
pub const MAX_RATE: f64 = 1_000_000.0;

/// A level: virtual users for the closed model, an arrival rate for the open one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Vus(f64),
    Rate(f64),
}

impl Level {
    pub fn value(self) -> f64 {
        match self {
            Level::Vus(v) | Level::Rate(v) => v,
        }
    }
    pub fn is_rate(self) -> bool {
        matches!(self, Level::Rate(_))
    }
}

impl FromStr for Level {
    type Err = LoadError;

    /// `50` is 50 virtual users; `200/s` and `12000/m` are arrival rates.
    fn from_str(s: &str) -> Result<Self, LoadError> {
        let s = s.trim();
        if s.contains('/') {
            return parse_rate(s).map(Level::Rate);
        }
        let v: f64 = s.parse().map_err(|_| LoadError::invalid(format!("`{s}` is not a number of virtual users")))?;
        if !(0.0..=f64::from(MAX_VUS)).contains(&v) || v.fract() != 0.0 {
            return Err(LoadError::invalid(format!(
                "virtual users must be a whole number in 0..={MAX_VUS}, got `{s}`"
            )));
        }
        Ok(Level::Vus(v))
    }
}

/// Parses `400`, `400/s`, `24000/m` or `10/ms` into requests per second.
pub fn parse_rate(s: &str) -> Result<f64, LoadError> {
    let s = s.trim();
    let (num, per) = s.split_once('/').unwrap_or((s, "s"));
    let n: f64 = num.trim().parse().map_err(|_| LoadError::invalid(format!("`{s}` is not a rate such as 200/s")))?;
    let seconds = match per.trim() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        "ms" => 0.001,
        other => return Err(LoadError::invalid(format!("unknown rate unit `/{other}` in `{s}` (use /s, /m or /h)"))),
    };
    let rate = n / seconds;
    if !rate.is_finite() || !(0.0..=MAX_RATE).contains(&rate) {
        return Err(LoadError::invalid(format!("rate `{s}` is outside 0..={MAX_RATE}/s")));
    }
    Ok(rate)
}

/// One stage: ramp linearly from the previous level to `target` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: Level,
}

impl FromStr for Stage {
    type Err = LoadError;

    /// `30s:10` (ramp to 10 VUs over 30 s) or `1m:200/s` (ramp to 200 req/s over a minute).
    fn from_str(s: &str) -> Result<Self, LoadError> {
        let (d, t) = s.rsplit_once(':').ok_or_else(|| {
            LoadError::invalid(format!("stage `{s}` is not DURATION:TARGET, e.g. 30s:10 or 1m:200/s"))
        })?;
        let duration = humantime::parse_duration(d.trim())
            .map_err(|e| LoadError::invalid(format!("stage `{s}`: bad duration `{d}`: {e}")))?;
        if duration.is_zero() {
            return Err(LoadError::invalid(format!("stage `{s}` has a zero duration")));
        }
        Ok(Stage { duration, target: t.parse()? })
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.target {
            Level::Vus(v) => write!(f, "{}:{v}", humantime::format_duration(self.duration)),
            Level::Rate(r) => write!(f, "{}:{r}/s", humantime::format_duration(self.duration)),
        }
    }
}

/// A level over time: `start`, then each stage ramps linearly to its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub start: f64,
    pub stages: Vec<(Duration, f64)>,
}

impl Shape {
    /// A constant level for `duration`.
    pub fn constant(level: f64, duration: Duration) -> Self {
        Shape { start: level, stages: vec![(duration, level)] }
    }

    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|(d, _)| *d).sum()
    }

    pub fn peak(&self) -> f64 {
        self.stages.iter().map(|(_, v)| *v).fold(self.start, f64::max)
    }

    pub fn is_constant(&self) -> bool {
        self.stages.iter().all(|(_, v)| *v == self.start)
    }

    /// The level `t` seconds into the run (the last target after the end).
    pub fn value_at(&self, t: f64) -> f64 {
        let mut from = self.start;
        let mut t0 = 0.0;
        for (d, to) in &self.stages {
            let d = d.as_secs_f64();
            if t < t0 + d {
                return from + (to - from) * ((t - t0) / d).max(0.0);
            }
            t0 += d;
            from = *to;
        }
        from
    }

    /// Index of the stage in force `t` seconds into the run.
    pub fn stage_at(&self, t: f64) -> usize {
        let mut end = 0.0;
        for (i, (d, _)) in self.stages.iter().enumerate() {
            end += d.as_secs_f64();
            if t < end {
                return i;
            }
        }
        self.stages.len().saturating_sub(1)
    }

    /// `[start, end)` in seconds of each stage.
    pub fn stage_bounds(&self) -> Vec<(f64, f64)> {
        let mut t = 0.0;
        self.stages
            .iter()
            .map(|(d, _)| {
                let start = t;
                t += d.as_secs_f64();
                (start, t)
            })
            .collect()
    }

    /// The same shape with every level multiplied by `factor`.
    pub fn scaled(&self, factor: f64) -> Self {
        Shape { start: self.start * factor, stages: self.stages.iter().map(|(d, v)| (*d, v * factor)).collect() }
    }
}

/// The named profiles. Each is a shape whose peak and duration can be overridden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// 1 VU for 30 s: does the target answer at all?
    Smoke,
    /// 10 VUs for 60 s: typical load.
    Basic,
    /// 50 VUs for 5 min: sustained heavy load.
    Stress,
    /// Ramp to 100 VUs in 5 s, hold, drop.
    Spike,
    /// 20 VUs for 30 min: leaks, drift, slow degradation.
    Endurance,
    /// Open model: the arrival rate ramps up until an SLO breaks; reports the last passing rate.
    Breakpoint,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Smoke => "smoke",
            Profile::Basic => "basic",
            Profile::Stress => "stress",
            Profile::Spike => "spike",
            Profile::Endurance => "endurance",
            Profile::Breakpoint => "breakpoint",
        }
    }

    pub fn default_duration(self) -> Duration {
        Duration::from_secs(match self {
            Profile::Smoke => 30,
            Profile::Basic => 60,
            Profile::Stress => 300,
            Profile::Spike => 60,
            Profile::Endurance => 1800,
            Profile::Breakpoint => 300,
        })
    }

    /// Peak VUs (closed profiles) or peak arrival rate (breakpoint).
    pub fn default_peak(self) -> f64 {
        match self {
            Profile::Smoke => 1.0,
            Profile::Basic => 10.0,
            Profile::Stress => 50.0,
            Profile::Spike => 100.0,
            Profile::Endurance => 20.0,
            Profile::Breakpoint => 1000.0,
        }
    }

    /// The profile's shape at `peak` over `duration`.
    pub fn shape(self, duration: Duration, peak: f64) -> Shape {
        match self {
            Profile::Spike => {
                // 1/12 ramp up (5 s of the default minute), 3/4 hold, 1/6 drop.
                let ramp = duration.mul_f64(1.0 / 12.0);
                let drop = duration.mul_f64(1.0 / 6.0);
                let hold = duration.saturating_sub(ramp + drop);
                Shape { start: 0.0, stages: vec![(ramp, peak), (hold, peak), (drop, 0.0)] }
            }
            Profile::Breakpoint => {
                let start = (peak / 100.0).max(1.0).min(peak);
                Shape { start, stages: vec![(duration, peak)] }
            }
            _ => Shape::constant(peak, duration),
        }
    }

    pub fn max_duration(self) -> Duration {
        if self == Profile::Endurance {
            MAX_ENDURANCE_DURATION
        } else {
            MAX_DURATION
        }
    }
}

/// Intended send times of an open-model run: request `k` is due when the
/// integral of the rate reaches `k`.
#[derive(Debug, Clone)]
pub struct ArrivalSchedule {
    segments: Vec<Segment>,
    total: f64,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    t0: f64,
    len: f64,
    r0: f64,
    r1: f64,
    /// Arrivals before `t0`.
    n0: f64,
}

impl Segment {
    fn count(&self) -> f64 {
        (self.r0 + self.r1) * 0.5 * self.len
    }
}

impl ArrivalSchedule {
    pub fn new(rate: &Shape) -> Self {
        let mut segments = Vec::with_capacity(rate.stages.len());
        let (mut t0, mut n0, mut r0) = (0.0, 0.0, rate.start);
        for (d, r1) in &rate.stages {
            let seg = Segment { t0, len: d.as_secs_f64(), r0, r1: *r1, n0 };
            n0 += seg.count();
            t0 += seg.len;
            r0 = *r1;
            segments.push(seg);
        }
        ArrivalSchedule { segments, total: n0 }
    }

    /// Arrivals in the whole run (requests `0..total` are due before its end).
    pub fn total(&self) -> u64 {
        // An arrival exactly at the end belongs to the next run.
        let n = self.total.ceil();
        if n > 0.0 {
            n as u64
        } else {
            0
        }
    }

    /// Seconds after the start at which request `k` is due; `None` past the end.
    pub fn time_of(&self, k: u64) -> Option<f64> {
        let idx = self.segments.partition_point(|s| s.n0 + s.count() <= k as f64);
        self.time_in(idx, k)
    }

    /// A cursor for increasing `k`, which avoids the segment search.
    pub fn cursor(&self) -> ArrivalCursor<'_> {
        ArrivalCursor { schedule: self, segment: 0 }
    }

    fn time_in(&self, idx: usize, k: u64) -> Option<f64> {
        let s = self.segments.get(idx)?;
        let m = k as f64 - s.n0;
        // N(τ) = r0·τ + (r1 - r0)·τ²/(2·len); solve N(τ) = m in the stable form.
        let a = (s.r1 - s.r0) / (2.0 * s.len);
        let disc = (s.r0 * s.r0 + 4.0 * a * m).max(0.0);
        let denom = s.r0 + disc.sqrt();
        let tau = if denom > 0.0 { 2.0 * m / denom } else { 0.0 };
        Some(s.t0 + tau.clamp(0.0, s.len))
    }
}

/// Walks an [`ArrivalSchedule`] for increasing request numbers.
pub struct ArrivalCursor<'a> {
    schedule: &'a ArrivalSchedule,
    segment: usize,
}

impl ArrivalCursor<'_> {
    /// Seconds after the start at which request `k` is due; `k` must not decrease.
    pub fn time_of(&mut self, k: u64) -> Option<f64> {
        let segs = &self.schedule.segments;
        while let Some(s) = segs.get(self.segment) {
            if (k as f64) < s.n0 + s.count() {
                break;
            }
            self.segment += 1;
        }
        self.schedule.time_in(self.segment, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse_vus_and_rates() {
        let s: Stage = "30s:10".parse().expect("stage");
        assert_eq!(s, Stage { duration: Duration::from_secs(30), target: Level::Vus(10.0) });
        let s: Stage = "1m:200/s".parse().expect("stage");
        assert_eq!(s.target, Level::Rate(200.0));
        assert_eq!(s.duration, Duration::from_secs(60));
        let s: Stage = "1m 30s:6000/m".parse().expect("stage");
        assert_eq!(s.duration, Duration::from_secs(90));
        assert_eq!(s.target, Level::Rate(100.0));
        for bad in ["30s", "x:10", "30s:ten", "0s:5", "30s:2.5", "30s:-1", "10s:5/fortnight", "10s:2000000/s"] {
            assert!(bad.parse::<Stage>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn shapes_interpolate() {
        let shape =
            Shape { start: 0.0, stages: vec![(Duration::from_secs(10), 100.0), (Duration::from_secs(10), 100.0)] };
        assert_eq!(shape.value_at(0.0), 0.0);
        assert_eq!(shape.value_at(5.0), 50.0);
        assert_eq!(shape.value_at(15.0), 100.0);
        assert_eq!(shape.value_at(99.0), 100.0);
        assert_eq!(shape.stage_at(12.0), 1);
        assert_eq!(shape.peak(), 100.0);
        let spike = Profile::Spike.shape(Duration::from_secs(60), 100.0);
        assert_eq!(spike.duration(), Duration::from_secs(60));
        assert_eq!(spike.value_at(5.0), 100.0);
        assert_eq!(spike.value_at(60.0), 0.0);
    }

    #[test]
    fn constant_schedule_is_evenly_spaced() {
        let s = ArrivalSchedule::new(&Shape::constant(200.0, Duration::from_secs(2)));
        assert_eq!(s.total(), 400);
        assert_eq!(s.time_of(0), Some(0.0));
        assert!((s.time_of(1).expect("due") - 0.005).abs() < 1e-12);
        assert!((s.time_of(399).expect("due") - 1.995).abs() < 1e-9);
        assert_eq!(s.time_of(400), None);
    }

    #[test]
    fn ramp_schedule_integrates_the_rate() {
        // 0 → 100/s over 10 s: 500 arrivals, N(t) = 5 t², so t_k = sqrt(k / 5).
        let shape = Shape { start: 0.0, stages: vec![(Duration::from_secs(10), 100.0)] };
        let s = ArrivalSchedule::new(&shape);
        assert_eq!(s.total(), 500);
        let mut cursor = s.cursor();
        for k in [1u64, 20, 125, 499] {
            let want = (k as f64 / 5.0).sqrt();
            assert!((cursor.time_of(k).expect("due") - want).abs() < 1e-9, "k={k}");
            assert!((s.time_of(k).expect("due") - want).abs() < 1e-9);
        }
        // Ramping down mirrors it.
        let down = ArrivalSchedule::new(&Shape { start: 100.0, stages: vec![(Duration::from_secs(10), 0.0)] });
        assert_eq!(down.total(), 500);
        let t = down.time_of(499).expect("due");
        assert!(t > 9.0 && t < 10.0, "{t}");
    }

    #[test]
    fn rates_parse_with_units() {
        assert_eq!(parse_rate("400").expect("rate"), 400.0);
        assert_eq!(parse_rate("400/s").expect("rate"), 400.0);
        assert_eq!(parse_rate("600/m").expect("rate"), 10.0);
        assert!(parse_rate("fast").is_err());
    }
}
