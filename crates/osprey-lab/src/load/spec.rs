//! [`RunSpec`]: the validated plan of one run, built once from flags (or a
//! suite entry). Every default and every safety ceiling is applied here.

use std::time::Duration;

use super::cli::{RunArgs, Shard};
use super::error::LoadError;
use super::scenario::Scenario;
use super::target::Target;
use super::threshold::Threshold;
use super::workload::{Profile, Shape, MAX_RATE, MAX_VUS};

/// Run length without `--duration` or a profile.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// Closed-model virtual users without `--connections`.
pub const DEFAULT_VUS: u32 = 10;
/// Open-model connection ceiling without `--connections`.
pub const DEFAULT_OPEN_CONNECTIONS: u32 = 256;
/// Open-model backlog without `--max-backlog`.
pub const DEFAULT_MAX_BACKLOG: usize = 10_000;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// Requests per run without `--max-requests`.
pub const DEFAULT_MAX_REQUESTS: u64 = 100_000_000;
/// Ceiling on `--max-requests`.
pub const MAX_REQUESTS: u64 = 1_000_000_000;
/// SLO of the breakpoint profile when no threshold is given.
pub const BREAKPOINT_DEFAULT_SLO: [&str; 2] = ["p95 < 500ms", "error_rate < 1%"];

/// Which workload model a run uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// Virtual users that each wait for their response.
    Closed {
        think: Duration,
        /// For the corrected figures; `None`: think time + median latency.
        expected_interval: Option<Duration>,
    },
    /// Arrivals on a schedule, whether or not earlier requests returned.
    Open { max_connections: u32, max_backlog: usize },
}

impl Model {
    pub fn is_open(&self) -> bool {
        matches!(self, Model::Open { .. })
    }
}

/// A validated run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub name: String,
    pub target: Target,
    pub scenario: Scenario,
    pub model: Model,
    /// VUs (closed) or arrivals per second (open) over time, for the whole run (all shards).
    pub shape: Shape,
    pub profile: Option<Profile>,
    /// Run-wide thresholds: the scenario's, then the command line's.
    pub thresholds: Vec<Threshold>,
    /// Thresholds per stage (same length as `shape.stages`).
    pub stage_thresholds: Vec<Vec<Threshold>>,
    pub timeout: Duration,
    /// For the whole run (all shards).
    pub max_requests: u64,
    pub http2: bool,
    pub threads: usize,
    pub shard: Shard,
    pub seed: u64,
}

