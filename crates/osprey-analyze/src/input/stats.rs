//! The server's own figures: `/performance/stats` (per-operation windows,
//! the live snapshot, resources, task counters), and when available
//! `/performance/cache/stats` (cumulative hits, misses and evictions) and
//! `/performance/alerts` (rule values such as `model_fallback_percent`).
//!
//! `--stats FILE` takes either a bare `/performance/stats` document or a
//! sample bundle (schema [`SAMPLES_SCHEMA`]), which `--save-stats` writes
//! from `--url`: one or more samples, each the three documents fetched
//! together with the time they were taken.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{describe, null_default, read_text, StatsInput};
use crate::error::AnalyzeError;

/// The schema of the sample bundle `--save-stats` writes.
pub const SAMPLES_SCHEMA: &str = "osprey.analyze.samples/v1";

/// One sample, as fetched or saved: the raw documents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawSample {
    /// Unix milliseconds when it was taken.
    #[serde(default)]
    pub taken_at_ms: Option<f64>,
    pub stats: Value,
    #[serde(default)]
    pub cache_stats: Option<Value>,
    #[serde(default)]
    pub alerts: Option<Value>,
}

/// What `--save-stats` writes and `--stats` reads back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bundle {
    pub schema: String,
    #[serde(default)]
    pub url: Option<String>,
    pub samples: Vec<RawSample>,
}

/// One sample, parsed.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Unix milliseconds: when it was taken, else the live snapshot's time.
    pub at_ms: Option<f64>,
    pub stats: Stats,
    pub cache: Option<CacheStats>,
    pub alerts: Option<Alerts>,
}

/// `GET /performance/stats`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub uptime_seconds: Option<f64>,
    #[serde(deserialize_with = "null_default")]
    pub operations: Vec<Operation>,
    pub live: Option<Live>,
    pub resources: Option<Resources>,
    pub tasks: Option<Tasks>,
}

