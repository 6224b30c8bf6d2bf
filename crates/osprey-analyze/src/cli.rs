//! The command line: [`AnalyzeArgs`] as typed, validated into a `Plan` once
//! (so a malformed value is exit code 1 with a message, like every other
//! input error), then [`run`]: gather the inputs, analyse, print, write.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use reqwest::Url;

use crate::analysis::{analyze, Analysis, Options};
use crate::error::AnalyzeError;
use crate::input::stats::{self, Bundle, SAMPLES_SCHEMA};
use crate::input::{fetch, Inputs, StatsInput};
use crate::render;

/// Exit codes (see `docs/analyze.md`).
pub mod exit {
    pub const OK: u8 = 0;
    /// Bad arguments, unreadable or wrong input, unreachable server, unwritable output.
    pub const ERROR: u8 = 1;
    /// A regression against `--baseline` (takes precedence over 3).
    pub const TREND_FAILURE: u8 = 2;
    /// The score is below `--fail-under`.
    pub const BELOW_FAIL_UNDER: u8 = 3;
}

/// `osprey analyze`: health score, bottlenecks, recommendations and trends
/// from a load report and the server's own figures (docs/analyze.md).
#[derive(Debug, Clone, clap::Args)]
pub struct AnalyzeArgs {
    /// Load report written by `osprey load --json` (schema osprey.load/v1; a run or a suite)
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// The run of a suite report to analyse (default: its last run)
    #[arg(long, value_name = "NAME")]
    pub run: Option<String>,

    /// Saved `/performance/stats` JSON, or a sample bundle written by --save-stats
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,

    /// A running osprey server to fetch /performance/stats from (loopback unless --allow-remote)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// With --url: take a second sample this long after the first (`10s`), for RSS growth and counter deltas
    #[arg(long, value_name = "DURATION")]
    pub sample: Option<String>,

    /// With --url: save the samples taken, for a later --stats
    #[arg(long, value_name = "FILE")]
    pub save_stats: Option<PathBuf>,

    /// An earlier load report of the same workload: regressions exit with code 2
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// The p95 latency objective (`300ms`, `1s`; a bare number is milliseconds)
    #[arg(long, value_name = "DURATION", default_value = "300ms")]
    pub slo_p95: String,

    /// Throughput target in requests per second (default: an open-model report's offered rate)
    #[arg(long, value_name = "N")]
    pub target_rps: Option<String>,

    /// Write the analysis as JSON (schema osprey.analysis/v1)
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write a self-contained HTML report
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Exit with code 3 when the score is below this (0–100)
    #[arg(long, value_name = "SCORE")]
    pub fail_under: Option<String>,

    /// Allow a --url that is not a loopback address
    #[arg(long)]
    pub allow_remote: bool,
}

impl Default for AnalyzeArgs {
    /// No inputs, and the command line's defaults (`--slo-p95 300ms`).
    fn default() -> Self {
        AnalyzeArgs {
            report: None,
            run: None,
            stats: None,
            url: None,
            sample: None,
            save_stats: None,
            baseline: None,
            slo_p95: "300ms".into(),
            target_rps: None,
            json: None,
            html: None,
            fail_under: None,
            allow_remote: false,
        }
    }
}

/// Where server figures come from.
#[derive(Debug, Clone)]
enum StatsSource {
    File(PathBuf),
    Url { base: Url, sample: Option<Duration>, save: Option<PathBuf> },
}

/// Validated arguments.
#[derive(Debug, Clone)]
struct Plan {
    report: Option<PathBuf>,
    run: Option<String>,
    stats: Option<StatsSource>,
    baseline: Option<PathBuf>,
    options: Options,
    json: Option<PathBuf>,
    html: Option<PathBuf>,
}

fn usage(msg: impl Into<String>) -> AnalyzeError {
    AnalyzeError::Usage(msg.into())
}

