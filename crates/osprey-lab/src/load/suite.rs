//! Suites: several runs (profiles, rates, stages with their own thresholds)
//! from one TOML file, in sequence, into one report.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::cli::{RunArgs, SuiteArgs};
use super::error::LoadError;
use super::live::Console;
use super::report::{exit, tool, Report, SuiteReport, SCHEMA};
use super::scenario::ThresholdEntry;
use super::spec::RunSpec;
use super::workload::{parse_rate, Level, Profile, Stage};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    name: Option<String>,
    url: Option<String>,
    scenario: Option<String>,
    /// Applied to every run, before the run's own.
    #[serde(default)]
    thresholds: Vec<ThresholdEntry>,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
    #[serde(default)]
    http2: bool,
    /// Pause between runs, so one run's tail does not spill into the next.
    #[serde(default, with = "humantime_serde")]
    pause: Option<Duration>,
    #[serde(rename = "run")]
    runs: Vec<SuiteRun>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteRun {
    name: Option<String>,
    profile: Option<Profile>,
    rate: Option<Number>,
    connections: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    duration: Option<Duration>,
    scenario: Option<String>,
    #[serde(default)]
    thresholds: Vec<ThresholdEntry>,
    #[serde(default)]
    abort_on_fail: bool,
    #[serde(default, rename = "stage")]
    stages: Vec<SuiteStage>,
    max_requests: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    think: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    expected_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
    http2: Option<bool>,
    max_backlog: Option<usize>,
    seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteStage {
    #[serde(with = "humantime_serde")]
    duration: Duration,
    /// VUs (`50`) or a rate (`"200/s"`).
    target: Number,
    #[serde(default)]
    thresholds: Vec<ThresholdEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Number {
    Int(u64),
    Float(f64),
    Text(String),
}

impl Number {
    fn text(&self) -> String {
        match self {
            Number::Int(n) => n.to_string(),
            Number::Float(f) => f.to_string(),
            Number::Text(t) => t.clone(),
        }
    }
}

/// A parsed suite: one [`RunArgs`] per run.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub runs: Vec<RunArgs>,
    pub pause: Duration,
}

impl Suite {
    pub fn load(path: &Path, overrides: &SuiteArgs) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.into(), source })?;
        Self::parse(&text, path, overrides)
    }

    pub fn parse(text: &str, path: &Path, overrides: &SuiteArgs) -> Result<Self, LoadError> {
        let origin = path.display().to_string();
        let file: SuiteFile = toml::from_str(text).map_err(|e| LoadError::file(&origin, e))?;
        if file.runs.is_empty() {
            return Err(LoadError::file(&origin, "a suite needs at least one [[run]]"));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let resolve = |s: &str| -> String {
            if s.starts_with("builtin:") || Path::new(s).is_absolute() {
                s.to_string()
            } else {
                dir.join(s).display().to_string()
            }
        };
        let common = file.thresholds.iter().map(ThresholdEntry::parse).collect::<Result<Vec<_>, _>>()?;
        let mut runs = Vec::with_capacity(file.runs.len());
        for (i, r) in file.runs.into_iter().enumerate() {
            let here = |e: LoadError| LoadError::file(&origin, format!("run {}: {e}", i + 1));
            let mut thresholds = common.clone();
            for t in &r.thresholds {
                thresholds.push(t.parse().map_err(here)?);
            }
            let mut stages = Vec::new();
            let mut stage_thresholds = Vec::new();
            for s in &r.stages {
                let target: Level = s.target.text().parse().map_err(here)?;
                stages.push(Stage { duration: s.duration, target });
                stage_thresholds
                    .push(s.thresholds.iter().map(ThresholdEntry::parse).collect::<Result<Vec<_>, _>>().map_err(here)?);
            }
            let rate = r.rate.as_ref().map(|n| parse_rate(&n.text())).transpose().map_err(here)?;
            runs.push(RunArgs {
                url: overrides.url.clone().or_else(|| file.url.clone()),
                rate,
                connections: r.connections,
                duration: r.duration,
                profile: r.profile,
                scenario: r.scenario.as_deref().or(file.scenario.as_deref()).map(resolve),
                stages,
                thresholds,
                abort_on_fail: r.abort_on_fail,
                timeout: r.timeout.or(file.timeout),
                max_requests: r.max_requests,
                http2: r.http2.unwrap_or(file.http2),
                allow_remote: overrides.allow_remote,
                shard: None,
                threads: overrides.threads,
                think: r.think,
                expected_interval: r.expected_interval,
                max_backlog: r.max_backlog,
                method: None,
                headers: Vec::new(),
                body: None,
                seed: r.seed,
                name: Some(r.name.unwrap_or_else(|| format!("run{}", i + 1))),
                stage_thresholds,
                output: Default::default(),
            });
        }
        Ok(Suite {
            name: file
                .name
                .unwrap_or_else(|| path.file_stem().map_or("suite".into(), |s| s.to_string_lossy().into_owned())),
            runs,
            pause: file.pause.unwrap_or(Duration::from_secs(1)),
        })
    }

    /// Validates every run before the first one starts.
    pub fn specs(&self) -> Result<Vec<RunSpec>, LoadError> {
        self.runs
            .iter()
            .map(|a| {
                RunSpec::from_args(a)
                    .map_err(|e| LoadError::invalid(format!("suite run `{}`: {e}", a.name.as_deref().unwrap_or("?"))))
            })
            .collect()
    }
}

