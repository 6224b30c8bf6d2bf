//! [`build`]: a finished run's outcome → its [`Report`]; [`Figures`], the
//! threshold view over per-kind histograms that merging reuses.

use std::collections::BTreeMap;

use super::{
    exit, tool, Abort, ByteCounts, ClientReport, Connections, Histograms, KindHistograms, KindReport, ModelInfo,
    Report, Requests, ServerTimingReport, ShardInfo, StageReport, StageShape, TargetInfo, ThresholdResult,
    HISTOGRAM_ENCODING, SCHEMA,
};
use crate::load::collector::Tally;
use crate::load::engine::RunOutcome;
use crate::load::error::LoadError;
use crate::load::hist::{self, Hist, LatencySummary};
use crate::load::saturation::{self, BUSY_THREAD, LATE_SCHEDULER_MS};
use crate::load::spec::{Model, RunSpec};
use crate::load::stats::{ErrorCounts, ThreadStats};
use crate::load::threshold::{exit_code_for, Metric, Observe, Threshold};

/// Figures recomputable from histograms and counters: shared by [`build`] and merging.
pub struct Figures<'a> {
    pub kinds: &'a [(String, crate::load::stats::KindStats)],
    pub scheduled: u64,
    pub missed: u64,
    pub seconds: f64,
}

impl Figures<'_> {
    fn kind(&self, name: Option<&str>) -> Option<Vec<&crate::load::stats::KindStats>> {
        match name {
            None => Some(self.kinds.iter().map(|(_, k)| k).collect()),
            Some(n) => self.kinds.iter().find(|(kn, _)| kn == n).map(|(_, k)| vec![k]),
        }
    }

    fn latency(&self, name: Option<&str>) -> Option<Hist> {
        let mut h = hist::precise();
        for k in self.kind(name)? {
            hist::add(&mut h, &k.latency);
        }
        Some(h)
    }
}

impl Observe for Figures<'_> {
    fn latency_ms(&self, kind: Option<&str>, metric: Metric) -> Option<f64> {
        let h = self.latency(kind)?;
        if h.is_empty() {
            return None;
        }
        Some(match metric {
            Metric::Percentile(p) => hist::percentile_ms(&h, p)?,
            Metric::Mean => h.mean() / 1000.0,
            Metric::Min => h.min() as f64 / 1000.0,
            Metric::Max => h.max() as f64 / 1000.0,
            _ => return None,
        })
    }
    fn finished(&self, kind: Option<&str>) -> Option<u64> {
        Some(self.kind(kind)?.iter().map(|k| k.ok + k.errors.total()).sum())
    }
    fn completed(&self, kind: Option<&str>) -> Option<u64> {
        Some(self.kind(kind)?.iter().map(|k| k.completed).sum())
    }
    fn errors(&self, kind: Option<&str>) -> Option<u64> {
        Some(self.kind(kind)?.iter().map(|k| k.errors.total()).sum())
    }
    fn missed(&self) -> u64 {
        self.missed
    }
    fn scheduled(&self) -> u64 {
        self.scheduled
    }
    fn seconds(&self) -> f64 {
        self.seconds
    }
}

fn requests_of(kinds: &[&crate::load::stats::KindStats], scheduled: u64, missed: u64) -> Requests {
    let sent: u64 = kinds.iter().map(|k| k.sent).sum();
    let ok: u64 = kinds.iter().map(|k| k.ok).sum();
    let errors: u64 = kinds.iter().map(|k| k.errors.total()).sum();
    Requests {
        scheduled,
        sent,
        completed: kinds.iter().map(|k| k.completed).sum(),
        ok,
        errors,
        missed,
        cancelled: sent.saturating_sub(ok + errors) + scheduled.saturating_sub(sent + missed),
    }
}

