//! Bottlenecks: which resource saturates first, and the evidence.
//!
//! Each rule reads [`Facts`] and, when its condition holds, reports the
//! figures that made it hold, each as [`Evidence`] (metric, window, value,
//! threshold, source). Severity is 50 at the threshold and rises linearly
//! with how far past it the worst figure is, to 100 at the rule's
//! "critical" ratio; bottlenecks are ordered by severity (ties by the order
//! of [`Kind`]), and the first is the resource that saturates first.
//! The thresholds are the constants below; `docs/analyze.md` tabulates them.

use serde::Serialize;

use crate::facts::{Facts, Figure, Source};
use crate::score::round1;

/// Open-model scheduler lag p99 (ms) beyond which arrivals went out late.
pub const CLIENT_LAG_MS: f64 = 10.0;
/// A generator thread (or the generator's usable cores) this busy is saturated.
pub const CLIENT_BUSY: f64 = 0.9;
/// Host or process CPU (percent) that counts as saturated.
pub const CPU_BUSY: f64 = 85.0;
/// With a busy host, the server process must use this share of the cores
/// (percent) to be the one saturating it.
pub const PROCESS_BUSY: f64 = 50.0;
/// Throughput is flat when the achieved rate is below this share of the offered one…
pub const FLAT_ACHIEVED: f64 = 0.95;
/// …or the last third's p95 is this many times the first third's, or work is queued.
pub const LATENCY_RISE: f64 = 1.5;
/// Queue wait dominates above this share of the latency…
pub const QUEUE_SHARE: f64 = 0.5;
/// …when it is at least this long (ms).
pub const QUEUE_MIN_MS: f64 = 10.0;
/// Pool wait p95 (ms) that is a bottleneck on its own…
pub const POOL_WAIT_MS: f64 = 10.0;
/// …or this share of the statement p95, when at least `POOL_SHARE_MIN_MS`.
pub const POOL_SHARE: f64 = 0.2;
pub const POOL_SHARE_MIN_MS: f64 = 5.0;
/// Cache hit rate (percent) below which misses matter, when entries are evicted.
pub const CACHE_HIT: f64 = 50.0;
/// RSS growth (bytes/s) that counts as sustained memory growth.
pub const RSS_SLOPE: f64 = 1024.0 * 1024.0;
/// Failed requests (5xx, timeouts, connect and I/O errors), percent.
pub const FAILURES: f64 = 1.0;

/// The bottleneck rules, in tie-break order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ClientSaturation,
    CpuBound,
    QueueWait,
    PoolWait,
    CacheMisses,
    MemoryGrowth,
    ServerErrors,
    AdmissionRejections,
}

impl Kind {
    /// The id used in JSON and in recommendations' evidence.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ClientSaturation => "client_saturation",
            Kind::CpuBound => "cpu_bound",
            Kind::QueueWait => "queue_wait",
            Kind::PoolWait => "pool_wait",
            Kind::CacheMisses => "cache_misses",
            Kind::MemoryGrowth => "memory_growth",
            Kind::ServerErrors => "server_errors",
            Kind::AdmissionRejections => "admission_rejections",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::ClientSaturation => "The load generator saturated: the figures may measure the tool, not the server",
            Kind::CpuBound => "CPU-bound model threads: CPU is saturated and throughput has stopped growing",
            Kind::QueueWait => "Queue wait dominates latency: requests wait for the model longer than they are served",
            Kind::PoolWait => "Database pool wait: statements wait for a pooled connection",
            Kind::CacheMisses => "Cache misses on repeated traffic: entries are evicted before they are reused",
            Kind::MemoryGrowth => "Memory grows steadily (GC-like growth or a leak)",
            Kind::ServerErrors => "Requests fail: server errors, timeouts or broken connections",
            Kind::AdmissionRejections => "Admission rejections: the server answers 429 at its concurrency limit",
        }
    }

    fn resource(self) -> &'static str {
        match self {
            Kind::ClientSaturation => "load generator",
            Kind::CpuBound => "CPU",
            Kind::QueueWait => "model queue",
            Kind::PoolWait => "database pool",
            Kind::CacheMisses => "result cache",
            Kind::MemoryGrowth => "memory",
            Kind::ServerErrors => "error path",
            Kind::AdmissionRejections => "admission limit",
        }
    }

    /// Ratio past the threshold at which severity reaches 100.
    fn critical(self) -> f64 {
        match self {
            Kind::ClientSaturation => 3.0,
            Kind::CpuBound => 100.0 / CPU_BUSY,
            Kind::QueueWait => 0.95 / QUEUE_SHARE,
            Kind::PoolWait | Kind::CacheMisses | Kind::ServerErrors => 5.0,
            Kind::MemoryGrowth => 10.0,
            Kind::AdmissionRejections => 6.0,
        }
    }
}

