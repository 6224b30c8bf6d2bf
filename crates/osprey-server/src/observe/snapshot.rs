//! One second of the server, as the dashboard and the alerts see it.
//!
//! [`Sampler::sample`] reads every source once (the performance monitor, the
//! resource monitor, the batcher, the cache, the store) and turns running
//! totals into rates against the previous sample. [`LiveSnapshot::signals`]
//! then names the figures the alert rules watch.

use std::time::Instant;

use osprey_perf::{OpKind, Signals};
use serde::Serialize;

use crate::state::AppState;
use crate::telemetry::ALL_ROUTES;

#[derive(Debug, Clone, Serialize)]
pub struct LiveSnapshot {
    pub ts_ms: i64,
    pub http: HttpFigures,
    pub queue: QueueFigures,
    pub cache: CacheFigures,
    pub system: SystemFigures,
    pub process: ProcessFigures,
    pub db: Option<DbFigures>,
    pub models: Vec<ModelFigures>,
    /// Alert rule state by gauge: ok, pending, firing or resolving.
    pub gauges: std::collections::BTreeMap<String, String>,
    pub alerts: Vec<osprey_perf::ActiveAlert>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HttpFigures {
    /// Requests per second since the previous snapshot.
    pub rps: Option<f64>,
    /// 5xx share over the last minute.
    pub error_rate_percent: Option<f64>,
    /// Over the last minute.
    pub latency_ms: Percentiles,
    pub in_flight: Option<u64>,
    pub requests_total: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueFigures {
    /// Sequences waiting for a batch.
    pub depth: Option<u64>,
    /// Requests admitted to the model and not yet answered, and the limit
    /// (`max_concurrent_requests`).
    pub in_flight: Option<u64>,
    pub capacity: Option<u64>,
    pub saturation_percent: Option<f64>,
    pub batches_per_sec: Option<f64>,
    pub mean_batch_size: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CacheFigures {
    /// Since the previous snapshot; `None` without look-ups.
    pub l1_hit_rate_percent: Option<f64>,
    pub l2_hit_rate_percent: Option<f64>,
    /// Look-ups answered by either tier.
    pub hit_rate_percent: Option<f64>,
    pub l2_up: bool,
    pub l1_entries: u64,
    pub l1_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SystemFigures {
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    /// The fullest monitored filesystem.
    pub disk_percent: Option<f64>,
    pub disk_read_bps: Option<f64>,
    pub disk_write_bps: Option<f64>,
    pub net_rx_bps: Option<f64>,
    pub net_tx_bps: Option<f64>,
    pub load1: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessFigures {
    pub cpu_percent: Option<f64>,
    pub rss_bytes: Option<u64>,
    pub threads: Option<u64>,
    pub open_fds: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DbFigures {
    pub backend: String,
    pub pool_size: u32,
    pub pool_idle: usize,
    pub pool_in_use: usize,
    pub queue_depth: usize,
    /// Over the last minute, all statements.
    pub query_p95_ms: Option<f64>,
    pub pool_wait_p95_ms: Option<f64>,
    pub slow_queries_total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelFigures {
    pub name: String,
    pub status: String,
    pub device: Option<String>,
    pub weight_bytes: Option<u64>,
    pub loaded: bool,
}

impl LiveSnapshot {
    /// The figures alert rules watch, by the signal names of
    /// `osprey_perf::AlertRule::defaults`. A figure without data is left out,
    /// which leaves its rules as they are.
    pub fn signals(&self, extra: &Extra) -> Signals {
        let mut s = Signals::new();
        let mut put = |name: &str, v: Option<f64>| {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                s.insert(name.to_string(), v);
            }
        };
        put("cpu_percent", self.system.cpu_percent);
        put("memory_percent", self.system.memory_percent);
        put("disk_percent", self.system.disk_percent);
        put("latency_p95_ms", self.http.latency_ms.p95);
        put("error_rate_percent", self.http.error_rate_percent);
        put("cache_hit_rate_percent", self.cache.hit_rate_percent);
        put("queue_saturation_percent", self.queue.saturation_percent);
        put("slow_queries_per_minute", extra.slow_queries_per_minute);
        put("model_fallback_percent", extra.model_fallback_percent);
        put("process_cpu_percent", self.process.cpu_percent);
        put("requests_per_second", self.http.rps);
        s
    }
}

/// Signals that are rates of counters the snapshot does not show.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    pub slow_queries_per_minute: Option<f64>,
    pub model_fallback_percent: Option<f64>,
}

/// Running totals from the previous sample.
#[derive(Default)]
pub struct Sampler {
    prev: Option<Totals>,
}

#[derive(Clone, Copy)]
struct Totals {
    at: Instant,
    requests: u64,
    batches: u64,
    sequences: u64,
    l1_hits: u64,
    l1_lookups: u64,
    l2_hits: u64,
    l2_lookups: u64,
    slow: u64,
    emotion_answers: u64,
    emotion_fallbacks: u64,
}

fn rate(now: u64, before: u64, secs: f64) -> Option<f64> {
    (secs > 0.0).then(|| now.saturating_sub(before) as f64 / secs)
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| 100.0 * part as f64 / whole as f64)
}

impl Sampler {
    pub fn sample(&mut self, state: &AppState) -> (LiveSnapshot, Extra) {
        let now = Instant::now();
        let perf = &state.observe.perf;
        let all = perf.op_snapshot(OpKind::Route, ALL_ROUTES);
        let m1 = all.as_ref().map(|o| o.windows.m1);
        let requests_total = all.as_ref().map_or(0, |o| o.total);

        let embedder = state.registry.loaded(state.registry.default_name());
        let batcher = embedder.as_ref().map(|e| e.stats());
        let admission = embedder.as_ref().map(|e| e.admission());

        let cache = state.cache.stats();
        let l1 = &cache.l1.total;
        let l2 = &cache.l2.total;

        let (emotion_answers, emotion_fallbacks) = state.analyzer.emotion.fallback_counts();
        let slow = state.store.as_ref().map_or(0, |s| s.slow_query_total());

        let totals = Totals {
            at: now,
            requests: requests_total,
            batches: batcher.map_or(0, |b| b.batches),
            sequences: batcher.map_or(0, |b| b.sequences),
            l1_hits: l1.hits,
            l1_lookups: l1.hits + l1.misses,
            l2_hits: l2.hits,
            l2_lookups: l2.hits + l2.misses,
            slow,
            emotion_answers,
            emotion_fallbacks,
        };
        let prev = self.prev.replace(totals);
        let secs = prev.map_or(0.0, |p| now.duration_since(p.at).as_secs_f64());
        let d = |f: fn(&Totals) -> u64| prev.map(|p| f(&totals).saturating_sub(f(&p)));

        let http = HttpFigures {
            rps: prev.and_then(|p| rate(totals.requests, p.requests, secs)),
            error_rate_percent: m1.as_ref().filter(|w| w.count > 0).map(|w| 100.0 * w.error_rate),
            latency_ms: m1
                .as_ref()
                .filter(|w| w.count > 0)
                .map(|w| Percentiles { p50: Some(w.p50_ms), p95: Some(w.p95_ms), p99: Some(w.p99_ms) })
                .unwrap_or_default(),
            in_flight: Some(crate::telemetry::in_flight()),
            requests_total,
        };

        let batches = d(|t| t.batches);
        let sequences = d(|t| t.sequences);
        let queue = QueueFigures {
            depth: batcher.map(|b| b.queued as u64),
            in_flight: admission.map(|(n, _)| n as u64),
            capacity: admission.map(|(_, c)| c as u64),
            saturation_percent: admission.and_then(|(n, c)| share(n as u64, c as u64)),
            batches_per_sec: batches.and_then(|b| (secs > 0.0).then(|| b as f64 / secs)),
            mean_batch_size: match (batches, sequences) {
                (Some(b), Some(s)) if b > 0 => Some(s as f64 / b as f64),
                _ => None,
            },
        };

        let (l1h, l1n, l2h) = (d(|t| t.l1_hits), d(|t| t.l1_lookups), d(|t| t.l2_hits));
        let l2n = d(|t| t.l2_lookups);
        let cache_figs = CacheFigures {
            l1_hit_rate_percent: l1h.zip(l1n).and_then(|(h, n)| share(h, n)),
            l2_hit_rate_percent: l2h.zip(l2n).and_then(|(h, n)| share(h, n)),
            hit_rate_percent: match (l1h, l2h, l1n) {
                (Some(a), Some(b), Some(n)) => share(a + b, n),
                _ => None,
            },
            l2_up: matches!(cache.l2.state, osprey_cache::L2State::Up),
            l1_entries: l1.entries,
            l1_bytes: l1.bytes,
        };

        let res = state.observe.monitor.latest();
        let system = res
            .as_ref()
            .map(|r| SystemFigures {
                cpu_percent: Some(r.cpu.total_percent),
                memory_percent: Some(r.memory.used_percent),
                memory_used_bytes: Some(r.memory.used_bytes),
                memory_total_bytes: Some(r.memory.total_bytes),
                disk_percent: r.disks.iter().map(|d| d.used_percent).reduce(f64::max),
                disk_read_bps: r.disk_io.as_ref().map(|io| io.read_bytes_per_sec),
                disk_write_bps: r.disk_io.as_ref().map(|io| io.write_bytes_per_sec),
                net_rx_bps: r.network.as_ref().map(|n| n.rx_bytes_per_sec),
                net_tx_bps: r.network.as_ref().map(|n| n.tx_bytes_per_sec),
                load1: Some(r.load.one),
            })
            .unwrap_or_default();
        let process = res
            .as_ref()
            .map(|r| ProcessFigures {
                cpu_percent: Some(r.process.cpu_percent),
                rss_bytes: Some(r.process.rss_bytes),
                threads: Some(r.process.threads),
                open_fds: Some(r.process.open_fds),
            })
            .unwrap_or_default();

        let db = state.store.as_ref().map(|store| {
            let (pool, depth, _) = store.pool_and_queue();
            let statements = perf.snapshot();
            // p95 over every statement's last minute: the worst statement's.
            let query_p95_ms = statements
                .ops
                .iter()
                .filter(|o| o.kind == OpKind::Statement && o.windows.m1.count > 0)
                .map(|o| o.windows.m1.p95_ms)
                .reduce(f64::max);
            let pool_wait_p95_ms = perf
                .op_snapshot(OpKind::Stage, "db_pool_wait")
                .map(|o| o.windows.m1)
                .filter(|w| w.count > 0)
                .map(|w| w.p95_ms);
            DbFigures {
                backend: format!("{:?}", store.backend()).to_lowercase(),
                pool_size: pool.size,
                pool_idle: pool.idle,
                pool_in_use: (pool.size as usize).saturating_sub(pool.idle),
                queue_depth: depth,
                query_p95_ms,
                pool_wait_p95_ms,
                slow_queries_total: slow,
            }
        });

        let models = state
            .registry
            .status()
            .into_iter()
            .map(|m| ModelFigures {
                status: if m.loaded {
                    "ready".into()
                } else if m.last_error.is_some() {
                    "failed".into()
                } else {
                    "not loaded".into()
                },
                device: m.info.as_ref().map(|i| i.device.clone()),
                weight_bytes: m.info.as_ref().map(|i| i.weight_bytes),
                loaded: m.loaded,
                name: m.name,
            })
            .collect();

        let extra = Extra {
            slow_queries_per_minute: d(|t| t.slow).and_then(|n| (secs > 0.0).then(|| n as f64 * 60.0 / secs)),
            model_fallback_percent: d(|t| t.emotion_answers)
                .zip(d(|t| t.emotion_fallbacks))
                .and_then(|(n, f)| share(f, n)),
        };
        let snapshot = LiveSnapshot {
            ts_ms: chrono::Utc::now().timestamp_millis(),
            http,
            queue,
            cache: cache_figs,
            system,
            process,
            db,
            models,
            gauges: Default::default(),
            alerts: Vec::new(),
        };
        (snapshot, extra)
    }
}
