//! The report: what a run measured, in the versioned JSON schema
//! `osprey.load/v1` (documented field by field in `docs/load.md`), plus its
//! renderings (terminal summary, HTML with inline SVG, CSV, comparisons).
//!
//! A report is self-sufficient: the headline figures are computed from the
//! histograms it carries (`histograms`, HdrHistogram V2 + deflate + base64),
//! so shard reports merge exactly ([`crate::load::merge`]) and `osprey
//! analyze` can recompute any percentile.
//!
//! # Layout
//! - this file: the schema types;
//! - `build`: [`build`] (outcome → report) and [`Figures`];
//! - [`text`]: the terminal summary;
//! - [`html`] and `svg`: the self-contained HTML report;
//! - [`csv`]: per-second rows;
//! - [`compare`]: deltas between two reports.

pub(crate) mod build;
pub mod compare;
pub mod csv;
pub mod html;
mod svg;
pub mod text;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::LoadError;
use super::hist::LatencySummary;
use super::stats::{ErrorCounts, SecondBucket};

pub use build::{build, Figures};

/// The schema every report declares.
pub const SCHEMA: &str = "osprey.load/v1";
/// How histograms are encoded in `histograms`.
pub const HISTOGRAM_ENCODING: &str = "hdrhistogram-v2-deflate-base64";

/// Exit codes (see `docs/load.md`).
pub mod exit {
    pub const OK: u8 = 0;
    /// The run could not start or a file could not be read or written.
    pub const ERROR: u8 = 1;
    /// Stopped by Ctrl-C; the report covers what ran.
    pub const INTERRUPTED: u8 = 3;
    /// Not one request succeeded (and no threshold decided otherwise).
    pub const NO_SUCCESS: u8 = 4;
    // 10 + i: threshold i (declaration order) failed; see `threshold::exit_code_for`.
}

