//! Figures from server samples. Levels (CPU, memory, queue, latency
//! windows) come from the newest sample; counters (cache look-ups,
//! rejections, requests) are differences between the oldest and the newest
//! when there are two or more samples, else totals since the server started.

use super::{finite, CacheFacts, Facts, Figure};
use crate::facts::Source;
use crate::input::stats::{CacheStats, Sample, Stats};

/// Fewest cache look-ups a hit rate is computed from.
pub const MIN_CACHE_LOOKUPS: f64 = 20.0;

/// Samples closer together than this do not give a growth rate.
pub const MIN_SLOPE_SPAN_S: f64 = 5.0;

fn fig(metric: &str, window: &str, value: f64) -> Figure {
    Figure::new(metric, window, value, Source::ServerStats)
}

/// Where counters come from: a difference between samples, or totals.
struct Span<'a> {
    first: &'a Sample,
    last: &'a Sample,
    /// Seconds between them, when there are two.
    seconds: Option<f64>,
    window: String,
}

impl<'a> Span<'a> {
    fn of(samples: &'a [Sample]) -> Option<Self> {
        let (first, last) = (samples.first()?, samples.last()?);
        let seconds = match (first.at_ms, last.at_ms) {
            (Some(a), Some(b)) if samples.len() > 1 && b > a => Some((b - a) / 1000.0),
            _ => None,
        };
        let window = match (seconds, finite(last.stats.uptime_seconds)) {
            (Some(s), _) => format!("sample ({s:.1} s)"),
            (None, Some(up)) => format!("since start ({up:.0} s)"),
            (None, None) => "since start".to_string(),
        };
        Some(Span { first, last, seconds, window })
    }

    /// A counter over the span: the difference, or the newest total.
    fn counter(&self, read: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
        let now = finite(read(self.last))?;
        match self.seconds {
            Some(_) => Some((now - finite(read(self.first))?).max(0.0)),
            None => Some(now),
        }
    }
}

