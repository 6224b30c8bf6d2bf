//! Command-line definitions for `osprey load`.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::error::LoadError;
use super::threshold::Threshold;
use super::workload::{parse_rate, Profile, Stage};

/// `osprey load`: HTTP load testing with open and closed workload models.
///
/// Without a subcommand it runs one load test: closed model with
/// `--connections` virtual users, or open model at `--rate` arrivals per second.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct LoadCommand {
    #[command(subcommand)]
    pub command: Option<LoadSubcommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum LoadSubcommand {
    /// Run the runs of a suite file in sequence into one report.
    Suite(SuiteArgs),
    /// Merge reports written by `--shard i/n` generators into one.
    Merge(MergeArgs),
    /// Print the differences between two reports.
    Compare(CompareArgs),
}

/// One load test.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
    /// Target URL: http:// only, loopback unless --allow-remote.
    #[arg(long)]
    pub url: Option<String>,
    /// Open model: arrivals per second (`400`, `400/s`, `24000/m`), the peak for ramping profiles.
    #[arg(long, value_parser = parse_rate_arg)]
    pub rate: Option<f64>,
    /// Closed model: virtual users, one connection each (default 10; a profile's peak).
    /// Open model: most connections (default 256).
    #[arg(long, short = 'c')]
    pub connections: Option<u32>,
    /// Length of the run (default 10 s, or the profile's).
    #[arg(long, short = 'd', value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// A named workload shape.
    #[arg(long, value_enum)]
    pub profile: Option<Profile>,
    /// Scenario TOML file, or `builtin:osprey`.
    #[arg(long)]
    pub scenario: Option<String>,
    /// A stage, repeatable: ramp to N VUs (`30s:50`) or to a rate (`1m:200/s`) over the duration.
    #[arg(long = "stage", value_name = "DURATION:TARGET", value_parser = parse_stage)]
    pub stages: Vec<Stage>,
    /// A pass/fail criterion, repeatable: `p95 < 300ms`, `error_rate < 1%`, `rps > 400`.
    #[arg(long = "threshold", value_name = "EXPR", value_parser = parse_threshold)]
    pub thresholds: Vec<Threshold>,
    /// Stop the run as soon as a --threshold fails (evaluated every second).
    #[arg(long)]
    pub abort_on_fail: bool,
    /// Per-request timeout (default 10 s); also bounds the drain after the run.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Stop after this many requests (default and ceiling: see docs/load.md).
    #[arg(long)]
    pub max_requests: Option<u64>,
    /// Speak HTTP/2 (prior knowledge, h2c) over one multiplexed connection per thread.
    #[arg(long)]
    pub http2: bool,
    /// Allow a target that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Run as generator I of N (`2/4`): send 1/N of the load and write a mergeable report.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Generator threads (default: available cores, at most one per connection).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Closed model: pause between a response and the user's next request.
    #[arg(long, value_parser = parse_duration)]
    pub think: Option<Duration>,
    /// Closed model: expected interval between a user's requests, for the corrected
    /// figures (default: think time + median latency).
    #[arg(long, value_parser = parse_duration)]
    pub expected_interval: Option<Duration>,
    /// Open model: arrivals that may wait for a free connection before further ones are missed (default 10000).
    #[arg(long)]
    pub max_backlog: Option<usize>,
    /// Method of the request when no --scenario is given (default GET, POST with --body).
    #[arg(long, short = 'X')]
    pub method: Option<String>,
    /// A request header (`NAME: VALUE`), repeatable, when no --scenario is given.
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// Request body when no --scenario is given (JSON; `{{@seq}}` is a request counter).
    #[arg(long)]
    pub body: Option<String>,
    /// Seed for request selection (default: fixed, so runs are repeatable).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Name of the run in reports.
    #[arg(long)]
    pub name: Option<String>,
    /// Thresholds per stage (suite files only).
    #[arg(skip)]
    pub stage_thresholds: Vec<Vec<Threshold>>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Where results go.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutputArgs {
    /// Write the JSON report (schema `osprey.load/v1`).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Write the per-second timeline as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Print the differences from an earlier JSON report.
    #[arg(long)]
    pub compare: Option<PathBuf>,
    /// No live view or periodic lines; only the summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SuiteArgs {
    /// Suite TOML file.
    pub file: PathBuf,
    /// Overrides the suite's `url`.
    #[arg(long)]
    pub url: Option<String>,
    /// Allow a target that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Generator threads for every run (default: available cores).
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// Shard reports to merge.
    #[arg(required = true, num_args = 2..)]
    pub inputs: Vec<PathBuf>,
    /// Where to write the merged JSON report.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Also write the merged report as HTML.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Also write the merged timeline as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// The earlier report.
    pub baseline: PathBuf,
    /// The later report.
    pub current: PathBuf,
}

/// `--shard i/n`: this generator is number `index + 1` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Zero-based.
    pub index: u32,
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl FromStr for Shard {
    type Err = LoadError;

    fn from_str(s: &str) -> Result<Self, LoadError> {
        let bad = || LoadError::invalid(format!("--shard `{s}` must be I/N with 1 <= I <= N <= 1024"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (i, n): (u32, u32) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if i == 0 || i > n || n > 1024 {
            return Err(bad());
        }
        Ok(Shard { index: i - 1, count: n })
    }
}

fn parse_rate_arg(s: &str) -> Result<f64, LoadError> {
    parse_rate(s)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e} (examples: 30s, 1m, 1h30m, 250ms)"))
}

fn parse_stage(s: &str) -> Result<Stage, LoadError> {
    s.parse()
}

fn parse_threshold(s: &str) -> Result<Threshold, LoadError> {
    Threshold::parse(s)
}

fn parse_shard(s: &str) -> Result<Shard, LoadError> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadCommand,
    }

    #[test]
    fn flags_and_subcommands_parse() {
        let cli = Cli::try_parse_from([
            "osprey-load",
            "--url",
            "http://127.0.0.1:1/",
            "--rate",
            "200/s",
            "--stage",
            "30s:10/s",
            "--threshold",
            "p95 < 300ms",
            "--shard",
            "2/4",
            "-d",
            "1m",
        ])
        .expect("parses");
        let run = &cli.load.run;
        assert_eq!(run.rate, Some(200.0));
        assert_eq!(run.stages.len(), 1);
        assert_eq!(run.thresholds[0].limit, 300.0);
        assert_eq!(run.shard, Some(Shard { index: 1, count: 4 }));
        assert_eq!(run.duration, Some(Duration::from_secs(60)));

        let cli = Cli::try_parse_from(["osprey-load", "merge", "a.json", "b.json", "-o", "m.json"]).expect("parses");
        assert!(matches!(cli.load.command, Some(LoadSubcommand::Merge(ref m)) if m.inputs.len() == 2));
        let cli = Cli::try_parse_from(["osprey-load", "suite", "perf.toml", "--json", "r.json"]).expect("parses");
        assert!(matches!(cli.load.command, Some(LoadSubcommand::Suite(_))));
        assert!(Cli::try_parse_from(["osprey-load", "--threshold", "p95 300ms"]).is_err());
        assert!(Cli::try_parse_from(["osprey-load", "--shard", "5/4"]).is_err());
    }
}