/// One figure and the threshold it crossed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub metric: String,
    pub window: String,
    pub value: f64,
    /// `>`, `≥`, `<`: how `value` compares with `threshold` for the rule to hold.
    pub comparison: &'static str,
    pub threshold: f64,
    pub unit: &'static str,
    pub source: Source,
}

impl Evidence {
    fn of(f: &Figure, comparison: &'static str, threshold: f64, unit: &'static str) -> Self {
        Evidence {
            metric: f.metric.clone(),
            window: f.window.clone(),
            value: f.value,
            comparison,
            threshold,
            unit,
            source: f.source,
        }
    }

    fn derived(
        metric: &str,
        like: &Figure,
        value: f64,
        comparison: &'static str,
        threshold: f64,
        unit: &'static str,
    ) -> Self {
        Evidence::of(&Figure::new(metric, like.window.clone(), value, like.source), comparison, threshold, unit)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bottleneck {
    /// [`Kind::as_str`]; recommendations refer to it.
    pub id: &'static str,
    pub kind: Kind,
    pub title: &'static str,
    pub resource: &'static str,
    /// 50 at the threshold … 100 at the rule's critical ratio.
    pub severity: f64,
    /// `high` (severity ≥ 75) or `medium`.
    pub level: &'static str,
    pub summary: String,
    pub evidence: Vec<Evidence>,
}

fn found(kind: Kind, ratio: f64, summary: String, evidence: Vec<Evidence>) -> Bottleneck {
    let t = ((ratio - 1.0) / (kind.critical() - 1.0)).clamp(0.0, 1.0);
    let severity = round1(50.0 + 50.0 * if t.is_nan() { 1.0 } else { t });
    Bottleneck {
        id: kind.as_str(),
        kind,
        title: kind.title(),
        resource: kind.resource(),
        severity,
        level: if severity >= 75.0 { "high" } else { "medium" },
        summary,
        evidence,
    }
}

/// Every bottleneck the facts show, most severe first.
pub fn find(facts: &Facts) -> Vec<Bottleneck> {
    let rules: [fn(&Facts) -> Option<Bottleneck>; 8] =
        [client_saturation, cpu_bound, queue_wait, pool_wait, cache_misses, memory_growth, server_errors, admission];
    let mut out: Vec<Bottleneck> = rules.iter().filter_map(|rule| rule(facts)).collect();
    out.sort_by(|a, b| b.severity.total_cmp(&a.severity).then(a.kind.cmp(&b.kind)));
    out
}

fn client_saturation(f: &Facts) -> Option<Bottleneck> {
    let c = &f.client;
    let mut ev = Vec::new();
    let mut ratio: f64 = 1.0;
    if let Some(l) = c.scheduler_lag_p99.as_ref().filter(|l| l.value > CLIENT_LAG_MS) {
        ev.push(Evidence::of(l, ">", CLIENT_LAG_MS, "ms"));
        ratio = ratio.max(l.value / CLIENT_LAG_MS);
    }
    if let Some(b) = c.busiest_thread.as_ref().filter(|b| b.value >= CLIENT_BUSY) {
        ev.push(Evidence::of(b, "≥", CLIENT_BUSY, "ratio"));
        ratio = ratio.max(b.value / CLIENT_BUSY);
    }
    if let (Some(u), Some(n)) = (&c.cores_used, c.usable_cores.filter(|n| *n > 0.0)) {
        if u.value >= CLIENT_BUSY * n {
            ev.push(Evidence::of(u, "≥", CLIENT_BUSY * n, "cores"));
            ratio = ratio.max(u.value / (CLIENT_BUSY * n));
        }
    }
    if let Some(m) = c.missed.as_ref().filter(|m| m.value > 0.0) {
        ev.push(Evidence::of(m, ">", 0.0, "requests"));
        let share = c.scheduled.filter(|s| *s > 0.0).map_or(0.01, |s| m.value / s);
        ratio = ratio.max(1.0 + 100.0 * share);
    }
    if ev.is_empty() {
        // Only the report's own verdict (e.g. from a rule this reader does not know).
        ev.push(Evidence::of(c.saturated.as_ref()?, "=", 1.0, "flag"));
    }
    let mut summary = String::from("The numbers may measure the tool: ");
    summary.push_str(&if c.warnings.is_empty() {
        "the load report marks the generator as saturated".to_string()
    } else {
        c.warnings.join("; ")
    });
    Some(found(Kind::ClientSaturation, ratio, summary, ev))
}

fn queue_share(f: &Facts) -> Option<(f64, Vec<Evidence>)> {
    let pairs = [(&f.queue_wait_p95, &f.server_p95), (&f.timing_queue_p95, &f.timing_total_p95)];
    pairs
        .iter()
        .filter_map(|(q, total)| {
            let (q, total) = (q.as_ref()?, total.as_ref().filter(|t| t.value > 0.0)?);
            let share = q.value / total.value;
            (q.value >= QUEUE_MIN_MS && share > QUEUE_SHARE).then(|| {
                let ev = vec![
                    Evidence::derived(
                        &format!("{} / {}", q.metric, total.metric),
                        q,
                        round1(100.0 * share),
                        ">",
                        100.0 * QUEUE_SHARE,
                        "%",
                    ),
                    Evidence::of(q, "≥", QUEUE_MIN_MS, "ms"),
                ];
                (share, ev)
            })
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

fn cpu_bound(f: &Facts) -> Option<Bottleneck> {
    let process = f.process_cpu.as_ref();
    let host =
        f.cpu.as_ref().filter(|c| c.value >= CPU_BUSY).filter(|_| process.is_none_or(|p| p.value >= PROCESS_BUSY));
    let own = process.filter(|p| p.value >= CPU_BUSY);
    let trigger = match (host, own) {
        (Some(h), Some(p)) => {
            if p.value > h.value {
                p
            } else {
                h
            }
        }
        (Some(h), None) => h,
        (None, Some(p)) => p,
        (None, None) => return None,
    };
    let mut ev = vec![Evidence::of(trigger, "≥", CPU_BUSY, "%")];
    if let Some(p) = process.filter(|p| !std::ptr::eq(*p, trigger)) {
        ev.push(Evidence::of(p, "≥", PROCESS_BUSY, "%"));
    }
    let mut flat = Vec::new();
    if let (Some(t), Some(o)) = (&f.throughput, f.offered_rps.as_ref().filter(|o| o.value > 0.0)) {
        let achieved = t.value / o.value;
        if achieved < FLAT_ACHIEVED {
            flat.push(Evidence::derived(
                "rps / offered rate",
                t,
                round1(100.0 * achieved),
                "<",
                100.0 * FLAT_ACHIEVED,
                "%",
            ));
        }
    }
    if let (Some(early), Some(late)) = (&f.p95_early, &f.p95_late) {
        if early.value > 0.0 && late.value >= LATENCY_RISE * early.value {
            flat.push(Evidence::of(late, "≥", round1(LATENCY_RISE * early.value), "ms"));
        }
    }
    if let Some(d) = f.queue_depth.as_ref().filter(|d| d.value > 0.0) {
        flat.push(Evidence::of(d, ">", 0.0, "sequences"));
    }
    if let Some((_, q)) = queue_share(f) {
        flat.extend(q.into_iter().take(1));
    }
    if flat.is_empty() {
        return None;
    }
    ev.extend(flat);
    let summary = format!(
        "CPU at {:.0}% ({}) while work backs up: more requests will queue, not complete. \
         Batching cannot create CPU; more cores or replicas can.",
        trigger.value, trigger.metric
    );
    Some(found(Kind::CpuBound, trigger.value / CPU_BUSY, summary, ev))
}

fn queue_wait(f: &Facts) -> Option<Bottleneck> {
    let (share, ev) = queue_share(f)?;
    let summary = format!(
        "{:.0}% of the p95 latency is spent waiting for a batch slot: the model's throughput, not the \
         request handling, sets the latency.",
        100.0 * share
    );
    Some(found(Kind::QueueWait, share / QUEUE_SHARE, summary, ev))
}

fn pool_wait(f: &Facts) -> Option<Bottleneck> {
    let w = f.pool_wait_p95.as_ref()?;
    let mut ev = Vec::new();
    let mut ratio: f64 = 1.0;
    if w.value > POOL_WAIT_MS {
        ev.push(Evidence::of(w, ">", POOL_WAIT_MS, "ms"));
        ratio = ratio.max(w.value / POOL_WAIT_MS);
    }
    if let Some(q) = f.db_query_p95.as_ref().filter(|q| q.value > 0.0 && w.value >= POOL_SHARE_MIN_MS) {
        let share = w.value / q.value;
        if share > POOL_SHARE {
            ev.push(Evidence::derived(
                "pool wait p95 / statement p95",
                w,
                round1(100.0 * share),
                ">",
                100.0 * POOL_SHARE,
                "%",
            ));
            ratio = ratio.max(share / POOL_SHARE);
        }
    }
    if ev.is_empty() {
        return None;
    }
    let summary =
        format!("Statements wait {:.1} ms (p95) for a connection before they run: the pool is too small.", w.value);
    Some(found(Kind::PoolWait, ratio, summary, ev))
}

fn cache_misses(f: &Facts) -> Option<Bottleneck> {
    let hit = f.cache_hit_rate.as_ref().filter(|h| h.value < CACHE_HIT)?;
    let c = &f.cache;
    let window = c.window.clone();
    let mut ev = vec![Evidence::of(hit, "<", CACHE_HIT, "%")];
    let mut repeated = false;
    for (metric, n) in
        [("cache l1 evictions.size", c.size_evictions), ("cache l1 evictions.expired", c.expired_evictions)]
    {
        if let Some(n) = n.filter(|n| *n > 0.0) {
            ev.push(Evidence::of(&Figure::new(metric, window.clone(), n, Source::ServerStats), ">", 0.0, "entries"));
            repeated = true;
        }
    }
    if !repeated {
        return None;
    }
    let summary = format!(
        "Only {:.1}% of look-ups hit while entries are being evicted: the traffic repeats, but the cache \
         forgets before the repeat arrives.",
        hit.value
    );
    Some(found(Kind::CacheMisses, CACHE_HIT / hit.value.max(1.0), summary, ev))
}

fn memory_growth(f: &Facts) -> Option<Bottleneck> {
    let slope = f.rss_slope.as_ref().filter(|s| s.value > RSS_SLOPE && f.rss_rising_throughout)?;
    let ev = vec![Evidence::of(slope, ">", RSS_SLOPE, "bytes/s")];
    let mut summary = format!("RSS grew {:.2} MiB/s over the samples.", slope.value / RSS_SLOPE);
    if let Some(avail) = f.memory_available_bytes {
        summary.push_str(&format!(
            " At that rate the host's free memory lasts about {:.0} min.",
            avail / slope.value / 60.0
        ));
    }
    summary.push_str(" Sample longer (--sample) to tell a warming cache from a leak.");
    Some(found(Kind::MemoryGrowth, slope.value / RSS_SLOPE, summary, ev))
}

fn server_errors(f: &Facts) -> Option<Bottleneck> {
    let rate = f.failures.as_ref().or(f.error_rate.as_ref().filter(|e| e.source == Source::ServerStats))?;
    if rate.value <= FAILURES {
        return None;
    }
    let kinds = if f.failure_kinds.is_empty() {
        "5xx answers".to_string()
    } else {
        f.failure_kinds.iter().map(|(k, n)| format!("{k} {n:.0}")).collect::<Vec<_>>().join(", ")
    };
    let summary = format!("{:.2}% of requests failed ({kinds}).", rate.value);
    Some(found(Kind::ServerErrors, rate.value / FAILURES, summary, vec![Evidence::of(rate, ">", FAILURES, "%")]))
}

fn admission(f: &Facts) -> Option<Bottleneck> {
    let mut ev = Vec::new();
    let mut share: f64 = 0.0;
    if let Some(r) = f.rejected.as_ref().filter(|r| r.value > 0.0) {
        ev.push(Evidence::of(r, ">", 0.0, "requests"));
        share = share.max(f.rejected_share.unwrap_or(0.0));
    }
    if let Some(t) = f.throttled.as_ref().filter(|t| t.value > 0.0) {
        ev.push(Evidence::of(t, ">", 0.0, "%"));
        share = share.max(t.value);
    }
    if ev.is_empty() {
        return None;
    }
    let limit = f.capacity.map_or(String::new(), |c| format!(" (batching.max_concurrent_requests = {c:.0})"));
    let summary = format!("{share:.2}% of requests were refused with 429 at the admission limit{limit}.");
    Some(found(Kind::AdmissionRejections, 1.0 + share, summary, ev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(v: f64, source: Source) -> Option<Figure> {
        Some(Figure::new("m", "1m", v, source))
    }

    #[test]
    fn severity_is_50_at_the_threshold_and_100_at_the_critical_ratio() {
        assert_eq!(found(Kind::PoolWait, 1.0, String::new(), vec![]).severity, 50.0);
        assert_eq!(found(Kind::PoolWait, 3.0, String::new(), vec![]).severity, 75.0);
        assert_eq!(found(Kind::PoolWait, 50.0, String::new(), vec![]).severity, 100.0);
    }

    #[test]
    fn pool_wait_fires_on_its_own_or_as_a_share_of_statement_time() {
        let mut f = Facts { pool_wait_p95: fig(12.0, Source::ServerStats), ..Facts::default() };
        assert_eq!(find(&f)[0].kind, Kind::PoolWait);
        f.pool_wait_p95 = fig(6.0, Source::ServerStats);
        assert!(find(&f).is_empty(), "6 ms alone is below 10 ms");
        f.db_query_p95 = fig(20.0, Source::ServerStats);
        let b = find(&f);
        assert_eq!(b[0].evidence[0].value, 30.0, "6 ms of 20 ms is 30% > 20%");
        f.pool_wait_p95 = fig(2.0, Source::ServerStats);
        f.db_query_p95 = fig(2.5, Source::ServerStats);
        assert!(find(&f).is_empty(), "a share of a tiny wait is noise");
    }

    #[test]
    fn cache_misses_need_evictions_to_count_as_repeated_traffic() {
        let mut f = Facts { cache_hit_rate: fig(10.0, Source::ServerStats), ..Facts::default() };
        assert!(find(&f).is_empty(), "unique traffic: a cache cannot help");
        f.cache.expired_evictions = Some(40.0);
        let b = find(&f);
        assert_eq!((b[0].kind, b[0].severity), (Kind::CacheMisses, 100.0));
    }

    #[test]
    fn busy_host_cpu_is_not_the_servers_bottleneck_when_the_server_is_idle() {
        let mut f = Facts {
            cpu: fig(100.0, Source::ServerStats),
            process_cpu: fig(10.0, Source::ServerStats),
            queue_depth: fig(4.0, Source::ServerStats),
            ..Facts::default()
        };
        assert!(find(&f).is_empty());
        f.process_cpu = fig(60.0, Source::ServerStats);
        assert_eq!(find(&f)[0].kind, Kind::CpuBound);
        f.queue_depth = fig(0.0, Source::ServerStats);
        assert!(find(&f).is_empty(), "busy but keeping up: throughput is not flat");
    }

    #[test]
    fn memory_growth_and_rejections_and_errors() {
        let f = Facts {
            rss_slope: fig(3.0 * RSS_SLOPE, Source::ServerStats),
            rss_rising_throughout: true,
            memory_available_bytes: Some(60.0 * 3.0 * RSS_SLOPE * 10.0),
            rejected: fig(5.0, Source::ServerStats),
            rejected_share: Some(0.5),
            failures: fig(2.0, Source::LoadReport),
            ..Facts::default()
        };
        let b = find(&f);
        let kinds: Vec<Kind> = b.iter().map(|b| b.kind).collect();
        assert_eq!(kinds, [Kind::ServerErrors, Kind::MemoryGrowth, Kind::AdmissionRejections]);
        assert!(b[1].summary.contains("about 10 min"), "{}", b[1].summary);
    }
}
