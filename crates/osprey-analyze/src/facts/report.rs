//! Figures from a load report: the client's view (corrected latency,
//! errors, throughput, the offered rate), the `Server-Timing` split, the
//! latency trend inside the run, and the load generator's own health.

use super::{finite, ClientFacts, Facts, Figure, Source};
use crate::input::report::LoadReport;

fn fig(metric: &str, window: &str, value: f64) -> Figure {
    Figure::new(metric, window, value, Source::LoadReport)
}

/// Fills `facts` from `r`, replacing the server's figures for the client view.
pub(super) fn gather(r: &LoadReport, facts: &mut Facts) {
    let window = match finite(r.duration_s) {
        Some(d) => format!("run ({d:.1} s)"),
        None => "run".to_string(),
    };
    let w = window.as_str();
    let has_latency = r.latency_ms.count.is_none_or(|c| c > 0.0);
    if let Some(v) = finite(r.latency_ms.p95).filter(|_| has_latency) {
        facts.latency_p95 = Some(fig("latency_ms.p95", w, v));
    }
    if let Some(v) = finite(r.latency_ms.p99).filter(|_| has_latency) {
        facts.latency_p99 = Some(fig("latency_ms.p99", w, v));
    }
    let q = r.requests;
    let finished = q.ok.zip(q.errors).map(|(ok, e)| ok + e);
    let error_rate = finite(r.error_rate)
        .or_else(|| finished.filter(|f| *f > 0.0).and_then(|f| q.errors.map(|e| e / f)).filter(|v| v.is_finite()));
    if let Some(v) = error_rate {
        facts.error_rate = Some(fig("error_rate", w, 100.0 * v));
    }
    if let Some(v) = finite(r.rps) {
        facts.throughput = Some(fig("rps", w, v));
    }
    if r.is_open_model() {
        facts.offered_rps = offered(r, w);
    }

    if let Some(st) = &r.server_timing {
        let queue = st.breakdown.get("queueing").or_else(|| st.metrics.get("queue")).and_then(|l| finite(l.p95));
        let total = st.metrics.get("total").and_then(|l| finite(l.p95));
        facts.timing_queue_p95 = queue.map(|v| fig("server_timing.breakdown.queueing.p95", w, v));
        facts.timing_total_p95 = total.map(|v| fig("server_timing.metrics.total.p95", w, v));
    }

    let rows: Vec<f64> = r.timeline.iter().filter_map(|row| finite(row.p95_ms)).collect();
    if rows.len() >= 6 {
        let third = rows.len() / 3;
        let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
        facts.p95_early = Some(fig("timeline[].p95_ms (first third, mean)", w, mean(&rows[..third])));
        facts.p95_late = Some(fig("timeline[].p95_ms (last third, mean)", w, mean(&rows[rows.len() - third..])));
    }

    let e = r.errors;
    let kinds = [("status_5xx", e.status_5xx), ("timeout", e.timeout), ("connect", e.connect), ("io", e.io)];
    let failed: f64 = kinds.iter().filter_map(|(_, v)| finite(*v)).sum();
    if let Some(total) = finished.filter(|f| *f > 0.0) {
        facts.failures = Some(fig("errors.{status_5xx,timeout,connect,io} / requests", w, 100.0 * failed / total));
        facts.failure_kinds =
            kinds.iter().filter_map(|(k, v)| finite(*v).filter(|v| *v > 0.0).map(|v| (k.to_string(), v))).collect();
        let throttled = r.error_samples.iter().any(|s| s.contains("429"));
        if let Some(n) = finite(e.status_4xx).filter(|n| *n > 0.0 && throttled) {
            facts.throttled = Some(fig("errors.status_4xx (429 in error_samples) / requests", w, 100.0 * n / total));
        }
    }

    facts.client = client(r, w);
}

/// The arrival rate asked for: the mean of the timeline's targets (which
/// follow ramps), else scheduled arrivals over the run's length.
fn offered(r: &LoadReport, w: &str) -> Option<Figure> {
    let targets: Vec<f64> = r.timeline.iter().filter_map(|row| finite(row.target)).collect();
    if !targets.is_empty() {
        let mean = targets.iter().sum::<f64>() / targets.len() as f64;
        return Some(fig("timeline[].target (mean)", w, mean));
    }
    let rate = finite(r.requests.scheduled)?.max(0.0) / finite(r.duration_s).filter(|d| *d > 0.0)?;
    Some(fig("requests.scheduled / duration_s", w, rate))
}

fn client(r: &LoadReport, w: &str) -> ClientFacts {
    let c = &r.client;
    let threads = finite(c.threads).or(finite(r.model.threads));
    let cores = finite(c.cores);
    ClientFacts {
        saturated: c.saturated.filter(|s| *s).map(|_| fig("client.saturated", w, 1.0)),
        warnings: c.warnings.clone(),
        scheduler_lag_p99: c
            .scheduler_lag_ms
            .and_then(|l| finite(l.p99))
            .map(|v| fig("client.scheduler_lag_ms.p99", w, v)),
        busiest_thread: finite(c.busiest_thread_cpu).map(|v| fig("client.busiest_thread_cpu", w, v)),
        cores_used: finite(c.cpu_cores_used).map(|v| fig("client.cpu_cores_used", w, v)),
        usable_cores: match (threads, cores) {
            (Some(t), Some(c)) => Some(t.min(c)),
            (t, c) => t.or(c),
        },
        threads,
        cores,
        missed: finite(r.requests.missed).map(|v| fig("requests.missed", w, v)),
        scheduled: finite(r.requests.scheduled),
    }
}
