//! `osprey load merge`: one report from the reports of `--shard i/n`
//! generators that ran at the same time.
//!
//! Histograms are decoded and added, so every run-wide percentile of the
//! merged report is exactly what one generator recording everything would
//! have reported. Counters add up. Two things are approximations, and the
//! docs say so: per-second percentiles in the timeline (count-weighted means
//! of the shards'; maxima are exact) and per-stage latency (the worst shard's).

use std::collections::BTreeMap;

use super::error::LoadError;
use super::hist::{self, Hist, LatencySummary};
use super::report::{
    exit, ClientReport, Figures, Histograms, KindReport, Report, Requests, ServerTimingReport, StageReport,
    ThresholdResult, TimelineRow, HISTOGRAM_ENCODING,
};
use super::stats::{ErrorCounts, KindStats};
use super::threshold::Threshold;

/// Merges shard reports into one.
pub fn merge(reports: &[Report]) -> Result<Report, LoadError> {
    let first = reports.first().ok_or_else(|| LoadError::invalid("nothing to merge"))?;
    check_shards(reports)?;
    let mut out = first.clone();
    out.shard = None;
    out.merged_from = Some(reports.iter().map(|r| r.merged_from.unwrap_or(1)).sum());
    out.duration_s = reports.iter().map(|r| r.duration_s).fold(0.0, f64::max);

    // Per kind: histograms and counters.
    let mut names: Vec<String> = Vec::new();
    for r in reports {
        for k in &r.kinds {
            if !names.contains(&k.name) {
                names.push(k.name.clone());
            }
        }
    }
    let mut kinds: Vec<(String, KindStats)> = names.iter().map(|n| (n.clone(), KindStats::default())).collect();
    for r in reports {
        for k in &r.kinds {
            let h =
                r.histograms.kinds.get(&k.name).ok_or_else(|| {
                    LoadError::Report(format!("report `{}` has no histograms for `{}`", r.name, k.name))
                })?;
            let Some((_, into)) = kinds.iter_mut().find(|(n, _)| *n == k.name) else { continue };
            into.merge(&KindStats {
                latency: hist::decode(&h.latency)?,
                raw: hist::decode(&h.latency_uncorrected)?,
                sent: k.requests.sent,
                completed: k.requests.completed,
                ok: k.requests.ok,
                errors: k.errors,
                body_bytes: k.body_bytes_received,
            });
        }
    }
    let mut requests = Requests::default();
    for r in reports {
        let q = &r.requests;
        requests.scheduled += q.scheduled;
        requests.sent += q.sent;
        requests.completed += q.completed;
        requests.ok += q.ok;
        requests.errors += q.errors;
        requests.missed += q.missed;
        requests.cancelled += q.cancelled;
    }
    let (mut latency, mut raw) = (hist::precise(), hist::precise());
    let mut errors = ErrorCounts::default();
    for (_, k) in &kinds {
        hist::add(&mut latency, &k.latency);
        hist::add(&mut raw, &k.raw);
        errors.merge(&k.errors);
    }
    let seconds = out.duration_s;
    let rate = |n: u64| if seconds > 0.0 { n as f64 / seconds } else { 0.0 };
    out.requests = requests;
    out.rps = rate(requests.completed);
    out.error_rate = ratio(requests.errors, requests.ok + requests.errors);
    out.latency_ms = LatencySummary::of(&latency);
    out.latency_uncorrected_ms = LatencySummary::of(&raw);
    out.latency_distribution_ms = hist::distribution(&latency).into_iter().map(|(p, v)| [p, v]).collect();
    out.errors = errors;
    out.kinds = kinds
        .iter()
        .map(|(name, k)| {
            let template = reports.iter().flat_map(|r| r.kinds.iter()).find(|x| &x.name == name);
            let q = Requests {
                scheduled: k.sent,
                sent: k.sent,
                completed: k.completed,
                ok: k.ok,
                errors: k.errors.total(),
                missed: 0,
                cancelled: k.sent.saturating_sub(k.ok + k.errors.total()),
            };
            KindReport {
                name: name.clone(),
                method: template.map_or(String::new(), |t| t.method.clone()),
                path: template.map_or(String::new(), |t| t.path.clone()),
                rps: rate(k.completed),
                requests: q,
                error_rate: ratio(q.errors, q.ok + q.errors),
                latency_ms: LatencySummary::of(&k.latency),
                latency_uncorrected_ms: LatencySummary::of(&k.raw),
                errors: k.errors,
                body_bytes_received: k.body_bytes,
            }
        })
        .collect();
    out.timeline = merge_timelines(reports);
    out.error_samples = reports.iter().flat_map(|r| r.error_samples.iter().cloned()).fold(Vec::new(), |mut acc, s| {
        if acc.len() < 8 && !acc.contains(&s) {
            acc.push(s);
        }
        acc
    });
    out.bytes.sent = reports.iter().map(|r| r.bytes.sent).sum();
    out.bytes.received = reports.iter().map(|r| r.bytes.received).sum();
    out.bytes.body_received = reports.iter().map(|r| r.bytes.body_received).sum();
    out.connections.opened = reports.iter().map(|r| r.connections.opened).sum();
    out.connections.requests_per_connection = ratio(requests.sent, out.connections.opened);
    let (server_timing, st_hists, breakdown_hists) = merge_server_timing(reports)?;
    out.server_timing = server_timing;
    out.client = merge_client(reports, &mut out.histograms)?;
    out.stages = merge_stages(reports);
    out.aborted = reports.iter().find_map(|r| r.aborted.clone());
    out.interrupted = reports.iter().any(|r| r.interrupted);
    out.breakpoint = merge_breakpoints(reports);

    // Run-wide thresholds are re-evaluated on the merged figures; stage ones fail if any shard's failed.
    let figures = Figures { kinds: &kinds, scheduled: requests.scheduled, missed: requests.missed, seconds };
    let mut results: Vec<ThresholdResult> = Vec::new();
    for t in &first.thresholds {
        if t.scope == "run" {
            let th = Threshold::parse(&t.expr)?;
            let (passed, observed) = th.evaluate(&figures);
            let aborted = reports
                .iter()
                .any(|r| r.thresholds.iter().any(|x| x.expr == t.expr && x.scope == t.scope && x.aborted));
            results.push(ThresholdResult { passed: passed && !aborted, observed, aborted, ..t.clone() });
        } else {
            let all: Vec<&ThresholdResult> = reports
                .iter()
                .flat_map(|r| r.thresholds.iter())
                .filter(|x| x.expr == t.expr && x.scope == t.scope)
                .collect();
            let passed = all.iter().all(|x| x.passed);
            let observed = all
                .iter()
                .filter_map(|x| x.observed)
                .fold(None, |acc: Option<f64>, v| Some(acc.map_or(v, |a| a.max(v))));
            results.push(ThresholdResult { passed, observed, aborted: all.iter().any(|x| x.aborted), ..t.clone() });
        }
    }
    for s in &mut out.stages {
        let scope = format!("stage {}", s.index);
        s.thresholds = results.iter().filter(|r| r.scope == scope).cloned().collect();
    }
    out.passed = results.iter().all(|r| r.passed);
    out.exit_code = if out.interrupted {
        exit::INTERRUPTED
    } else if out.breakpoint.is_some() {
        exit::OK
    } else if let Some(f) = results.iter().find(|r| !r.passed) {
        f.exit_code
    } else if requests.ok == 0 {
        exit::NO_SUCCESS
    } else {
        exit::OK
    };
    out.thresholds = results;
    out.histograms = Histograms {
        encoding: HISTOGRAM_ENCODING.into(),
        unit: "us".into(),
        latency: hist::encode(&latency)?,
        latency_uncorrected: hist::encode(&raw)?,
        kinds: super::report::build::kind_histograms(&kinds)?,
        server_timing: st_hists,
        breakdown: breakdown_hists,
        scheduler_lag: out.histograms.scheduler_lag.take(),
        send_delay: out.histograms.send_delay.take(),
    };
    Ok(out)
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

fn check_shards(reports: &[Report]) -> Result<(), LoadError> {
    let mut seen = Vec::new();
    for r in reports {
        if let Some(s) = r.shard {
            if seen.contains(&s.index) {
                return Err(LoadError::invalid(format!("shard {}/{} appears twice", s.index, s.count)));
            }
            seen.push(s.index);
        }
        if r.scenario != reports[0].scenario {
            return Err(LoadError::invalid(format!(
                "reports ran different scenarios (`{}` and `{}`)",
                reports[0].scenario, r.scenario
            )));
        }
    }
    Ok(())
}

fn merge_timelines(reports: &[Report]) -> Vec<TimelineRow> {
    let mut rows: BTreeMap<u32, (TimelineRow, [f64; 4])> = BTreeMap::new();
    for r in reports {
        for row in &r.timeline {
            let (acc, weighted) = rows
                .entry(row.t)
                .or_insert_with(|| (TimelineRow { t: row.t, target: row.target, ..TimelineRow::default() }, [0.0; 4]));
            acc.sent += row.sent;
            acc.completed += row.completed;
            acc.ok += row.ok;
            acc.errors += row.errors;
            acc.missed += row.missed;
            acc.rps += row.rps;
            acc.bytes_sent += row.bytes_sent;
            acc.bytes_received += row.bytes_received;
            acc.max_ms = acc.max_ms.max(row.max_ms);
            let w = row.completed as f64;
            for (slot, v) in weighted.iter_mut().zip([row.p50_ms, row.p90_ms, row.p95_ms, row.p99_ms]) {
                *slot += v * w;
            }
        }
    }
    rows.into_values()
        .map(|(mut row, w)| {
            if row.completed > 0 {
                let n = row.completed as f64;
                row.p50_ms = w[0] / n;
                row.p90_ms = w[1] / n;
                row.p95_ms = w[2] / n;
                row.p99_ms = w[3] / n;
            }
            row
        })
        .collect()
}

type StMerge = (Option<ServerTimingReport>, BTreeMap<String, String>, BTreeMap<String, String>);

fn merge_server_timing(reports: &[Report]) -> Result<StMerge, LoadError> {
    let mut metrics: BTreeMap<String, Hist> = BTreeMap::new();
    let mut breakdown: BTreeMap<String, Hist> = BTreeMap::new();
    let mut responses = 0;
    let mut any = false;
    for r in reports {
        if let Some(st) = &r.server_timing {
            any = true;
            responses += st.responses;
        }
        for (into, from) in [(&mut metrics, &r.histograms.server_timing), (&mut breakdown, &r.histograms.breakdown)] {
            for (name, enc) in from {
                let h = hist::decode(enc)?;
                hist::add(into.entry(name.clone()).or_insert_with(hist::precise), &h);
            }
        }
    }
    if !any {
        return Ok((None, BTreeMap::new(), BTreeMap::new()));
    }
    let report = ServerTimingReport {
        responses,
        metrics: metrics.iter().map(|(n, h)| (n.clone(), LatencySummary::of(h))).collect(),
        breakdown: breakdown.iter().map(|(n, h)| (n.clone(), LatencySummary::of(h))).collect(),
    };
    let encode = |m: &BTreeMap<String, Hist>| {
        m.iter().map(|(n, h)| Ok((n.clone(), hist::encode(h)?))).collect::<Result<BTreeMap<_, _>, LoadError>>()
    };
    Ok((Some(report), encode(&metrics)?, encode(&breakdown)?))
}

fn merge_client(reports: &[Report], histograms: &mut Histograms) -> Result<ClientReport, LoadError> {
    let sum = |f: fn(&ClientReport) -> Option<f64>| reports.iter().map(|r| f(&r.client)).sum::<Option<f64>>();
    let mut lag = None::<Hist>;
    let mut delay = None::<Hist>;
    for r in reports {
        for (slot, enc) in [(&mut lag, &r.histograms.scheduler_lag), (&mut delay, &r.histograms.send_delay)] {
            if let Some(e) = enc {
                let h = hist::decode(e)?;
                hist::add(slot.get_or_insert_with(hist::precise), &h);
            }
        }
    }
    histograms.scheduler_lag = lag.as_ref().map(hist::encode).transpose()?;
    histograms.send_delay = delay.as_ref().map(hist::encode).transpose()?;
    Ok(ClientReport {
        threads: reports.iter().map(|r| r.client.threads).sum(),
        cores: reports.iter().map(|r| r.client.cores).sum(),
        cpu_user_s: sum(|c| c.cpu_user_s),
        cpu_system_s: sum(|c| c.cpu_system_s),
        cpu_cores_used: sum(|c| c.cpu_cores_used),
        busiest_thread_cpu: reports
            .iter()
            .filter_map(|r| r.client.busiest_thread_cpu)
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v)))),
        peak_rss_bytes: reports.iter().filter_map(|r| r.client.peak_rss_bytes).max(),
        scheduler_lag_ms: lag.as_ref().map(LatencySummary::of),
        send_delay_ms: delay.as_ref().map(LatencySummary::of),
        saturated: reports.iter().any(|r| r.client.saturated),
        warnings: reports
            .iter()
            .flat_map(|r| {
                let who = r.shard.map_or(r.name.clone(), |s| format!("shard {}/{}", s.index, s.count));
                r.client.warnings.iter().map(move |w| format!("{who}: {w}"))
            })
            .collect(),
    })
}