impl RunSpec {
    pub fn from_args(args: &RunArgs) -> Result<Self, LoadError> {
        let url = args.url.as_deref().ok_or_else(|| LoadError::invalid("--url is required"))?;
        let target = Target::resolve(url, args.allow_remote)?;
        let scenario = match &args.scenario {
            Some(s) => {
                if args.method.is_some() || !args.headers.is_empty() || args.body.is_some() {
                    return Err(LoadError::invalid(
                        "--method, --header and --body describe the request when there is no --scenario",
                    ));
                }
                Scenario::load(s)?
            }
            None => Scenario::single(args.method.as_deref(), &args.headers, args.body.as_deref())?,
        };
        let (shape, open) = resolve_shape(args)?;
        let max_duration = args.profile.map_or(super::workload::MAX_DURATION, Profile::max_duration);
        if shape.duration() > max_duration {
            return Err(LoadError::invalid(format!(
                "the run would last {}, over the {} ceiling{}",
                humantime::format_duration(shape.duration()),
                humantime::format_duration(max_duration),
                if args.profile == Some(Profile::Endurance) {
                    ""
                } else {
                    " (use --profile endurance for longer runs)"
                }
            )));
        }
        if shape.duration().is_zero() {
            return Err(LoadError::invalid("the run has a zero duration"));
        }
        let model = if open {
            let max_connections = args.connections.unwrap_or(DEFAULT_OPEN_CONNECTIONS);
            if max_connections == 0 || max_connections > MAX_VUS {
                return Err(LoadError::invalid(format!("--connections must be in 1..={MAX_VUS}")));
            }
            let max_backlog = args.max_backlog.unwrap_or(DEFAULT_MAX_BACKLOG);
            if max_backlog > 10_000_000 {
                return Err(LoadError::invalid("--max-backlog must be at most 10000000"));
            }
            if args.think.is_some() {
                return Err(LoadError::invalid("--think applies to the closed model (no --rate)"));
            }
            Model::Open { max_connections, max_backlog }
        } else {
            if args.max_backlog.is_some() {
                return Err(LoadError::invalid("--max-backlog applies to the open model (--rate)"));
            }
            Model::Closed {
                think: args.think.or(scenario.think_time).unwrap_or_default(),
                expected_interval: args.expected_interval,
            }
        };
        let timeout = args.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() || timeout > MAX_TIMEOUT {
            return Err(LoadError::invalid("--timeout must be between 1ms and 10m"));
        }
        let max_requests = args.max_requests.unwrap_or(DEFAULT_MAX_REQUESTS);
        if max_requests == 0 || max_requests > MAX_REQUESTS {
            return Err(LoadError::invalid(format!("--max-requests must be in 1..={MAX_REQUESTS}")));
        }
        let shard = args.shard.unwrap_or_default();
        let mut thresholds = scenario.thresholds.clone();
        thresholds
            .extend(args.thresholds.iter().map(|t| Threshold { abort: t.abort || args.abort_on_fail, ..t.clone() }));
        if args.profile == Some(Profile::Breakpoint) && thresholds.is_empty() {
            for t in BREAKPOINT_DEFAULT_SLO {
                thresholds.push(Threshold::parse(t)?);
            }
        }
        let mut stage_thresholds = args.stage_thresholds.clone();
        if stage_thresholds.len() > shape.stages.len() {
            return Err(LoadError::invalid("stage thresholds are given for more stages than the run has"));
        }
        stage_thresholds.resize(shape.stages.len(), Vec::new());
        for t in thresholds.iter().chain(stage_thresholds.iter().flatten()) {
            if let Some(kind) = &t.kind {
                if !scenario.requests.iter().any(|r| &r.name == kind) {
                    return Err(LoadError::invalid(format!("threshold `{}` names no request of the scenario", t.expr)));
                }
            }
        }
        let units = match &model {
            Model::Closed { .. } => shard_share(shape.peak().round() as u64, shard).max(1),
            Model::Open { max_connections, .. } => u64::from(*max_connections),
        };
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let threads = args.threads.unwrap_or(cores);
        if threads == 0 || threads > 256 {
            return Err(LoadError::invalid("--threads must be in 1..=256"));
        }
        let threads = threads.min(usize::try_from(units).unwrap_or(usize::MAX)).max(1);
        let name = args.name.clone().unwrap_or_else(|| args.profile.map_or("load", Profile::name).to_string());
        Ok(RunSpec {
            name,
            target,
            scenario,
            model,
            shape,
            profile: args.profile,
            thresholds,
            stage_thresholds,
            timeout,
            max_requests,
            http2: args.http2,
            threads,
            shard,
            seed: args.seed.unwrap_or(0x05_9e_e7),
        })
    }

    /// Every threshold with its exit code: run-wide first, then per stage.
    pub fn all_thresholds(&self) -> impl Iterator<Item = (Option<usize>, &Threshold)> {
        self.thresholds
            .iter()
            .map(|t| (None, t))
            .chain(self.stage_thresholds.iter().enumerate().flat_map(|(i, ts)| ts.iter().map(move |t| (Some(i), t))))
    }

    /// The breakpoint profile searches for the rate at which an SLO breaks.
    pub fn is_breakpoint(&self) -> bool {
        self.profile == Some(Profile::Breakpoint)
    }
}

/// Items `g` of `0..total` with `g % count == index`.
pub fn shard_share(total: u64, shard: Shard) -> u64 {
    let (i, n) = (u64::from(shard.index), u64::from(shard.count));
    if total <= i {
        0
    } else {
        (total - i).div_ceil(n)
    }
}