/// `300ms`, `1.5s`, or a bare number of milliseconds.
fn parse_ms(flag: &str, s: &str) -> Result<f64, AnalyzeError> {
    let s = s.trim();
    let ms = match s.parse::<f64>() {
        Ok(n) => n,
        Err(_) => {
            humantime::parse_duration(s)
                .map_err(|e| usage(format!("{flag} {s:?}: not a duration ({e}); e.g. 300ms or 1s")))?
                .as_secs_f64()
                * 1000.0
        }
    };
    if !(ms.is_finite() && ms > 0.0) {
        return Err(usage(format!("{flag} {s:?}: must be positive")));
    }
    Ok(ms)
}

fn parse_number(flag: &str, s: &str, min_exclusive: f64, max: f64) -> Result<f64, AnalyzeError> {
    let t = s.trim().trim_end_matches("/s");
    let n: f64 = t.parse().map_err(|_| usage(format!("{flag} {s:?}: not a number")))?;
    if !(n.is_finite() && n > min_exclusive && n <= max) {
        return Err(usage(format!("{flag} {s:?}: must be above {min_exclusive} and at most {max}")));
    }
    Ok(n)
}

impl Plan {
    fn from_args(a: AnalyzeArgs) -> Result<Plan, AnalyzeError> {
        if a.report.is_none() && a.stats.is_none() && a.url.is_none() {
            return Err(usage("nothing to analyse: give --report FILE, --stats FILE or --url URL (or several)"));
        }
        if a.stats.is_some() && a.url.is_some() {
            return Err(usage("--stats and --url are alternatives: give one"));
        }
        if a.url.is_none() && (a.sample.is_some() || a.save_stats.is_some()) {
            return Err(usage("--sample and --save-stats need --url"));
        }
        if a.report.is_none() && (a.baseline.is_some() || a.run.is_some()) {
            return Err(usage("--baseline and --run apply to a load report: give --report FILE"));
        }
        let stats = match (a.stats, a.url) {
            (Some(path), _) => Some(StatsSource::File(path)),
            (None, Some(url)) => {
                let sample = a
                    .sample
                    .map(|s| {
                        let d = humantime::parse_duration(s.trim())
                            .map_err(|e| usage(format!("--sample {s:?}: not a duration ({e}); e.g. 10s")))?;
                        if d < fetch::MIN_SAMPLE || d > fetch::MAX_SAMPLE {
                            return Err(usage(format!("--sample {s:?}: must be between 1s and 10m")));
                        }
                        Ok(d)
                    })
                    .transpose()?;
                let base = fetch::check_target(&url, a.allow_remote)?;
                Some(StatsSource::Url { base, sample, save: a.save_stats })
            }
            (None, None) => None,
        };
        let options = Options {
            slo_p95_ms: parse_ms("--slo-p95", &a.slo_p95)?,
            target_rps: a.target_rps.as_deref().map(|s| parse_number("--target-rps", s, 0.0, 1e9)).transpose()?,
            fail_under: a.fail_under.as_deref().map(|s| parse_number("--fail-under", s, -1e-9, 100.0)).transpose()?,
        };
        Ok(Plan { report: a.report, run: a.run, stats, baseline: a.baseline, options, json: a.json, html: a.html })
    }

    fn gather(&self) -> Result<Inputs, AnalyzeError> {
        let stats_file = match &self.stats {
            Some(StatsSource::File(p)) => Some(p.as_path()),
            _ => None,
        };
        let mut inputs =
            Inputs::read(self.report.as_deref(), self.run.as_deref(), stats_file, self.baseline.as_deref())?;
        if let Some(StatsSource::Url { base, sample, save }) = &self.stats {
            let raw = fetch::collect(base, *sample)?;
            if let Some(path) = save {
                let bundle =
                    Bundle { schema: SAMPLES_SCHEMA.into(), url: Some(base.to_string()), samples: raw.clone() };
                write(path, serde_json::to_string_pretty(&bundle).unwrap_or_default())?;
            }
            let origin = base.to_string();
            inputs.stats = Some(StatsInput { samples: stats::parse_samples(&raw, &origin)?, origin });
        }
        Ok(inputs)
    }
}