/// Each request kind's corrected and raw latency histograms, encoded for the report.
pub(crate) fn kind_histograms(
    kinds: &[(String, crate::load::stats::KindStats)],
) -> Result<BTreeMap<String, KindHistograms>, LoadError> {
    kinds
        .iter()
        .map(|(n, k)| {
            Ok((
                n.clone(),
                KindHistograms { latency: hist::encode(&k.latency)?, latency_uncorrected: hist::encode(&k.raw)? },
            ))
        })
        .collect()
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn per_second(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

/// Evaluates `t` and returns its result row.
fn judge(t: &Threshold, o: &dyn Observe, scope: String, code: u8, aborted_by: Option<&Abort>) -> ThresholdResult {
    let (mut passed, observed) = t.evaluate(o);
    let aborted = aborted_by.is_some_and(|a| {
        a.threshold.as_deref() == Some(t.expr.as_str()) && {
            let stage_scope = a.stage.map_or("run".to_string(), |s| format!("stage {}", s + 1));
            stage_scope == scope
        }
    });
    if aborted {
        passed = false;
    }
    ThresholdResult {
        expr: t.expr.clone(),
        scope,
        kind: t.kind.clone(),
        passed,
        observed,
        limit: t.limit,
        unit: t.metric.unit().to_string(),
        exit_code: code,
        aborted,
    }
}

/// The report of a finished run.
pub fn build(spec: &RunSpec, outcome: RunOutcome) -> Result<Report, LoadError> {
    let RunOutcome { started_at, elapsed, stats, rows, stages, aborted, interrupted, breakpoint, .. } = &outcome;
    let seconds = elapsed.as_secs_f64();
    let named: Vec<(String, crate::load::stats::KindStats)> =
        spec.scenario.requests.iter().map(|r| r.name.clone()).zip(stats.kinds.iter().cloned()).collect();
    let figures = Figures { kinds: &named, scheduled: stats.scheduled, missed: stats.missed, seconds };
    let all: Vec<&crate::load::stats::KindStats> = named.iter().map(|(_, k)| k).collect();
    let requests = requests_of(&all, stats.scheduled, stats.missed);
    let mut latency = hist::precise();
    let mut raw = hist::precise();
    let mut errors = ErrorCounts::default();
    for k in &all {
        hist::add(&mut latency, &k.latency);
        hist::add(&mut raw, &k.raw);
        errors.merge(&k.errors);
    }

    let kinds = spec
        .scenario
        .requests
        .iter()
        .zip(&stats.kinds)
        .map(|(r, k)| {
            let req = requests_of(&[k], k.sent, 0);
            KindReport {
                name: r.name.clone(),
                method: r.method.to_string(),
                path: if spec.scenario.url_path_only {
                    spec.target.path_and_query.clone()
                } else {
                    spec.target.join(&r.path)
                },
                rps: per_second(k.completed, seconds),
                requests: req,
                error_rate: ratio(req.errors, req.ok + req.errors),
                latency_ms: LatencySummary::of(&k.latency),
                latency_uncorrected_ms: LatencySummary::of(&k.raw),
                errors: k.errors,
                body_bytes_received: k.body_bytes,
            }
        })
        .collect();

    let mut results = Vec::new();
    for (i, t) in spec.thresholds.iter().enumerate() {
        results.push(judge(t, &figures, "run".into(), exit_code_for(i), aborted.as_ref()));
    }
    let mut code_index = spec.thresholds.len();
    let bounds = spec.shape.stage_bounds();
    let mut stage_reports = Vec::new();
    for (i, ((start_s, end_s), tally)) in bounds.iter().zip(stages).enumerate() {
        let mut stage_results = Vec::new();
        for t in &spec.stage_thresholds[i] {
            let scoped = if t.kind.is_some() {
                // Per-kind figures are not kept per stage; evaluated on the whole run.
                judge(t, &figures, format!("stage {}", i + 1), exit_code_for(code_index), aborted.as_ref())
            } else {
                judge(t, tally, format!("stage {}", i + 1), exit_code_for(code_index), aborted.as_ref())
            };
            stage_results.push(scoped);
            code_index += 1;
        }
        results.extend(stage_results.iter().cloned());
        stage_reports.push(stage_report(i, *start_s, *end_s, spec.shape.stages[i].1, tally, stage_results));
    }

    let passed = results.iter().all(|r| r.passed);
    let exit_code = if *interrupted {
        exit::INTERRUPTED
    } else if spec.is_breakpoint() {
        exit::OK
    } else if let Some(first) = results.iter().find(|r| !r.passed) {
        first.exit_code
    } else if requests.ok == 0 {
        exit::NO_SUCCESS
    } else {
        exit::OK
    };

    let server_timing = stats.server_timing.as_ref().map(|st| ServerTimingReport {
        responses: st.responses,
        metrics: st.metrics.iter().map(|(n, h)| (n.clone(), LatencySummary::of(h))).collect(),
        breakdown: [("network", &st.network), ("queueing", &st.queueing), ("service", &st.service)]
            .into_iter()
            .map(|(n, h)| (n.to_string(), LatencySummary::of(h)))
            .collect(),
    });
    let open = spec.model.is_open();
    let client = client_report(spec, &outcome, open);
    let histograms = Histograms {
        encoding: HISTOGRAM_ENCODING.into(),
        unit: "us".into(),
        latency: hist::encode(&latency)?,
        latency_uncorrected: hist::encode(&raw)?,
        kinds: kind_histograms(&named)?,
        server_timing: match &stats.server_timing {
            Some(st) => {
                st.metrics.iter().map(|(n, h)| Ok((n.clone(), hist::encode(h)?))).collect::<Result<_, LoadError>>()?
            }
            None => BTreeMap::new(),
        },
        breakdown: match &stats.server_timing {
            Some(st) => [("network", &st.network), ("queueing", &st.queueing), ("service", &st.service)]
                .into_iter()
                .map(|(n, h)| Ok((n.to_string(), hist::encode(h)?)))
                .collect::<Result<_, LoadError>>()?,
            None => BTreeMap::new(),
        },
        scheduler_lag: if open { Some(hist::encode(&stats.scheduler_lag)?) } else { None },
        send_delay: if open { Some(hist::encode(&stats.send_delay)?) } else { None },
    };
    let mut timeline = rows.clone();
    if let Some(last) = timeline.last_mut() {
        // The last second is usually partial.
        let covered = seconds - f64::from(last.t);
        if covered > 0.0 && covered < 1.0 {
            last.rps = last.completed as f64 / covered;
        }
    }

    Ok(Report {
        schema: SCHEMA.into(),
        kind: "run".into(),
        tool: tool(),
        name: spec.name.clone(),
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        duration_s: seconds,
        target: TargetInfo { url: spec.target.url.clone(), http2: spec.http2 },
        scenario: spec.scenario.name.clone(),
        model: model_info(spec, &outcome),
        shard: (spec.shard.count > 1).then_some(ShardInfo { index: spec.shard.index + 1, count: spec.shard.count }),
        merged_from: None,
        rps: per_second(requests.completed, seconds),
        requests,
        error_rate: ratio(requests.errors, requests.ok + requests.errors),
        latency_ms: LatencySummary::of(&latency),
        latency_uncorrected_ms: LatencySummary::of(&raw),
        latency_distribution_ms: hist::distribution(&latency).into_iter().map(|(p, v)| [p, v]).collect(),
        kinds,
        timeline,
        errors,
        error_samples: stats.error_samples.clone(),
        bytes: ByteCounts {
            sent: stats.bytes_sent,
            received: stats.bytes_received,
            body_received: all.iter().map(|k| k.body_bytes).sum(),
        },
        connections: Connections {
            opened: stats.connections_opened,
            requests_per_connection: ratio(requests.sent, stats.connections_opened),
            http2: spec.http2,
        },
        server_timing,
        client,
        stages: stage_reports,
        thresholds: results,
        passed,
        aborted: aborted.clone(),
        interrupted: *interrupted,
        breakpoint: breakpoint.clone(),
        exit_code,
        histograms,
    })
}

fn stage_report(
    i: usize,
    start_s: f64,
    end_s: f64,
    target: f64,
    t: &Tally,
    thresholds: Vec<ThresholdResult>,
) -> StageReport {
    StageReport {
        index: i + 1,
        start_s,
        end_s,
        target,
        requests: Requests {
            scheduled: t.sent + t.missed,
            sent: t.sent,
            completed: t.completed,
            ok: t.ok,
            errors: t.errors,
            missed: t.missed,
            cancelled: 0,
        },
        rps: per_second(t.completed, t.seconds),
        error_rate: ratio(t.errors, t.ok + t.errors),
        latency_ms: LatencySummary::of(&t.latency),
        thresholds,
    }
}

fn model_info(spec: &RunSpec, outcome: &RunOutcome) -> ModelInfo {
    let (kind, think_ms, max_connections, max_backlog) = match &spec.model {
        Model::Closed { think, .. } => ("closed", Some(think.as_secs_f64() * 1000.0), None, None),
        Model::Open { max_connections, max_backlog } => ("open", None, Some(*max_connections), Some(*max_backlog)),
    };
    ModelInfo {
        kind: kind.into(),
        profile: spec.profile.map(|p| p.name().to_string()),
        start: spec.shape.start,
        stages: spec.shape.stages.iter().map(|(d, t)| StageShape { duration_s: d.as_secs_f64(), target: *t }).collect(),
        think_ms,
        expected_interval_ms: outcome.expected_interval.map(|d| d.as_secs_f64() * 1000.0),
        max_connections,
        max_backlog,
        timeout_ms: spec.timeout.as_secs_f64() * 1000.0,
        max_requests: spec.max_requests,
        threads: outcome.threads,
    }
}

fn client_report(spec: &RunSpec, outcome: &RunOutcome, open: bool) -> ClientReport {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let seconds = outcome.elapsed.as_secs_f64();
    let busiest = outcome
        .thread_cpu
        .iter()
        .filter_map(|(cpu, wall)| cpu.map(|c| c.total().as_secs_f64() / wall.as_secs_f64().max(1e-9)))
        .fold(None, |acc: Option<f64>, v| Some(acc.map_or(v, |a| a.max(v))));
    let stats: &ThreadStats = &outcome.stats;
    let lag = (open && !stats.scheduler_lag.is_empty()).then(|| LatencySummary::of(&stats.scheduler_lag));
    let delay = (open && !stats.send_delay.is_empty()).then(|| LatencySummary::of(&stats.send_delay));
    let mut warnings = Vec::new();
    let mut saturated = false;
    if let Some(b) = busiest.filter(|b| *b >= BUSY_THREAD) {
        saturated = true;
        warnings.push(format!(
            "a generator thread was CPU-bound ({:.0}% busy): figures may measure the load tester, not the server; \
             add --threads or cores, or run shards (--shard) on more machines",
            b * 100.0
        ));
    }
    let cores_used = outcome.process_cpu.map(|c| c.total().as_secs_f64() / seconds.max(1e-9));
    let usable = outcome.threads.min(cores) as f64;
    if let Some(used) = cores_used.filter(|u| *u >= BUSY_THREAD * usable && !saturated) {
        saturated = true;
        warnings.push(format!(
            "the load generator kept {used:.2} of its {usable:.0} usable cores busy: figures may measure the tool, not the server"
        ));
    }
    if let Some(l) = lag.filter(|l| l.p99 > LATE_SCHEDULER_MS) {
        saturated = true;
        warnings.push(format!(
            "the open-model scheduler fell behind (p99 lag {:.1} ms): arrivals went out late; latency still counts from the intended time",
            l.p99
        ));
    }
    if stats.missed > 0 {
        warnings.push(format!(
            "{} arrivals were missed: the backlog of {} was full (all connections busy); raise --connections or --max-backlog, \
             or treat it as the server's limit",
            stats.missed,
            match &spec.model {
                Model::Open { max_backlog, .. } => *max_backlog,
                Model::Closed { .. } => 0,
            }
        ));
    }
    if let (Some(d), Some(l)) = (&delay, &lag) {
        if d.p99 > 10.0 * l.p99.max(1.0) && stats.missed == 0 {
            warnings.push(format!(
                "arrivals waited for a free connection (p99 {:.1} ms before sending): raise --connections if the server can take more",
                d.p99
            ));
        }
    }
    let req = requests_of(&stats.kinds.iter().collect::<Vec<_>>(), stats.scheduled, stats.missed);
    if req.cancelled > 0 {
        warnings
            .push(format!("{} requests were still in flight or queued when the run ended (cancelled)", req.cancelled));
    }
    ClientReport {
        threads: outcome.threads,
        cores,
        cpu_user_s: outcome.process_cpu.map(|c| c.user.as_secs_f64()),
        cpu_system_s: outcome.process_cpu.map(|c| c.system.as_secs_f64()),
        cpu_cores_used: cores_used,
        busiest_thread_cpu: busiest,
        peak_rss_bytes: saturation::peak_rss_bytes(),
        scheduler_lag_ms: lag,
        send_delay_ms: delay,
        saturated,
        warnings,
    }
}