/// One operation's windows: `kind` is `route`, `stage`, `model`, `statement`, …
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Operation {
    #[serde(deserialize_with = "null_default")]
    pub kind: String,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    pub total: Option<f64>,
    pub total_errors: Option<f64>,
    /// `1m`, `5m`, `1h`.
    #[serde(deserialize_with = "null_default")]
    pub windows: BTreeMap<String, Window>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Window {
    pub count: Option<f64>,
    pub errors: Option<f64>,
    /// A ratio (0..1).
    pub error_rate: Option<f64>,
    pub throughput_per_sec: Option<f64>,
    pub mean_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// The newest live snapshot (what the dashboard shows).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Live {
    pub ts_ms: Option<f64>,
    #[serde(deserialize_with = "null_default")]
    pub http: Http,
    #[serde(deserialize_with = "null_default")]
    pub queue: Queue,
    #[serde(deserialize_with = "null_default")]
    pub cache: LiveCache,
    #[serde(deserialize_with = "null_default")]
    pub system: System,
    #[serde(deserialize_with = "null_default")]
    pub process: Process,
    pub db: Option<Db>,
    #[serde(deserialize_with = "null_default")]
    pub models: Vec<ModelFigures>,
    #[serde(deserialize_with = "null_default")]
    pub alerts: Vec<ActiveAlert>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Http {
    pub rps: Option<f64>,
    /// 5xx share over the last minute, percent.
    pub error_rate_percent: Option<f64>,
    #[serde(deserialize_with = "null_default")]
    pub latency_ms: Percentiles,
    pub in_flight: Option<f64>,
    pub requests_total: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Queue {
    pub depth: Option<f64>,
    pub in_flight: Option<f64>,
    /// `batching.max_concurrent_requests`.
    pub capacity: Option<f64>,
    pub saturation_percent: Option<f64>,
    pub batches_per_sec: Option<f64>,
    pub mean_batch_size: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct LiveCache {
    pub l1_hit_rate_percent: Option<f64>,
    pub l2_hit_rate_percent: Option<f64>,
    pub hit_rate_percent: Option<f64>,
    pub l1_entries: Option<f64>,
    pub l1_bytes: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct System {
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub memory_used_bytes: Option<f64>,
    pub memory_total_bytes: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Process {
    /// Summed over cores: 200 = two cores busy.
    pub cpu_percent: Option<f64>,
    pub rss_bytes: Option<f64>,
    pub threads: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Db {
    pub backend: Option<String>,
    pub pool_size: Option<f64>,
    pub pool_idle: Option<f64>,
    pub pool_in_use: Option<f64>,
    pub queue_depth: Option<f64>,
    /// Worst statement's p95 over the last minute.
    pub query_p95_ms: Option<f64>,
    pub pool_wait_p95_ms: Option<f64>,
    pub slow_queries_total: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ModelFigures {
    pub name: Option<String>,
    pub status: Option<String>,
    /// E.g. `cpu (2 threads)`.
    pub device: Option<String>,
    pub loaded: Option<bool>,
}

/// An alert that is firing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ActiveAlert {
    pub rule: Option<String>,
    pub signal: Option<String>,
    pub value: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Resources {
    pub cpu: Option<ResourceCpu>,
    pub memory: Option<ResourceMemory>,
    pub process: Option<Process>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ResourceCpu {
    pub total_percent: Option<f64>,
    pub cores: Option<f64>,
    #[serde(deserialize_with = "null_default")]
    pub per_core_percent: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct ResourceMemory {
    pub used_percent: Option<f64>,
    pub used_bytes: Option<f64>,
    pub total_bytes: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Tasks {
    pub http_in_flight: Option<f64>,
    pub model: Option<ModelTasks>,
}

/// The default model's batcher: counters since start.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct ModelTasks {
    pub queue_depth: Option<f64>,
    pub in_flight: Option<f64>,
    pub capacity: Option<f64>,
    pub completed: Option<f64>,
    pub batches: Option<f64>,
    pub timed_out: Option<f64>,
    pub failed: Option<f64>,
    /// Answered 429 at admission.
    pub rejected: Option<f64>,
}

/// `GET /performance/cache/stats`: counters since start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CacheStats {
    pub l1: Option<L1Stats>,
    pub l2: Option<L2Stats>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct L1Stats {
    pub enabled: Option<bool>,
    pub max_bytes: Option<f64>,
    pub max_entries: Option<f64>,
    #[serde(deserialize_with = "null_default")]
    pub total: TierTotals,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct L2Stats {
    pub enabled: Option<bool>,
    pub state: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub total: TierTotals,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct TierTotals {
    pub hits: Option<f64>,
    pub misses: Option<f64>,
    pub inserts: Option<f64>,
    #[serde(deserialize_with = "null_default")]
    pub evictions: Evictions,
    pub entries: Option<f64>,
    pub bytes: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Evictions {
    pub size: Option<f64>,
    pub expired: Option<f64>,
    pub replaced: Option<f64>,
    pub explicit: Option<f64>,
}

/// `GET /performance/alerts`: only the rules' latest values are read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Alerts {
    #[serde(deserialize_with = "null_default")]
    pub rules: Vec<RuleState>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RuleState {
    pub rule: Option<RuleDef>,
    pub state: Option<String>,
    /// The rule's window average, in the signal's unit.
    pub value: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RuleDef {
    pub name: Option<String>,
    pub signal: Option<String>,
    /// E.g. `5m`.
    pub window: Option<String>,
}

impl Stats {
    /// The operation `(kind, name)`.
    pub fn op(&self, kind: &str, name: &str) -> Option<&Operation> {
        self.operations.iter().find(|o| o.kind == kind && o.name == name)
    }
}

impl Operation {
    /// The window `w` (`1m`, `5m`, `1h`) when it holds observations.
    pub fn window(&self, w: &str) -> Option<&Window> {
        self.windows.get(w).filter(|w| w.count.unwrap_or(0.0) > 0.0)
    }
}

impl RawSample {
    /// Parses the documents. The stats document must be one; a malformed
    /// cache or alerts document is dropped (they are optional).
    pub fn parse(&self, origin: &str) -> Result<Sample, AnalyzeError> {
        let stats: Stats = serde_json::from_value(self.stats.clone())
            .map_err(|e| AnalyzeError::input(origin, format!("malformed /performance/stats: {e}")))?;
        let cache = self.cache_stats.clone().and_then(|v| serde_json::from_value(v).ok());
        let alerts = self.alerts.clone().and_then(|v| serde_json::from_value(v).ok());
        let at_ms = self.taken_at_ms.or_else(|| stats.live.as_ref().and_then(|l| l.ts_ms));
        Ok(Sample { at_ms, stats, cache, alerts })
    }
}

fn looks_like_stats(value: &Value) -> bool {
    value.get("schema").is_none()
        && ["operations", "live", "uptime_seconds", "resources"].iter().any(|k| value.get(k).is_some())
}

/// Parses a bare stats document or a sample bundle into raw samples.
pub fn parse_raw(text: &str, origin: &str) -> Result<Vec<RawSample>, AnalyzeError> {
    let value: Value = serde_json::from_str(text).map_err(|e| AnalyzeError::input(origin, format!("not JSON: {e}")))?;
    if looks_like_stats(&value) {
        return Ok(vec![RawSample { taken_at_ms: None, stats: value, cache_stats: None, alerts: None }]);
    }
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(SAMPLES_SCHEMA) => {
            let bundle: Bundle = serde_json::from_value(value)
                .map_err(|e| AnalyzeError::input(origin, format!("malformed sample bundle: {e}")))?;
            if bundle.samples.is_empty() {
                return Err(AnalyzeError::input(origin, "the sample bundle holds no samples"));
            }
            Ok(bundle.samples)
        }
        Some(super::report::LOAD_SCHEMA) => {
            Err(AnalyzeError::input(origin, "this is a load report, not server stats: pass it with --report"))
        }
        _ => Err(AnalyzeError::input(
            origin,
            format!(
                "{} is neither a /performance/stats snapshot nor a sample bundle (schema `{SAMPLES_SCHEMA}`)",
                describe(&value)
            ),
        )),
    }
}

/// Parses samples and orders them oldest first.
pub fn parse_samples(raw: &[RawSample], origin: &str) -> Result<Vec<Sample>, AnalyzeError> {
    let mut samples = raw.iter().map(|r| r.parse(origin)).collect::<Result<Vec<_>, _>>()?;
    samples.sort_by(|a, b| a.at_ms.unwrap_or(0.0).total_cmp(&b.at_ms.unwrap_or(0.0)));
    Ok(samples)
}

/// Reads `--stats FILE`.
pub fn read(path: &Path) -> Result<StatsInput, AnalyzeError> {
    let origin = path.display().to_string();
    let raw = parse_raw(&read_text(path)?, &origin)?;
    Ok(StatsInput { samples: parse_samples(&raw, &origin)?, origin })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_snapshot_with_nulls_parses() {
        let text = r#"{"uptime_seconds": null, "operations": [{"kind": "route", "name": "all",
            "windows": {"1m": {"count": 3, "p95_ms": null}}}],
            "live": {"http": {"rps": null, "latency_ms": {"p95": null}}, "db": null, "models": null,
                     "system": null, "alerts": null}, "resources": null, "tasks": {"model": null}, "new": 1}"#;
        let raw = parse_raw(text, "s").expect("parses");
        let s = parse_samples(&raw, "s").expect("parses");
        assert_eq!(s.len(), 1);
        let op = s[0].stats.op("route", "all").expect("op");
        assert_eq!(op.window("1m").and_then(|w| w.p95_ms), None);
        assert!(s[0].stats.live.as_ref().is_some_and(|l| l.db.is_none() && l.system.cpu_percent.is_none()));
    }

    #[test]
    fn an_empty_object_is_not_taken_for_stats() {
        assert!(parse_raw("{}", "s").is_err());
        let e = parse_raw(r#"{"schema": "osprey.load/v1"}"#, "s").expect_err("a report").to_string();
        assert!(e.contains("--report"), "{e}");
    }

    #[test]
    fn bundles_are_ordered_oldest_first_and_keep_their_optional_documents() {
        let text = r#"{"schema": "osprey.analyze.samples/v1", "samples": [
            {"taken_at_ms": 2000, "stats": {"uptime_seconds": 2}, "cache_stats": {"l1": {"max_entries": 16}}},
            {"taken_at_ms": 1000, "stats": {"uptime_seconds": 1}, "alerts": "not an alerts document"}]}"#;
        let s = parse_samples(&parse_raw(text, "b").expect("parses"), "b").expect("parses");
        assert_eq!(s[0].stats.uptime_seconds, Some(1.0));
        assert!(s[0].alerts.is_none(), "a malformed optional document is dropped");
        assert_eq!(s[1].cache.as_ref().and_then(|c| c.l1.as_ref()).and_then(|l| l.max_entries), Some(16.0));
    }
}