/// The shape and whether it is the open model.
fn resolve_shape(args: &RunArgs) -> Result<(Shape, bool), LoadError> {
    if !args.stages.is_empty() {
        if args.profile.is_some() {
            return Err(LoadError::invalid("--stage and --profile are exclusive: stages are a custom profile"));
        }
        if args.duration.is_some() {
            return Err(LoadError::invalid("--duration does not apply to --stage runs: each stage has its own"));
        }
        let rates = args.stages.iter().filter(|s| s.target.is_rate()).count();
        if rates != 0 && rates != args.stages.len() {
            return Err(LoadError::invalid("stages must all be VUs (30s:10) or all rates (30s:100/s)"));
        }
        let open = rates != 0;
        if args.rate.is_some() && !open {
            return Err(LoadError::invalid("with --rate, write stage targets as rates (e.g. 30s:100/s)"));
        }
        let shape = Shape { start: 0.0, stages: args.stages.iter().map(|s| (s.duration, s.target.value())).collect() };
        check_peak(&shape, open)?;
        return Ok((shape, open));
    }
    let open = args.rate.is_some() || args.profile == Some(Profile::Breakpoint);
    let shape = match args.profile {
        Some(p) => {
            let peak = match (open, args.rate) {
                (true, Some(r)) => r,
                (true, None) => p.default_peak(),
                (false, _) => args.connections.map_or(p.default_peak(), f64::from),
            };
            p.shape(args.duration.unwrap_or(p.default_duration()), peak)
        }
        None => {
            let level = match args.rate {
                Some(r) => r,
                None => f64::from(args.connections.unwrap_or(DEFAULT_VUS)),
            };
            Shape::constant(level, args.duration.unwrap_or(DEFAULT_DURATION))
        }
    };
    check_peak(&shape, open)?;
    Ok((shape, open))
}

fn check_peak(shape: &Shape, open: bool) -> Result<(), LoadError> {
    let peak = shape.peak();
    if open {
        if peak <= 0.0 || peak > MAX_RATE {
            return Err(LoadError::invalid(format!("the arrival rate must peak in (0, {MAX_RATE}]/s")));
        }
    } else if peak < 1.0 || peak > f64::from(MAX_VUS) {
        return Err(LoadError::invalid(format!("virtual users must peak in 1..={MAX_VUS}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str) -> RunArgs {
        RunArgs { url: Some(url.into()), ..RunArgs::default() }
    }

    #[test]
    fn defaults_and_ceilings() {
        let spec = RunSpec::from_args(&args("http://127.0.0.1:9/")).expect("valid");
        assert_eq!(spec.shape, Shape::constant(10.0, DEFAULT_DURATION));
        assert!(!spec.model.is_open());
        assert_eq!(spec.max_requests, DEFAULT_MAX_REQUESTS);

        let mut a = args("http://127.0.0.1:9/");
        a.duration = Some(Duration::from_secs(7200));
        assert!(RunSpec::from_args(&a).is_err(), "2 h is over the ceiling");
        a.profile = Some(Profile::Endurance);
        assert!(RunSpec::from_args(&a).is_ok(), "endurance may run 2 h");
        a.max_requests = Some(MAX_REQUESTS + 1);
        assert!(RunSpec::from_args(&a).is_err());
    }

    #[test]
    fn rate_selects_the_open_model() {
        let mut a = args("http://127.0.0.1:9/");
        a.rate = Some(200.0);
        let spec = RunSpec::from_args(&a).expect("valid");
        assert!(matches!(spec.model, Model::Open { max_connections: DEFAULT_OPEN_CONNECTIONS, .. }));
        a.profile = Some(Profile::Spike);
        let spec = RunSpec::from_args(&a).expect("valid");
        assert_eq!(spec.shape.peak(), 200.0);

        let mut b = args("http://127.0.0.1:9/");
        b.profile = Some(Profile::Breakpoint);
        let spec = RunSpec::from_args(&b).expect("valid");
        assert!(spec.model.is_open());
        assert_eq!(spec.thresholds.len(), 2, "default SLO");
    }

    #[test]
    fn stages_must_agree() {
        let mut a = args("http://127.0.0.1:9/");
        a.stages = vec!["10s:5".parse().expect("stage"), "10s:5/s".parse().expect("stage")];
        assert!(RunSpec::from_args(&a).is_err());
        a.stages = vec!["10s:5/s".parse().expect("stage"), "10s:50/s".parse().expect("stage")];
        let spec = RunSpec::from_args(&a).expect("valid");
        assert!(spec.model.is_open());
        assert_eq!(spec.shape.duration(), Duration::from_secs(20));
    }

    #[test]
    fn remote_targets_are_refused() {
        let err = RunSpec::from_args(&args("http://192.0.2.7:80/")).expect_err("refused");
        assert!(matches!(err, LoadError::RemoteTarget { .. }));
    }

    #[test]
    fn shard_shares_add_up() {
        for total in [0u64, 1, 7, 10, 101] {
            let sum: u64 = (0..3).map(|i| shard_share(total, Shard { index: i, count: 3 })).sum();
            assert_eq!(sum, total);
        }
    }
}
