//! The figures the rules read, each a [`Figure`]: value, the metric it came
//! from, the window it covers and its source (`load report` or `server
//! stats`). This is the only module that knows the input layouts; scoring,
//! bottlenecks and recommendations read [`Facts`] alone, which keeps them
//! testable with hand-built facts.
//!
//! Where both inputs know a figure, the load report wins for what the
//! client sees (latency, errors, throughput: corrected for coordinated
//! omission, over the whole run) and the server for what only it can see
//! (CPU, memory, queue, cache, database, model). With several samples,
//! levels come from the newest and counters are differences between the
//! oldest and the newest.
//!
//! - `report` — figures from a load report;
//! - `server` — figures from server samples.

mod report;
mod server;

use serde::Serialize;

use crate::input::Inputs;

/// Where a figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Source {
    #[serde(rename = "load report")]
    LoadReport,
    #[serde(rename = "server stats")]
    ServerStats,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::LoadReport => "load report",
            Source::ServerStats => "server stats",
        }
    }
}

/// One measured value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// The field it was read from, e.g. `latency_ms.p95` or `live.system.cpu_percent`.
    pub metric: String,
    /// What it covers: `run (20.0 s)`, `1m`, `now`, `since start (15 s)`, `sample (10.6 s)`.
    pub window: String,
    pub value: f64,
    pub source: Source,
}

impl Figure {
    pub fn new(metric: impl Into<String>, window: impl Into<String>, value: f64, source: Source) -> Self {
        Figure { metric: metric.into(), window: window.into(), value, source }
    }
}

/// What the load generator says about itself.
#[derive(Debug, Clone, Default)]
pub struct ClientFacts {
    /// The report's own verdict (`client.saturated`), present when true.
    pub saturated: Option<Figure>,
    pub warnings: Vec<String>,
    /// ms; over 10 ms means arrivals went out late.
    pub scheduler_lag_p99: Option<Figure>,
    /// Ratio of one thread's wall time (1.0 = always busy).
    pub busiest_thread: Option<Figure>,
    /// Cores the generator kept busy, and how many it could use.
    pub cores_used: Option<Figure>,
    pub usable_cores: Option<f64>,
    pub threads: Option<f64>,
    pub cores: Option<f64>,
    /// Arrivals dropped because the backlog was full.
    pub missed: Option<Figure>,
    pub scheduled: Option<f64>,
}

/// Cache counters over the figures' window.
#[derive(Debug, Clone, Default)]
pub struct CacheFacts {
    pub lookups: Option<f64>,
    pub size_evictions: Option<f64>,
    pub expired_evictions: Option<f64>,
    pub entries: Option<f64>,
    pub max_entries: Option<f64>,
    pub bytes: Option<f64>,
    pub max_bytes: Option<f64>,
    pub window: String,
}

/// Everything the rules read. Every field is optional: a figure nobody
/// measured is absent, never zero.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// ms.
    pub latency_p95: Option<Figure>,
    pub latency_p99: Option<Figure>,
    /// Percent of requests that failed.
    pub error_rate: Option<Figure>,
    /// Responses per second.
    pub throughput: Option<Figure>,
    /// Open model: the arrival rate the load report asked for.
    pub offered_rps: Option<Figure>,
    /// Host CPU, percent.
    pub cpu: Option<Figure>,
    /// The server process's CPU, percent of the host's cores.
    pub process_cpu: Option<Figure>,
    /// Host memory used, percent.
    pub memory: Option<Figure>,
    /// Requests admitted / `max_concurrent_requests`, percent.
    pub queue_saturation: Option<Figure>,
    pub queue_depth: Option<Figure>,
    /// Cache look-ups answered, percent.
    pub cache_hit_rate: Option<Figure>,
    pub cache: CacheFacts,
    /// ms.
    pub db_query_p95: Option<Figure>,
    pub pool_wait_p95: Option<Figure>,
    /// Percent of emotion answers that fell back to the lexicon.
    pub model_fallback: Option<Figure>,

    /// The batcher's queue wait and the route latency over the same window.
    pub queue_wait_p95: Option<Figure>,
    pub server_p95: Option<Figure>,
    pub tokenize_p95: Option<Figure>,
    /// `Server-Timing`: queueing and total, from the load report.
    pub timing_queue_p95: Option<Figure>,
    pub timing_total_p95: Option<Figure>,
    /// Mean per-second p95 over the first and the last third of the run.
    pub p95_early: Option<Figure>,
    pub p95_late: Option<Figure>,

    pub client: ClientFacts,
    /// 5xx, timeouts, connect and I/O failures, percent of requests.
    pub failures: Option<Figure>,
    pub failure_kinds: Vec<(String, f64)>,
    /// 4xx answers when the report's error samples show 429s, percent.
    pub throttled: Option<Figure>,
    /// Requests the batcher refused at admission (429), a count.
    pub rejected: Option<Figure>,
    /// … and as a percent of admitted + refused.
    pub rejected_share: Option<f64>,
    /// `batching.max_concurrent_requests`.
    pub capacity: Option<f64>,

    /// Process RSS growth, bytes per second, between the oldest and newest sample.
    pub rss_slope: Option<Figure>,
    /// Every step between consecutive samples grew.
    pub rss_rising_throughout: bool,
    pub memory_available_bytes: Option<f64>,

    pub model_threads: Option<f64>,
    pub cores: Option<f64>,
    pub pool_size: Option<f64>,
    /// Server samples read, and the time between the oldest and the newest.
    pub samples: usize,
    pub sample_span_s: Option<f64>,
}

impl Facts {
    /// Gathers the figures from whatever inputs there are.
    pub fn gather(inputs: &Inputs) -> Facts {
        let mut facts = Facts::default();
        if let Some(s) = &inputs.stats {
            server::gather(&s.samples, &mut facts);
        }
        if let Some(r) = &inputs.report {
            // Second, so the client's view of latency, errors and throughput wins.
            report::gather(&r.report, &mut facts);
        }
        facts
    }
}

/// `Some(v)` when finite.
pub(crate) fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}