pub(super) fn gather(samples: &[Sample], facts: &mut Facts) {
    let Some(span) = Span::of(samples) else { return };
    facts.samples = samples.len();
    facts.sample_span_s = span.seconds;
    let s = &span.last.stats;
    let live = s.live.clone().unwrap_or_default();
    let all_1m = s.op("route", "all").and_then(|o| o.window("1m"));

    facts.latency_p95 = finite(live.http.latency_ms.p95)
        .map(|v| fig("live.http.latency_ms.p95", "1m", v))
        .or_else(|| all_1m.and_then(|w| finite(w.p95_ms)).map(|v| fig("operations[route all].1m.p95_ms", "1m", v)));
    facts.latency_p99 = finite(live.http.latency_ms.p99)
        .map(|v| fig("live.http.latency_ms.p99", "1m", v))
        .or_else(|| all_1m.and_then(|w| finite(w.p99_ms)).map(|v| fig("operations[route all].1m.p99_ms", "1m", v)));
    facts.error_rate = finite(live.http.error_rate_percent)
        .map(|v| fig("live.http.error_rate_percent (5xx)", "1m", v))
        .or_else(|| {
            all_1m
                .and_then(|w| finite(w.error_rate))
                .map(|v| fig("operations[route all].1m.error_rate", "1m", 100.0 * v))
        });
    facts.throughput = match (span.seconds, span.counter(|x| live_of(x).and_then(|l| l.http.requests_total))) {
        (Some(secs), Some(n)) => Some(fig("live.http.requests_total (difference)", &span.window, n / secs)),
        _ => all_1m
            .and_then(|w| finite(w.throughput_per_sec))
            .map(|v| fig("operations[route all].1m.throughput_per_sec", "1m", v)),
    };

    let res = s.resources.clone().unwrap_or_default();
    let res_cpu = res.cpu.clone().unwrap_or_default();
    facts.cores = finite(res_cpu.cores)
        .or_else(|| (!res_cpu.per_core_percent.is_empty()).then_some(res_cpu.per_core_percent.len() as f64));
    facts.cpu = finite(live.system.cpu_percent)
        .map(|v| fig("live.system.cpu_percent", "now", v))
        .or_else(|| finite(res_cpu.total_percent).map(|v| fig("resources.cpu.total_percent", "now", v)));
    let process = finite(live.process.cpu_percent).or_else(|| res.process.and_then(|p| finite(p.cpu_percent)));
    if let (Some(p), Some(cores)) = (process, facts.cores.filter(|c| *c > 0.0)) {
        facts.process_cpu = Some(fig("live.process.cpu_percent / cores", "now", p / cores));
    }
    let mem = res.memory.unwrap_or_default();
    facts.memory = finite(live.system.memory_percent)
        .map(|v| fig("live.system.memory_percent", "now", v))
        .or_else(|| finite(mem.used_percent).map(|v| fig("resources.memory.used_percent", "now", v)));
    let total = finite(live.system.memory_total_bytes).or(finite(mem.total_bytes));
    let used = finite(live.system.memory_used_bytes).or(finite(mem.used_bytes));
    facts.memory_available_bytes = total.zip(used).map(|(t, u)| (t - u).max(0.0));

    let tasks = s.tasks.clone().unwrap_or_default().model.unwrap_or_default();
    facts.capacity = finite(live.queue.capacity).or(finite(tasks.capacity));
    facts.queue_saturation = finite(live.queue.saturation_percent)
        .map(|v| fig("live.queue.saturation_percent", "now", v))
        .or_else(|| match (finite(tasks.in_flight), facts.capacity.filter(|c| *c > 0.0)) {
            (Some(n), Some(c)) => Some(fig("tasks.model.in_flight / capacity", "now", 100.0 * n / c)),
            _ => None,
        });
    facts.queue_depth = finite(live.queue.depth)
        .map(|v| fig("live.queue.depth", "now", v))
        .or_else(|| finite(tasks.queue_depth).map(|v| fig("tasks.model.queue_depth", "now", v)));
    let rejected = span.counter(|x| x.stats.tasks.as_ref()?.model.as_ref()?.rejected);
    let completed = span.counter(|x| x.stats.tasks.as_ref()?.model.as_ref()?.completed);
    facts.rejected = rejected.map(|v| fig("tasks.model.rejected", &span.window, v));
    facts.rejected_share = match (rejected, completed) {
        (Some(r), Some(c)) if r + c > 0.0 => Some(100.0 * r / (r + c)),
        _ => None,
    };

    cache(&span, &live, facts);

    let db = live.db.clone();
    let statements = s
        .operations
        .iter()
        .filter(|o| o.kind == "statement")
        .filter_map(|o| o.window("1m").and_then(|w| finite(w.p95_ms)))
        .reduce(f64::max);
    facts.db_query_p95 = db
        .as_ref()
        .and_then(|d| finite(d.query_p95_ms))
        .map(|v| fig("live.db.query_p95_ms", "1m", v))
        .or_else(|| statements.map(|v| fig("operations[statement *].1m.p95_ms (worst)", "1m", v)));
    facts.pool_wait_p95 = db
        .as_ref()
        .and_then(|d| finite(d.pool_wait_p95_ms))
        .map(|v| fig("live.db.pool_wait_p95_ms", "1m", v))
        .or_else(|| stage_p95(s, "db_pool_wait").map(|v| fig("operations[stage db_pool_wait].1m.p95_ms", "1m", v)));
    facts.pool_size = db.as_ref().and_then(|d| finite(d.pool_size));

    facts.model_fallback = fallback(span.last, &live);
    facts.queue_wait_p95 = stage_p95(s, "queue_wait").map(|v| fig("operations[stage queue_wait].1m.p95_ms", "1m", v));
    facts.tokenize_p95 = stage_p95(s, "tokenize").map(|v| fig("operations[stage tokenize].1m.p95_ms", "1m", v));
    facts.server_p95 = all_1m.and_then(|w| finite(w.p95_ms)).map(|v| fig("operations[route all].1m.p95_ms", "1m", v));
    facts.model_threads = live.models.iter().filter_map(|m| m.device.as_deref().and_then(threads_of)).next();

    rss(samples, &span, facts);
}

fn live_of(s: &Sample) -> Option<&crate::input::stats::Live> {
    s.stats.live.as_ref()
}

fn stage_p95(s: &Stats, name: &str) -> Option<f64> {
    s.op("stage", name).and_then(|o| o.window("1m")).and_then(|w| finite(w.p95_ms))
}

/// `cpu (2 threads)` → 2.
fn threads_of(device: &str) -> Option<f64> {
    let open = device.find('(')?;
    let inner = &device[open + 1..];
    let n: f64 = inner.split_whitespace().next()?.parse().ok()?;
    inner.contains("thread").then_some(n)
}