/// Runs every run of `suite` in order; stops early on Ctrl-C.
pub fn execute(suite: &Suite, console: &Console) -> Result<SuiteReport, LoadError> {
    let specs = suite.specs()?;
    let started_at = chrono::Utc::now();
    let began = std::time::Instant::now();
    let mut runs: Vec<Report> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(suite.pause);
        }
        console.note(&format!("suite {}: run {}/{}: {}", suite.name, i + 1, specs.len(), spec.name));
        let report = super::execute(spec, console)?;
        let interrupted = report.interrupted;
        runs.push(report);
        if interrupted {
            break;
        }
    }
    let exit_code = runs.iter().map(|r| r.exit_code).find(|c| *c != exit::OK).unwrap_or(exit::OK);
    Ok(SuiteReport {
        schema: SCHEMA.into(),
        kind: "suite".into(),
        tool: tool(),
        name: suite.name.clone(),
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        duration_s: began.elapsed().as_secs_f64(),
        passed: runs.iter().all(|r| r.passed),
        runs,
        exit_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides() -> SuiteArgs {
        SuiteArgs {
            file: "perf.toml".into(),
            url: None,
            allow_remote: false,
            threads: Some(1),
            output: Default::default(),
        }
    }

    #[test]
    fn parses_runs_stages_and_thresholds() {
        let text = r#"
            name = "nightly"
            url = "http://127.0.0.1:9/"
            thresholds = ["error_rate < 1%"]
            pause = "0s"

            [[run]]
            name = "smoke"
            profile = "smoke"
            duration = "5s"

            [[run]]
            name = "ramp"
            rate = "50/s"
            thresholds = ["p99 < 1s"]
            [[run.stage]]
            duration = "2s"
            target = "20/s"
            [[run.stage]]
            duration = "3s"
            target = "50/s"
            thresholds = [{ expr = "p95 < 300ms", abort = true }]
        "#;
        let suite = Suite::parse(text, Path::new("/tmp/perf.toml"), &overrides()).expect("parses");
        assert_eq!(suite.name, "nightly");
        assert_eq!(suite.runs.len(), 2);
        assert_eq!(suite.runs[0].thresholds.len(), 1);
        assert_eq!(suite.runs[1].thresholds.len(), 2);
        assert_eq!(suite.runs[1].stages.len(), 2);
        assert!(suite.runs[1].stage_thresholds[1][0].abort);
        let specs = suite.specs().expect("valid");
        assert!(specs[1].model.is_open());
        assert_eq!(specs[1].stage_thresholds[1].len(), 1);
        assert_eq!(specs[0].shape.duration(), Duration::from_secs(5));
    }

    #[test]
    fn refuses_bad_suites() {
        let o = overrides();
        assert!(Suite::parse("url = \"http://127.0.0.1:9/\"\nrun = []", Path::new("s.toml"), &o).is_err());
        let bad_stage = "[[run]]\n[[run.stage]]\nduration = \"1s\"\ntarget = \"lots\"";
        assert!(Suite::parse(bad_stage, Path::new("s.toml"), &o).is_err());
    }
}
