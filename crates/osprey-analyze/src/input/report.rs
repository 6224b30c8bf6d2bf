//! Load reports: schema `osprey.load/v1` (see `docs/load.md`), a run
//! (`kind: "run"`) or a suite (`kind: "suite"`, runs inside).
//!
//! Only the fields the analysis reads are mirrored here. The histograms are
//! not decoded: the summaries the report carries are what the rules need.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{describe, null_default, read_text, ReportInput};
use crate::error::AnalyzeError;

/// The schema every load report declares.
pub const LOAD_SCHEMA: &str = "osprey.load/v1";

/// One run of `osprey load`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LoadReport {
    pub schema: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub started_at: Option<String>,
    pub duration_s: Option<f64>,
    pub scenario: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub target: TargetInfo,
    #[serde(deserialize_with = "null_default")]
    pub model: ModelInfo,
    /// Responses (any status) per second.
    pub rps: Option<f64>,
    #[serde(deserialize_with = "null_default")]
    pub requests: Requests,
    /// `errors / (ok + errors)`, a ratio.
    pub error_rate: Option<f64>,
    /// Corrected for coordinated omission.
    #[serde(deserialize_with = "null_default")]
    pub latency_ms: Latency,
    #[serde(deserialize_with = "null_default")]
    pub latency_uncorrected_ms: Latency,
    #[serde(deserialize_with = "null_default")]
    pub timeline: Vec<TimelineRow>,
    #[serde(deserialize_with = "null_default")]
    pub errors: ErrorCounts,
    #[serde(deserialize_with = "null_default")]
    pub error_samples: Vec<String>,
    pub server_timing: Option<ServerTiming>,
    #[serde(deserialize_with = "null_default")]
    pub client: Client,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TargetInfo {
    pub url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ModelInfo {
    /// `"open"` or `"closed"`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub threads: Option<f64>,
}

/// Counts as numbers (`null` or missing = unknown).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Requests {
    pub scheduled: Option<f64>,
    pub sent: Option<f64>,
    pub completed: Option<f64>,
    pub ok: Option<f64>,
    pub errors: Option<f64>,
    pub missed: Option<f64>,
    pub cancelled: Option<f64>,
}

/// A latency summary in milliseconds.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Latency {
    pub count: Option<f64>,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
}

/// One second of the run.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct TimelineRow {
    pub t: Option<f64>,
    /// Arrival rate (open model) or VUs (closed) asked for.
    pub target: Option<f64>,
    pub sent: Option<f64>,
    pub completed: Option<f64>,
    pub errors: Option<f64>,
    pub missed: Option<f64>,
    pub rps: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct ErrorCounts {
    pub connect: Option<f64>,
    pub timeout: Option<f64>,
    pub status_4xx: Option<f64>,
    pub status_5xx: Option<f64>,
    pub check: Option<f64>,
    pub io: Option<f64>,
}

/// The `Server-Timing` split, when responses carried it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServerTiming {
    pub responses: Option<f64>,
    #[serde(deserialize_with = "null_default")]
    pub metrics: BTreeMap<String, Latency>,
    /// `network`, `queueing`, `service`.
    #[serde(deserialize_with = "null_default")]
    pub breakdown: BTreeMap<String, Latency>,
}

/// The load generator watching itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Client {
    pub threads: Option<f64>,
    pub cores: Option<f64>,
    pub cpu_cores_used: Option<f64>,
    pub busiest_thread_cpu: Option<f64>,
    pub scheduler_lag_ms: Option<Latency>,
    pub send_delay_ms: Option<Latency>,
    pub saturated: Option<bool>,
    #[serde(deserialize_with = "null_default")]
    pub warnings: Vec<String>,
}

impl LoadReport {
    /// The run's name, or `"run"`.
    pub fn label(&self) -> &str {
        self.name.as_deref().filter(|n| !n.is_empty()).unwrap_or("run")
    }

    pub fn is_open_model(&self) -> bool {
        self.model.kind.as_deref() == Some("open")
    }
}

#[derive(Debug, Deserialize)]
struct SuiteDoc {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    runs: Vec<LoadReport>,
}

/// A report file: one run, or a suite's runs in order.
#[derive(Debug, Clone)]
pub enum ReportDoc {
    Run(Box<LoadReport>),
    Suite { name: Option<String>, runs: Vec<LoadReport> },
}

/// Parses a report; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<ReportDoc, AnalyzeError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| AnalyzeError::input(origin, format!("not JSON: {e}")))?;
    let schema = value.get("schema").and_then(|s| s.as_str());
    if schema != Some(LOAD_SCHEMA) {
        let hint = if value.get("operations").is_some() || value.get("live").is_some() {
            " (it looks like /performance/stats: pass it with --stats)"
        } else if schema == Some(super::stats::SAMPLES_SCHEMA) {
            " (a stats sample bundle: pass it with --stats)"
        } else {
            ""
        };
        return Err(AnalyzeError::input(
            origin,
            format!("{} is not a load report (expected schema `{LOAD_SCHEMA}`){hint}", describe(&value)),
        ));
    }
    let bad = |e: serde_json::Error| AnalyzeError::input(origin, format!("malformed load report: {e}"));
    match value.get("kind").and_then(|k| k.as_str()) {
        None | Some("run") => Ok(ReportDoc::Run(Box::new(serde_json::from_value(value).map_err(bad)?))),
        Some("suite") => {
            let suite: SuiteDoc = serde_json::from_value(value).map_err(bad)?;
            if suite.runs.is_empty() {
                return Err(AnalyzeError::input(origin, "the suite report has no runs"));
            }
            Ok(ReportDoc::Suite { name: suite.name, runs: suite.runs })
        }
        Some(other) => Err(AnalyzeError::input(
            origin,
            format!("unknown load report kind `{other}` (known: run, suite); is it from a newer osprey?"),
        )),
    }
}

