//! Alert rules: a signal, a direction, raise and clear levels, a hold and a
//! window — and the default set.
//!
//! A rule reads like "`cpu_percent` averaged over 60 s **above** 80 for 60 s
//! raises; back to 70 or less for 60 s clears". The gap between the two
//! levels is the hysteresis that stops an alert from flapping on a signal that
//! hovers around the raise level.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::AlertError;

/// Longest accepted window and hold: signal history is kept for the longest
/// window, and a day of one-second samples is already 86 400 of them.
const MAX_SPAN: Duration = Duration::from_secs(24 * 3600);

/// Which side of the raise level is bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Comparison {
    /// Raise when the average exceeds `raise`; clear at or below `clear`.
    Above,
    /// Raise when the average drops under `raise`; clear at or above `clear`.
    Below,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

/// One alert rule, as written in the settings file under `[[alerts.rules]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Unique; identifies the rule across reloads and in events.
    pub name: String,
    /// The signal evaluated (a key of the `Signals` map fed to `observe`).
    pub signal: String,
    #[serde(default)]
    pub description: String,
    pub comparison: Comparison,
    /// The level whose crossing (strictly) starts the hold towards raising.
    pub raise: f64,
    /// The level at (or past) which a firing alert starts the hold towards
    /// clearing; on the good side of `raise`.
    pub clear: f64,
    /// How long the average must stay past `raise` before the alert fires,
    /// and past `clear` before it clears. Zero acts on the first evaluation.
    #[serde(with = "humantime_serde")]
    pub hold: Duration,
    /// The span the signal is averaged over.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    pub severity: Severity,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
}

fn enabled_default() -> bool {
    true
}

impl AlertRule {
    /// The default rules. The signal names are a contract with the server,
    /// which computes and feeds them (see each rule).
    pub fn defaults() -> Vec<AlertRule> {
        let s = Duration::from_secs;
        vec![
            // Host CPU busy (all cores, 0–100) from the system sampler.
            rule("cpu_high", "cpu_percent", "CPU usage above 80% for a minute", Comparison::Above, 80.0, 70.0).timed(
                s(60),
                s(60),
                Severity::Warning,
            ),
            // Resident memory of the host in use, 0–100.
            rule("memory_high", "memory_percent", "Memory usage above 85% for a minute", Comparison::Above, 85.0, 80.0)
                .timed(s(60), s(60), Severity::Critical),
            // Fullest data volume (database, models, logs), 0–100; averaged
            // over 5 minutes since disk use moves slowly and spikes with
            // temporary files.
            rule("disk_full", "disk_percent", "Disk usage above 90%", Comparison::Above, 90.0, 85.0).timed(
                s(60),
                s(300),
                Severity::Critical,
            ),
            // p95 of the analysis routes over the last minute, in ms, from
            // the performance monitor.
            rule(
                "latency_p95_high",
                "latency_p95_ms",
                "p95 request latency above 500 ms",
                Comparison::Above,
                500.0,
                400.0,
            )
            .timed(s(60), s(60), Severity::Warning),
            // Share of requests answered with a 5xx (or failing) over the
            // last minute, 0–100.
            rule(
                "error_rate_high",
                "error_rate_percent",
                "More than 5% of requests failing",
                Comparison::Above,
                5.0,
                2.0,
            )
            .timed(s(60), s(60), Severity::Critical),
            // Cache hits over look-ups, 0–100; low for five minutes means the
            // cache is too small or keys are not repeating.
            rule(
                "cache_hit_rate_low",
                "cache_hit_rate_percent",
                "Cache hit rate below 70% for five minutes",
                Comparison::Below,
                70.0,
                75.0,
            )
            .timed(s(300), s(300), Severity::Warning),
            // Batching queue depth over its capacity, 0–100; requests are
            // about to be refused with 429.
            rule(
                "queue_saturated",
                "queue_saturation_percent",
                "Inference queue more than 90% full",
                Comparison::Above,
                90.0,
                70.0,
            )
            .timed(s(30), s(30), Severity::Warning),
            // Database statements slower than the configured threshold, per
            // minute.
            rule(
                "slow_queries",
                "slow_queries_per_minute",
                "More than 10 slow database queries per minute",
                Comparison::Above,
                10.0,
                5.0,
            )
            .timed(s(60), s(60), Severity::Warning),
            // Share of predictions served by a fallback model (primary
            // failed or timed out), 0–100, over 5 minutes.
            rule(
                "model_fallback_high",
                "model_fallback_percent",
                "More than 5% of predictions served by a fallback model",
                Comparison::Above,
                5.0,
                2.0,
            )
            .timed(s(60), s(300), Severity::Warning),
        ]
    }

    /// Checks one rule on its own (uniqueness is checked by [`validate_rules`]).
    pub fn validate(&self) -> Result<(), AlertError> {
        let bad = |reason: String| AlertError::InvalidRule { rule: self.name.clone(), reason };
        if self.name.trim().is_empty() {
            return Err(bad("name must not be empty".into()));
        }
        if self.signal.trim().is_empty() {
            return Err(bad("signal must not be empty".into()));
        }
        if !self.raise.is_finite() || !self.clear.is_finite() {
            return Err(bad(format!("raise ({}) and clear ({}) must be finite", self.raise, self.clear)));
        }
        match self.comparison {
            Comparison::Above if self.clear > self.raise => {
                return Err(bad(format!("an `above` rule needs clear ({}) <= raise ({})", self.clear, self.raise)));
            }
            Comparison::Below if self.clear < self.raise => {
                return Err(bad(format!("a `below` rule needs clear ({}) >= raise ({})", self.clear, self.raise)));
            }
            _ => {}
        }
        if self.window < Duration::from_secs(1) || self.window > MAX_SPAN {
            return Err(bad(format!("window must be between 1s and 24h, got {:?}", self.window)));
        }
        if self.hold > MAX_SPAN {
            return Err(bad(format!("hold must be at most 24h, got {:?}", self.hold)));
        }
        Ok(())
    }