/// One run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    /// `"run"`.
    pub kind: String,
    pub tool: Tool,
    pub name: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_s: f64,
    pub target: TargetInfo,
    pub scenario: String,
    pub model: ModelInfo,
    /// Set when written by `--shard i/n` (1-based `index`).
    pub shard: Option<ShardInfo>,
    /// Set by `osprey load merge`: how many reports were merged.
    pub merged_from: Option<u32>,
    /// Responses (any status) per second over `duration_s`.
    pub rps: f64,
    pub requests: Requests,
    /// `requests.errors / (requests.ok + requests.errors)`.
    pub error_rate: f64,
    /// Corrected for coordinated omission (open model: from the intended send time).
    pub latency_ms: LatencySummary,
    /// From the moment the request was handed to a connection.
    pub latency_uncorrected_ms: LatencySummary,
    /// `[percentile, ms]` pairs of the corrected latency, for plots.
    pub latency_distribution_ms: Vec<[f64; 2]>,
    /// Per request kind, in scenario order.
    pub kinds: Vec<KindReport>,
    /// Per second, in order.
    pub timeline: Vec<TimelineRow>,
    pub errors: ErrorCounts,
    /// First distinct error messages.
    pub error_samples: Vec<String>,
    pub bytes: ByteCounts,
    pub connections: Connections,
    pub server_timing: Option<ServerTimingReport>,
    pub client: ClientReport,
    pub stages: Vec<StageReport>,
    /// Run-wide thresholds, then per-stage ones, in exit-code order.
    pub thresholds: Vec<ThresholdResult>,
    /// No threshold failed.
    pub passed: bool,
    pub aborted: Option<Abort>,
    pub interrupted: bool,
    pub breakpoint: Option<BreakpointResult>,
    pub exit_code: u8,
    pub histograms: Histograms,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetInfo {
    pub url: String,
    pub http2: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    /// `"open"` or `"closed"`.
    #[serde(rename = "type")]
    pub kind: String,
    pub profile: Option<String>,
    /// VUs (closed) or arrivals per second (open) at the start.
    pub start: f64,
    pub stages: Vec<StageShape>,
    pub think_ms: Option<f64>,
    /// Closed model: interval behind the corrected figures.
    pub expected_interval_ms: Option<f64>,
    pub max_connections: Option<u32>,
    pub max_backlog: Option<usize>,
    pub timeout_ms: f64,
    pub max_requests: u64,
    pub threads: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageShape {
    pub duration_s: f64,
    pub target: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: u32,
    pub count: u32,
}

/// `scheduled = sent + missed + never sent`; `sent = ok + errors + cancelled`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Requests {
    /// Arrivals due (open model); requests started (closed model).
    pub scheduled: u64,
    /// Requests started (including those that failed to connect).
    pub sent: u64,
    /// Ended with an HTTP response, whatever its status.
    pub completed: u64,
    pub ok: u64,
    pub errors: u64,
    /// Open model: arrivals dropped because the backlog was full.
    pub missed: u64,
    /// Still in flight or queued when the run ended.
    pub cancelled: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KindReport {
    pub name: String,
    pub method: String,
    pub path: String,
    pub rps: f64,
    pub requests: Requests,
    pub error_rate: f64,
    pub latency_ms: LatencySummary,
    pub latency_uncorrected_ms: LatencySummary,
    pub errors: ErrorCounts,
    pub body_bytes_received: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TimelineRow {
    /// Seconds since the start of this row's second.
    pub t: u32,
    /// VUs or arrival rate asked for (whole run, all shards).
    pub target: f64,
    pub sent: u64,
    pub completed: u64,
    pub ok: u64,
    pub errors: u64,
    pub missed: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl TimelineRow {
    pub fn from_bucket(b: &SecondBucket, target: f64) -> Self {
        let s = LatencySummary::of(&b.latency);
        TimelineRow {
            t: b.second,
            target,
            sent: b.sent,
            completed: b.completed,
            ok: b.ok,
            errors: b.errors,
            missed: b.missed,
            rps: b.completed as f64,
            p50_ms: s.p50,
            p90_ms: s.p90,
            p95_ms: s.p95,
            p99_ms: s.p99,
            max_ms: s.max,
            bytes_sent: b.bytes_sent,
            bytes_received: b.bytes_received,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ByteCounts {
    /// On the wire, headers included.
    pub sent: u64,
    pub received: u64,
    /// Response bodies only.
    pub body_received: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Connections {
    pub opened: u64,
    /// Requests sent per connection opened (keep-alive reuse; HTTP/2 multiplexing).
    pub requests_per_connection: f64,
    pub http2: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerTimingReport {
    /// Responses that carried a parseable `Server-Timing` header.
    pub responses: u64,
    pub metrics: BTreeMap<String, LatencySummary>,
    /// Client latency split: network (raw − server total), queueing (`queue`), service (total − queue).
    pub breakdown: BTreeMap<String, LatencySummary>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClientReport {
    pub threads: usize,
    pub cores: usize,
    pub cpu_user_s: Option<f64>,
    pub cpu_system_s: Option<f64>,
    /// Process CPU time over wall time (1.0 = one core busy).
    pub cpu_cores_used: Option<f64>,
    /// The busiest generator thread's CPU time over its wall time.
    pub busiest_thread_cpu: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    /// Open model: how late the scheduler dispatched arrivals.
    pub scheduler_lag_ms: Option<LatencySummary>,
    /// Open model: intended send time → handed to a connection.
    pub send_delay_ms: Option<LatencySummary>,
    /// The generator, not the server, may have limited the figures.
    pub saturated: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageReport {
    /// 1-based.
    pub index: usize,
    pub start_s: f64,
    pub end_s: f64,
    pub target: f64,
    pub requests: Requests,
    pub rps: f64,
    pub error_rate: f64,
    /// Coarse (two significant digits).
    pub latency_ms: LatencySummary,
    pub thresholds: Vec<ThresholdResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub expr: String,
    /// `"run"` or `"stage N"`.
    pub scope: String,
    pub kind: Option<String>,
    pub passed: bool,
    /// `null` when there was nothing to measure (which fails).
    pub observed: Option<f64>,
    pub limit: f64,
    pub unit: String,
    /// The exit code when this is the first failing threshold.
    pub exit_code: u8,
    /// This threshold stopped the run.
    pub aborted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Abort {
    pub reason: String,
    pub threshold: Option<String>,
    /// 0-based stage, for stage thresholds.
    pub stage: Option<usize>,
    pub at_s: f64,
}

/// The breakpoint profile's finding.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BreakpointResult {
    /// An SLO broke before the end of the ramp.
    pub found: bool,
    /// Highest arrival rate whose 5-second window met every threshold.
    pub last_passing_rate: Option<f64>,
    /// Responses per second achieved in that window.
    pub last_passing_rps: Option<f64>,
    pub broken_at_rate: Option<f64>,
    pub broken_at_s: Option<f64>,
    pub failed: Vec<String>,
}

/// Encoded histograms (microseconds), for merging and re-analysis.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Histograms {
    pub encoding: String,
    pub unit: String,
    pub latency: String,
    pub latency_uncorrected: String,
    pub kinds: BTreeMap<String, KindHistograms>,
    pub server_timing: BTreeMap<String, String>,
    pub breakdown: BTreeMap<String, String>,
    pub scheduler_lag: Option<String>,
    pub send_delay: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KindHistograms {
    pub latency: String,
    pub latency_uncorrected: String,
}

/// Several runs of a suite.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteReport {
    pub schema: String,
    /// `"suite"`.
    pub kind: String,
    pub tool: Tool,
    pub name: String,
    pub started_at: String,
    pub duration_s: f64,
    pub runs: Vec<Report>,
    pub passed: bool,
    pub exit_code: u8,
}

/// A report file of either kind.
#[derive(Debug, Clone)]
pub enum Document {
    Run(Box<Report>),
    Suite(SuiteReport),
}

impl Document {
    pub fn read(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.into(), source })?;
        Self::parse(&text).map_err(|e| LoadError::file(path.display(), e))
    }

    pub fn parse(text: &str) -> Result<Self, LoadError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| LoadError::Report(e.to_string()))?;
        let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("");
        if schema != SCHEMA {
            return Err(LoadError::Report(format!("schema `{schema}` is not {SCHEMA}")));
        }
        let bad = |e: serde_json::Error| LoadError::Report(e.to_string());
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("suite") => Ok(Document::Suite(serde_json::from_value(value).map_err(bad)?)),
            _ => Ok(Document::Run(Box::new(serde_json::from_value(value).map_err(bad)?))),
        }
    }

    pub fn runs(&self) -> Vec<&Report> {
        match self {
            Document::Run(r) => vec![r],
            Document::Suite(s) => s.runs.iter().collect(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Document::Run(r) => r.exit_code,
            Document::Suite(s) => s.exit_code,
        }
    }

    pub fn to_json(&self) -> Result<String, LoadError> {
        let r = match self {
            Document::Run(r) => serde_json::to_string_pretty(r),
            Document::Suite(s) => serde_json::to_string_pretty(s),
        };
        r.map_err(|e| LoadError::Report(e.to_string()))
    }
}

pub fn tool() -> Tool {
    Tool { name: "osprey load".into(), version: env!("CARGO_PKG_VERSION").into() }
}

/// A section another tool adds to the HTML page, made from the JSON report
/// (`osprey` adds `osprey analyze`'s verdict; this crate does not depend on
/// the analyzer). `None`: nothing to add.
pub type Appendix = dyn Fn(&str) -> Option<String>;

/// Writes `doc` as JSON, and the HTML (with `appendix`'s section, if any) and
/// CSV renderings when asked.
pub fn write_outputs(
    doc: &Document,
    json: Option<&Path>,
    html_path: Option<&Path>,
    csv_path: Option<&Path>,
    appendix: Option<&Appendix>,
) -> Result<(), LoadError> {
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|source| LoadError::Write { path: path.into(), source })
    };
    // Serialised once, for the file and the appendix alike.
    let text = if json.is_some() || (html_path.is_some() && appendix.is_some()) { Some(doc.to_json()?) } else { None };
    if let (Some(p), Some(text)) = (json, &text) {
        write(p, text.clone())?;
    }
    if let Some(p) = html_path {
        let extra = appendix.zip(text.as_deref()).and_then(|(make, text)| make(text));
        write(p, html::render_with(doc, extra.as_deref()))?;
    }
    if let Some(p) = csv_path {
        write(p, csv::render(doc))?;
    }
    Ok(())
}