fn write(path: &std::path::Path, text: String) -> Result<(), AnalyzeError> {
    std::fs::write(path, text).map_err(|source| AnalyzeError::Write { path: path.into(), source })
}

/// Writes `--json` and `--html`.
fn write_outputs(plan: &Plan, analysis: &Analysis) -> Result<(), AnalyzeError> {
    if let Some(p) = &plan.json {
        let text = serde_json::to_string_pretty(analysis)
            .map_err(|e| AnalyzeError::Write { path: p.clone(), source: std::io::Error::other(e) })?;
        write(p, text)?;
    }
    if let Some(p) = &plan.html {
        write(p, render::html::page(analysis))?;
    }
    Ok(())
}

/// Runs `osprey analyze`: prints the summary to stdout, writes the files,
/// and returns 0, 2 (trend failure) or 3 (below `--fail-under`). Input and
/// usage errors are `Err` (the binary exits 1).
pub fn run(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let plan = Plan::from_args(args)?;
    let inputs = plan.gather()?;
    let analysis = analyze(&inputs, &plan.options);
    print!("{}", render::text::render(&analysis));
    write_outputs(&plan, &analysis)?;
    Ok(ExitCode::from(analysis.outcome.exit_code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> AnalyzeArgs {
        AnalyzeArgs { stats: Some("s.json".into()), ..AnalyzeArgs::default() }
    }

    fn err(a: AnalyzeArgs) -> String {
        Plan::from_args(a).expect_err("refused").to_string()
    }

    #[test]
    fn values_are_parsed_once() {
        let p = Plan::from_args(AnalyzeArgs {
            slo_p95: "1.5s".into(),
            target_rps: Some("400/s".into()),
            fail_under: Some("80".into()),
            ..args()
        })
        .expect("valid");
        assert_eq!(p.options, Options { slo_p95_ms: 1500.0, target_rps: Some(400.0), fail_under: Some(80.0) });
        let p = Plan::from_args(AnalyzeArgs { slo_p95: "250".into(), ..args() }).expect("valid");
        assert_eq!(p.options.slo_p95_ms, 250.0);
    }

    #[test]
    fn bad_values_and_combinations_are_usage_errors() {
        assert!(err(AnalyzeArgs { stats: None, ..args() }).contains("nothing to analyse"));
        assert!(err(AnalyzeArgs { url: Some("http://127.0.0.1:1".into()), ..args() }).contains("alternatives"));
        assert!(err(AnalyzeArgs { sample: Some("10s".into()), ..args() }).contains("need --url"));
        assert!(err(AnalyzeArgs { baseline: Some("b.json".into()), ..args() }).contains("--report"));
        assert!(err(AnalyzeArgs { slo_p95: "fast".into(), ..args() }).contains("--slo-p95"));
        assert!(err(AnalyzeArgs { slo_p95: "0ms".into(), ..args() }).contains("positive"));
        assert!(err(AnalyzeArgs { target_rps: Some("-3".into()), ..args() }).contains("--target-rps"));
        assert!(err(AnalyzeArgs { fail_under: Some("101".into()), ..args() }).contains("--fail-under"));
        let url = |u: &str, sample: Option<&str>| AnalyzeArgs {
            stats: None,
            url: Some(u.into()),
            sample: sample.map(Into::into),
            ..args()
        };
        assert!(err(url("http://127.0.0.1:1", Some("0s"))).contains("between 1s and 10m"));
        assert!(err(url("http://10.0.0.1:8080", None)).contains("--allow-remote"));
        assert!(Plan::from_args(AnalyzeArgs { allow_remote: true, ..url("http://10.0.0.1:8080", None) }).is_ok());
    }
}