fn l1_counts(c: &CacheStats) -> Option<(f64, f64)> {
    let l1 = c.l1.as_ref()?;
    let hits = finite(l1.total.hits)? + c.l2.as_ref().and_then(|l2| finite(l2.total.hits)).unwrap_or(0.0);
    Some((hits, finite(l1.total.hits)? + finite(l1.total.misses)?))
}

/// Hit rate from the cache counters (L1 hits + L2 hits over L1 look-ups),
/// else the live snapshot's last-interval figure.
fn cache(span: &Span<'_>, live: &crate::input::stats::Live, facts: &mut Facts) {
    let l1 = span.last.cache.as_ref().and_then(|c| c.l1.clone());
    let hits = span.counter(|x| x.cache.as_ref().and_then(l1_counts).map(|(h, _)| h));
    let lookups = span.counter(|x| x.cache.as_ref().and_then(l1_counts).map(|(_, n)| n));
    let evictions = |read: fn(&crate::input::stats::Evictions) -> Option<f64>| {
        span.counter(|x| x.cache.as_ref()?.l1.as_ref().and_then(|l| read(&l.total.evictions)))
    };
    facts.cache = CacheFacts {
        lookups,
        size_evictions: evictions(|e| e.size),
        expired_evictions: evictions(|e| e.expired),
        entries: l1.as_ref().and_then(|l| finite(l.total.entries)),
        max_entries: l1.as_ref().and_then(|l| finite(l.max_entries)),
        bytes: l1.as_ref().and_then(|l| finite(l.total.bytes)),
        max_bytes: l1.as_ref().and_then(|l| finite(l.max_bytes)),
        window: span.window.clone(),
    };
    facts.cache_hit_rate = match (hits, lookups.filter(|n| *n >= MIN_CACHE_LOOKUPS)) {
        (Some(h), Some(n)) => Some(fig("cache l1+l2 hits / l1 look-ups", &span.window, 100.0 * h / n)),
        _ => finite(live.cache.hit_rate_percent).map(|v| fig("live.cache.hit_rate_percent", "now", v)),
    };
}

/// The `model_fallback_percent` rule's value (its window), else a firing alert's.
fn fallback(last: &Sample, live: &crate::input::stats::Live) -> Option<Figure> {
    let rule = last.alerts.as_ref().and_then(|a| {
        a.rules.iter().find_map(|r| {
            let def = r.rule.as_ref()?;
            (def.signal.as_deref() == Some("model_fallback_percent")).then_some(())?;
            let window = def.window.clone().unwrap_or_else(|| "rule window".into());
            finite(r.value).map(|v| fig("alerts.rules[model_fallback_percent].value", &window, v))
        })
    });
    rule.or_else(|| {
        live.alerts
            .iter()
            .find(|a| a.signal.as_deref() == Some("model_fallback_percent"))
            .and_then(|a| finite(a.value))
            .map(|v| fig("live.alerts[model_fallback_percent].value", "rule window", v))
    })
}

/// RSS growth between the oldest and the newest sample.
fn rss(samples: &[Sample], span: &Span<'_>, facts: &mut Facts) {
    let rss_of = |s: &Sample| {
        finite(s.stats.live.as_ref().and_then(|l| l.process.rss_bytes))
            .or_else(|| s.stats.resources.as_ref().and_then(|r| r.process.and_then(|p| finite(p.rss_bytes))))
    };
    let Some(secs) = span.seconds.filter(|s| *s >= MIN_SLOPE_SPAN_S) else { return };
    let (Some(a), Some(b)) = (rss_of(span.first), rss_of(span.last)) else { return };
    facts.rss_slope = Some(fig("process RSS growth (bytes/s)", &span.window, (b - a) / secs));
    let values: Vec<Option<f64>> = samples.iter().map(rss_of).collect();
    facts.rss_rising_throughout = values.windows(2).all(|w| matches!((w[0], w[1]), (Some(x), Some(y)) if y > x));
}

#[cfg(test)]
mod tests {
    use super::threads_of;

    #[test]
    fn model_threads_come_from_the_device_string() {
        assert_eq!(threads_of("cpu (2 threads)"), Some(2.0));
        assert_eq!(threads_of("cpu (1 thread)"), Some(1.0));
        assert_eq!(threads_of("cuda:0"), None);
        assert_eq!(threads_of("cpu (fast)"), None);
    }
}