fn merge_stages(reports: &[Report]) -> Vec<StageReport> {
    let mut out: Vec<StageReport> = reports[0].stages.clone();
    for s in &mut out {
        s.requests = Requests::default();
        s.latency_ms = LatencySummary::default();
    }
    for r in reports {
        for (into, s) in out.iter_mut().zip(&r.stages) {
            let q = &mut into.requests;
            q.scheduled += s.requests.scheduled;
            q.sent += s.requests.sent;
            q.completed += s.requests.completed;
            q.ok += s.requests.ok;
            q.errors += s.requests.errors;
            q.missed += s.requests.missed;
            let (a, b) = (&mut into.latency_ms, &s.latency_ms);
            a.count += b.count;
            a.min = if a.count == b.count { b.min } else { a.min.min(b.min) };
            a.mean = a.mean.max(b.mean);
            a.p50 = a.p50.max(b.p50);
            a.p90 = a.p90.max(b.p90);
            a.p95 = a.p95.max(b.p95);
            a.p99 = a.p99.max(b.p99);
            a.p999 = a.p999.max(b.p999);
            a.max = a.max.max(b.max);
        }
    }
    for s in &mut out {
        let secs = (s.end_s - s.start_s).max(1e-9);
        s.rps = s.requests.completed as f64 / secs;
        s.error_rate = ratio(s.requests.errors, s.requests.ok + s.requests.errors);
    }
    out
}