    /// Whether `value` is strictly past the raise level.
    pub(crate) fn beyond_raise(&self, value: f64) -> bool {
        match self.comparison {
            Comparison::Above => value > self.raise,
            Comparison::Below => value < self.raise,
        }
    }

    /// Whether `value` is at or past the clear level, on the good side.
    pub(crate) fn cleared_by(&self, value: f64) -> bool {
        match self.comparison {
            Comparison::Above => value <= self.clear,
            Comparison::Below => value >= self.clear,
        }
    }

    /// Whether `value` is worse than `peak` (higher for `above`, lower for `below`).
    pub(crate) fn worse(&self, value: f64, peak: f64) -> bool {
        match self.comparison {
            Comparison::Above => value > peak,
            Comparison::Below => value < peak,
        }
    }

    fn timed(mut self, hold: Duration, window: Duration, severity: Severity) -> Self {
        self.hold = hold;
        self.window = window;
        self.severity = severity;
        self
    }
}

fn rule(name: &str, signal: &str, description: &str, comparison: Comparison, raise: f64, clear: f64) -> AlertRule {
    AlertRule {
        name: name.into(),
        signal: signal.into(),
        description: description.into(),
        comparison,
        raise,
        clear,
        hold: Duration::ZERO,
        window: Duration::from_secs(60),
        severity: Severity::Warning,
        enabled: true,
    }
}

/// Validates every rule and that names are unique.
pub fn validate_rules(rules: &[AlertRule]) -> Result<(), AlertError> {
    let mut names = HashSet::with_capacity(rules.len());
    for rule in rules {
        rule.validate()?;
        if !names.insert(rule.name.as_str()) {
            return Err(AlertError::DuplicateRule(rule.name.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_keep_their_contract() -> Result<(), AlertError> {
        let rules = AlertRule::defaults();
        validate_rules(&rules)?;
        let find = |name: &str| rules.iter().find(|r| r.name == name).cloned();
        let cache = find("cache_hit_rate_low").expect("default rule");
        assert_eq!(cache.signal, "cache_hit_rate_percent");
        assert_eq!(cache.comparison, Comparison::Below);
        assert_eq!((cache.raise, cache.clear), (70.0, 75.0));
        assert_eq!(cache.hold, Duration::from_secs(300));
        let disk = find("disk_full").expect("default rule");
        assert_eq!((disk.window, disk.severity), (Duration::from_secs(300), Severity::Critical));
        let signals: Vec<&str> = rules.iter().map(|r| r.signal.as_str()).collect();
        assert_eq!(
            signals,
            [
                "cpu_percent",
                "memory_percent",
                "disk_percent",
                "latency_p95_ms",
                "error_rate_percent",
                "cache_hit_rate_percent",
                "queue_saturation_percent",
                "slow_queries_per_minute",
                "model_fallback_percent"
            ]
        );
        Ok(())
    }

    #[test]
    fn parses_from_the_settings_format() -> Result<(), serde_json::Error> {
        let rule: AlertRule = serde_json::from_str(
            r#"{"name": "gpu_hot", "signal": "gpu_temp_c", "comparison": "above", "raise": 85, "clear": 80,
                "hold": "30s", "window": "1m", "severity": "critical"}"#,
        )?;
        assert!(rule.enabled);
        assert_eq!(rule.hold, Duration::from_secs(30));
        assert!(rule.validate().is_ok());
        assert!(serde_json::from_str::<AlertRule>(r#"{"name": "x", "sigal": "y"}"#).is_err());
        Ok(())
    }

    #[test]
    fn rejects_malformed_rules() {
        let base = AlertRule::defaults().remove(0);
        let with = |f: &dyn Fn(&mut AlertRule)| {
            let mut r = base.clone();
            f(&mut r);
            r.validate()
        };
        assert!(with(&|_| {}).is_ok());
        assert!(matches!(with(&|r| r.name = " ".into()), Err(AlertError::InvalidRule { .. })));
        assert!(with(&|r| r.signal.clear()).is_err());
        assert!(with(&|r| r.clear = 90.0).is_err(), "above needs clear <= raise");
        assert!(with(&|r| r.clear = 80.0).is_ok(), "clear == raise is allowed");
        assert!(with(&|r| r.comparison = Comparison::Below).is_err(), "below needs clear >= raise");
        assert!(with(&|r| r.raise = f64::NAN).is_err());
        assert!(with(&|r| r.clear = f64::NEG_INFINITY).is_err());
        assert!(with(&|r| r.window = Duration::from_millis(500)).is_err());
        assert!(with(&|r| r.hold = Duration::ZERO).is_ok());
        let dup = vec![base.clone(), base.clone()];
        assert!(matches!(validate_rules(&dup), Err(AlertError::DuplicateRule(n)) if n == "cpu_high"));
    }
}
