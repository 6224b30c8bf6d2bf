//! [`Analysis`], the result (JSON schema `osprey.analysis/v1`), and
//! [`analyze`], which makes it from the inputs: facts → score → bottlenecks
//! → recommendations → trends → exit code. Pure: no I/O, no clock.

use serde::Serialize;

use crate::bottleneck::{self, Bottleneck};
use crate::cli::exit;
use crate::facts::Facts;
use crate::input::Inputs;
use crate::recommend::{self, Recommendation};
use crate::score::{self, Grade, Missing, SignalScore};
use crate::trend::{self, Trends};

/// The schema every analysis declares. Fields are only added within `v1`.
pub const SCHEMA: &str = "osprey.analysis/v1";

/// What the user asked for beyond the inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Options {
    /// The p95 latency objective, ms (`--slo-p95`, default 300 ms).
    pub slo_p95_ms: f64,
    /// `--target-rps`; without it an open-model report's offered rate.
    pub target_rps: Option<f64>,
    /// `--fail-under`: exit 3 below this score.
    pub fail_under: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Options { slo_p95_ms: 300.0, target_rps: None, fail_under: None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportSummary {
    pub origin: String,
    pub run: String,
    pub scenario: Option<String>,
    pub started_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsSummary {
    pub origin: String,
    pub samples: usize,
    /// Seconds between the oldest and the newest sample.
    pub span_s: Option<f64>,
}

/// What was analysed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputSummary {
    pub report: Option<ReportSummary>,
    pub stats: Option<StatsSummary>,
    pub baseline: Option<ReportSummary>,
}

/// The settings the score was computed with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub slo_p95_ms: f64,
    pub target_rps: Option<f64>,
    /// `--target-rps`, `offered rate (load report)`, or `null`.
    pub target_source: Option<&'static str>,
    pub fail_under: Option<f64>,
}

/// The exit code and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub exit_code: u8,
    pub reasons: Vec<String>,
}

/// Everything `osprey analyze` concluded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub schema: &'static str,
    pub tool: Tool,
    pub inputs: InputSummary,
    pub settings: Settings,
    /// 0–100, one decimal; `null` when no signal was measured.
    pub score: Option<f64>,
    pub grade: Option<Grade>,
    /// Sum of the documented weights of the measured signals.
    pub weight_present: f64,
    pub signals: Vec<SignalScore>,
    pub missing_signals: Vec<Missing>,
    /// The resource of the most severe bottleneck.
    pub saturates_first: Option<&'static str>,
    pub bottlenecks: Vec<Bottleneck>,
    pub recommendations: Vec<Recommendation>,
    pub trends: Option<Trends>,
    pub notes: Vec<String>,
    pub outcome: Outcome,
}

fn summary(r: &crate::input::ReportInput) -> ReportSummary {
    ReportSummary {
        origin: r.origin.clone(),
        run: r.report.label().to_string(),
        scenario: r.report.scenario.clone(),
        started_at: r.report.started_at.clone(),
    }
}

/// Analyses `inputs`.
pub fn analyze(inputs: &Inputs, options: &Options) -> Analysis {
    let facts = Facts::gather(inputs);
    let health = score::health(&facts, options.slo_p95_ms, options.target_rps);
    let bottlenecks = bottleneck::find(&facts);
    let (recommendations, mut notes) = recommend::recommend(&facts, &bottlenecks, &health);
    let trends = match (&inputs.report, &inputs.baseline) {
        (Some(current), Some(base)) => Some(trend::compare(&current.report, &base.report, &base.origin)),
        _ => None,
    };
    for r in [&inputs.report, &inputs.baseline].into_iter().flatten() {
        notes.extend(r.note.clone());
    }

    let mut reasons = Vec::new();
    let mut exit_code = exit::OK;
    if let Some(t) = trends.as_ref().filter(|t| t.failed) {
        exit_code = exit::TREND_FAILURE;
        reasons.push(format!("regression against the baseline: {}", t.failures.join("; ")));
    }
    if let Some(min) = options.fail_under {
        let below = health.score.is_none_or(|s| s < min);
        if below {
            if exit_code == exit::OK {
                exit_code = exit::BELOW_FAIL_UNDER;
            }
            reasons.push(match health.score {
                Some(s) => format!("score {s:.1} is below --fail-under {min}"),
                None => format!("no signal was measured, so the score cannot reach --fail-under {min}"),
            });
        }
    }

    let target_source = match (options.target_rps, &facts.offered_rps) {
        (Some(_), _) => Some("--target-rps"),
        (None, Some(_)) => Some("offered rate (load report)"),
        (None, None) => None,
    };
    Analysis {
        schema: SCHEMA,
        tool: Tool { name: "osprey analyze", version: env!("CARGO_PKG_VERSION") },
        inputs: InputSummary {
            report: inputs.report.as_ref().map(summary),
            stats: inputs.stats.as_ref().map(|s| StatsSummary {
                origin: s.origin.clone(),
                samples: s.samples.len(),
                span_s: facts.sample_span_s.map(score::round1),
            }),
            baseline: inputs.baseline.as_ref().map(summary),
        },
        settings: Settings {
            slo_p95_ms: options.slo_p95_ms,
            target_rps: options.target_rps.or(facts.offered_rps.as_ref().map(|f| score::round1(f.value))),
            target_source,
            fail_under: options.fail_under,
        },
        score: health.score,
        grade: health.grade,
        weight_present: health.weight_present,
        signals: health.signals,
        missing_signals: health.missing,
        saturates_first: bottlenecks.first().map(|b| b.resource),
        bottlenecks,
        recommendations,
        trends,
        notes,
        outcome: Outcome { exit_code, reasons },
    }
}