fn merge_breakpoints(reports: &[Report]) -> Option<super::report::BreakpointResult> {
    let all: Vec<_> = reports.iter().filter_map(|r| r.breakpoint.clone()).collect();
    let mut merged = all.first()?.clone();
    for b in &all[1..] {
        merged.found |= b.found;
        merged.last_passing_rate = match (merged.last_passing_rate, b.last_passing_rate) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, c) => a.or(c),
        };
        merged.last_passing_rps = merged.last_passing_rps.zip(b.last_passing_rps).map(|(a, c)| a + c);
        merged.broken_at_rate = match (merged.broken_at_rate, b.broken_at_rate) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, c) => a.or(c),
        };
        for f in &b.failed {
            if !merged.failed.contains(f) {
                merged.failed.push(f.clone());
            }
        }
    }
    Some(merged)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::load::cli::{RunArgs, Shard};
    use crate::load::engine::RunOutcome;
    use crate::load::report::build;
    use crate::load::spec::RunSpec;
    use crate::load::stats::{IoCounters, ThreadStats, Timing};

    fn spec(shard: Option<Shard>) -> RunSpec {
        let args = RunArgs { url: Some("http://127.0.0.1:9/".into()), rate: Some(100.0), shard, ..RunArgs::default() };
        RunSpec::from_args(&args).expect("valid")
    }

    fn report(spec: &RunSpec, values: &[u64]) -> Report {
        let start = Instant::now();
        let mut stats = ThreadStats::new(1, start, Arc::new(IoCounters::default()));
        for v in values {
            stats.scheduled += 1;
            stats.on_send(0);
            stats.on_response(0, start, Timing { raw_us: v / 2, corrected_us: Some(*v) }, None, 10);
        }
        let outcome = RunOutcome {
            started_at: chrono::Utc::now(),
            elapsed: Duration::from_secs(10),
            stats,
            rows: Vec::new(),
            stages: vec![Default::default()],
            aborted: None,
            interrupted: false,
            breakpoint: None,
            threads: 1,
            thread_cpu: Vec::new(),
            process_cpu: None,
            expected_interval: None,
        };
        build(spec, outcome).expect("report")
    }

    #[test]
    fn merged_percentiles_equal_a_single_run() {
        // A heavy-tailed latency sample: mostly ~1 ms, a tail to seconds.
        let mut rng = fastrand::Rng::with_seed(42);
        let values: Vec<u64> = (0..100_000)
            .map(|_| {
                let base = 500 + rng.u64(..1_500);
                if rng.u32(..100) == 0 {
                    base * (10 + rng.u64(..2_000))
                } else {
                    base
                }
            })
            .collect();
        let single = report(&spec(None), &values);
        let (a, b): (Vec<u64>, Vec<u64>) = {
            let mut a = Vec::new();
            let mut b = Vec::new();
            for (i, v) in values.iter().enumerate() {
                if i % 3 == 0 {
                    a.push(*v)
                } else {
                    b.push(*v)
                }
            }
            (a, b)
        };
        let ra = report(&spec(Some(Shard { index: 0, count: 2 })), &a);
        let rb = report(&spec(Some(Shard { index: 1, count: 2 })), &b);
        let merged = merge(&[ra, rb]).expect("merges");
        let (m, s) = (merged.latency_ms, single.latency_ms);
        for (name, x, y) in
            [("p50", m.p50, s.p50), ("p99", m.p99, s.p99), ("p999", m.p999, s.p999), ("max", m.max, s.max)]
        {
            assert!((x - y).abs() <= y * 0.01, "{name}: merged {x} vs single {y}");
        }
        assert_eq!(merged.latency_ms, single.latency_ms, "adding histograms is exact");
        assert_eq!(merged.latency_uncorrected_ms, single.latency_uncorrected_ms);
        assert_eq!(merged.requests.completed, 100_000);
        assert_eq!(merged.requests.scheduled, 100_000);
        assert_eq!(merged.bytes.body_received, single.bytes.body_received);
        assert!((merged.rps - single.rps).abs() < 1e-9);
    }
}
