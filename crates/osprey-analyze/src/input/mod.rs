//! The input documents, as this crate reads them.
//!
//! Every type here is its own tolerant mirror of a document another part of
//! osprey writes, not a dependency on that part: fields may be missing or
//! `null` (an absent figure, never an error), unknown fields are ignored, and
//! only a document of the wrong kind (an unknown schema, a stats file given
//! as a report) is refused, with a message that says which kind it is.
//!
//! - `report` — load reports (`osprey.load/v1`, a run or a suite);
//! - `stats` — `/performance/stats`, `/performance/cache/stats`,
//!   `/performance/alerts`, and the sample bundle `--save-stats` writes;
//! - `fetch` — the live server: loopback guard, HTTP, `--sample`.

pub mod fetch;
pub mod report;
pub mod stats;

use std::path::Path;

use serde::{Deserialize, Deserializer};

use crate::error::AnalyzeError;
pub use report::LoadReport;
pub use stats::Sample;

/// A load report picked from its file (a run, or one run of a suite).
#[derive(Debug, Clone)]
pub struct ReportInput {
    /// The file it came from.
    pub origin: String,
    pub report: LoadReport,
    /// Set when a suite's run was chosen: which, and what else was there.
    pub note: Option<String>,
}

/// Server figures: one sample or several taken apart in time, oldest first.
#[derive(Debug, Clone)]
pub struct StatsInput {
    /// The file or URL they came from.
    pub origin: String,
    pub samples: Vec<Sample>,
}

/// Everything one analysis reads.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub report: Option<ReportInput>,
    pub stats: Option<StatsInput>,
    pub baseline: Option<ReportInput>,
}

impl Inputs {
    /// Reads the files that are given. `run` names a run of a suite report
    /// (default: its last run); a suite baseline is paired by run name.
    pub fn read(
        report: Option<&Path>,
        run: Option<&str>,
        stats: Option<&Path>,
        baseline: Option<&Path>,
    ) -> Result<Self, AnalyzeError> {
        let report = report.map(|p| report::read(p, run)).transpose()?;
        let paired = run.map(str::to_string).or_else(|| report.as_ref().and_then(|r| r.report.name.clone()));
        let baseline = baseline.map(|p| report::read_paired(p, paired.as_deref())).transpose()?;
        let stats = stats.map(stats::read).transpose()?;
        Ok(Inputs { report, stats, baseline })
    }
}

/// Reads `path` as UTF-8 text.
pub(crate) fn read_text(path: &Path) -> Result<String, AnalyzeError> {
    std::fs::read_to_string(path).map_err(|source| AnalyzeError::Read { path: path.into(), source })
}

/// `null` → the type's default, for fields that are collections or sections.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// What a JSON document says it is, for messages about the wrong kind.
pub(crate) fn describe(value: &serde_json::Value) -> String {
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(s) => format!("a document of schema `{s}`"),
        None if value.get("operations").is_some() || value.get("live").is_some() => {
            "a /performance/stats snapshot".into()
        }
        None if value.is_object() => "a JSON object without a `schema` field".into(),
        None => "not a JSON object".into(),
    }
}