/// Picks a run: the only one, the one named `run`, or a suite's last.
pub fn select(doc: ReportDoc, run: Option<&str>, origin: &str) -> Result<ReportInput, AnalyzeError> {
    let origin = origin.to_string();
    match doc {
        ReportDoc::Run(r) => {
            if let Some(want) = run.filter(|w| Some(*w) != r.name.as_deref()) {
                return Err(AnalyzeError::input(
                    &origin,
                    format!("--run {want}: this report is a single run named `{}`", r.label()),
                ));
            }
            Ok(ReportInput { origin, report: *r, note: None })
        }
        ReportDoc::Suite { name, mut runs } => {
            let names: Vec<String> = runs.iter().map(|r| r.label().to_string()).collect();
            let index = match run {
                Some(want) => names.iter().position(|n| n == want).ok_or_else(|| {
                    AnalyzeError::input(
                        &origin,
                        format!("no run named `{want}` in the suite (runs: {})", names.join(", ")),
                    )
                })?,
                None => runs.len() - 1,
            };
            let report = runs.swap_remove(index);
            let note = format!(
                "suite `{}`: analysing run `{}` ({} of {}: {})",
                name.as_deref().unwrap_or("suite"),
                report.label(),
                index + 1,
                names.len(),
                names.join(", ")
            );
            Ok(ReportInput { origin, report, note: Some(note) })
        }
    }
}

/// Reads a report file and picks a run.
pub fn read(path: &Path, run: Option<&str>) -> Result<ReportInput, AnalyzeError> {
    let origin = path.display().to_string();
    select(parse(&read_text(path)?, &origin)?, run, &origin)
}

/// Reads a baseline: a suite's run named like the current one when there is
/// one, else its last; a single run whatever its name.
pub fn read_paired(path: &Path, name: Option<&str>) -> Result<ReportInput, AnalyzeError> {
    let origin = path.display().to_string();
    let doc = parse(&read_text(path)?, &origin)?;
    let run = match (&doc, name) {
        (ReportDoc::Suite { runs, .. }, Some(n)) if runs.iter().any(|r| r.label() == n) => Some(n),
        _ => None,
    };
    select(doc, run, &origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_run_report_parses_with_every_figure_absent() {
        let doc = parse(r#"{"schema": "osprey.load/v1"}"#, "t").expect("parses");
        let ReportDoc::Run(r) = doc else { panic!("a run") };
        assert!(r.rps.is_none() && r.latency_ms.p95.is_none() && r.timeline.is_empty());
    }

    #[test]
    fn nulls_are_absent_figures() {
        let text = r#"{"schema": "osprey.load/v1", "kind": "run", "rps": null, "latency_ms": null,
            "timeline": null, "client": {"saturated": null, "warnings": null, "scheduler_lag_ms": null},
            "requests": {"ok": null, "errors": 3}, "server_timing": null, "extra": {"ignored": true}}"#;
        let ReportDoc::Run(r) = parse(text, "t").expect("parses") else { panic!("a run") };
        assert_eq!(r.requests.errors, Some(3.0));
        assert!(r.requests.ok.is_none() && r.client.saturated.is_none() && r.client.warnings.is_empty());
    }

    #[test]
    fn wrong_documents_are_named() {
        let e = parse(r#"{"operations": [], "live": {}}"#, "s.json").expect_err("refused").to_string();
        assert!(e.contains("/performance/stats") && e.contains("--stats"), "{e}");
        let e = parse(r#"{"schema": "osprey.load/v9"}"#, "r.json").expect_err("refused").to_string();
        assert!(e.contains("osprey.load/v9") && e.contains("osprey.load/v1"), "{e}");
        let e = parse(r#"{"schema": "osprey.load/v1", "kind": "matrix"}"#, "r.json").expect_err("refused");
        assert!(e.to_string().contains("unknown load report kind"), "{e}");
        assert!(parse("not json", "r.json").expect_err("refused").to_string().contains("not JSON"));
    }

    #[test]
    fn suites_default_to_their_last_run_and_pair_by_name() {
        let text = r#"{"schema": "osprey.load/v1", "kind": "suite", "name": "nightly",
            "runs": [{"name": "smoke", "rps": 1}, {"name": "ramp", "rps": 2}]}"#;
        let last = select(parse(text, "s").expect("parses"), None, "s").expect("selects");
        assert_eq!(last.report.name.as_deref(), Some("ramp"));
        assert!(last.note.as_deref().is_some_and(|n| n.contains("2 of 2")));
        let smoke = select(parse(text, "s").expect("parses"), Some("smoke"), "s").expect("selects");
        assert_eq!(smoke.report.rps, Some(1.0));
        let e = select(parse(text, "s").expect("parses"), Some("soak"), "s").expect_err("no such run");
        assert!(e.to_string().contains("smoke, ramp"), "{e}");
    }
}
