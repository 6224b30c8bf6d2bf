//! The Prometheus recorder (installed once per process), process metrics,
//! the HTTP metrics middleware and the performance monitor's feed.
//!
//! Instrumenting an operation is one thing: record its duration in a
//! histogram named in `osprey_types::metrics` (or the store's). The recorder
//! installed here is Prometheus's, wrapped in [`Tee`]: the duration
//! histograms of routes, pipeline stages, model passes, queue waits and
//! database statements are also recorded into the process's
//! [`PerfMonitor`], which keeps per-operation counts, errors and p50/p95/p99
//! over 1 min, 5 min and 1 h for `/performance/stats` and the alerts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use osprey_perf::{Op, OpKind, PerfMonitor};
use osprey_types::metrics as m;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();
static PERF: OnceLock<PerfMonitor> = OnceLock::new();
/// HTTP requests being served now.
static IN_FLIGHT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// HTTP requests being served now (the instrumented middleware counts them).
pub fn in_flight() -> u64 {
    IN_FLIGHT.load(Ordering::Relaxed)
}

/// Whether durations also feed the performance monitor (`telemetry.instrument`).
static INSTRUMENT: AtomicBool = AtomicBool::new(true);

/// The process's performance monitor.
pub fn perf() -> PerfMonitor {
    PERF.get_or_init(PerfMonitor::new).clone()
}

/// Turns the performance monitor's feed on or off (the HTTP middleware is
/// left out of the router separately).
pub fn set_instrumented(on: bool) {
    INSTRUMENT.store(on, Ordering::Relaxed);
}

/// The operation the performance monitor files a duration histogram under:
/// its kind, its name, whether the sample is a failure, and whether it also
/// counts towards the all-routes operation.
fn operation(key: &Key) -> Option<(OpKind, String, bool, bool)> {
    let label = |name: &str| key.labels().find(|l| l.key() == name).map(|l| l.value().to_string());
    let op = match key.name() {
        m::HTTP_REQUEST_DURATION_SECONDS => {
            let route = label("route").unwrap_or_default();
            let method = label("method").unwrap_or_default();
            let failed = label("status").as_deref() == Some("5xx");
            (OpKind::Route, format!("{method} {route}"), failed, true)
        }
        m::ANALYSIS_STAGE_SECONDS => (OpKind::Stage, label("stage").unwrap_or_default(), false, false),
        m::QUEUE_WAIT_SECONDS => (OpKind::Stage, "queue_wait".into(), false, false),
        m::TOKENIZATION_DURATION_SECONDS => (OpKind::Stage, "tokenize".into(), false, false),
        m::INFERENCE_DURATION_SECONDS => (OpKind::Model, label("model").unwrap_or_default(), false, false),
        osprey_store::metrics::DB_QUERY_DURATION_SECONDS => {
            (OpKind::Statement, label("statement").unwrap_or_default(), false, false)
        }
        osprey_store::metrics::DB_POOL_WAIT_SECONDS => (OpKind::Stage, "db_pool_wait".into(), false, false),
        osprey_store::metrics::STORE_WRITE_BATCH_SECONDS => (OpKind::Stage, "store_write_batch".into(), false, false),
        osprey_cache::metrics::L2_COMMAND_SECONDS => {
            let failed = label("outcome").as_deref() == Some("error");
            (OpKind::Cache, format!("l2 {}", label("op").unwrap_or_default()), failed, false)
        }
        _ => return None,
    };
    Some(op)
}

/// The name of the operation every HTTP request also counts towards; the
/// alerts' latency and error-rate signals read it.
pub const ALL_ROUTES: &str = "all";

/// Prometheus's recorder, with duration histograms also fed to the
/// performance monitor. Tee'd handles are built once per series and reused.
struct Tee {
    inner: PrometheusRecorder,
    perf: PerfMonitor,
    tees: RwLock<HashMap<Key, Histogram>>,
}

struct TeeHistogram {
    prom: Histogram,
    op: Op,
    all: Option<Op>,
    failed: bool,
}

impl HistogramFn for TeeHistogram {
    fn record(&self, value: f64) {
        self.prom.record(value);
        if INSTRUMENT.load(Ordering::Relaxed) {
            let d = Duration::try_from_secs_f64(value).unwrap_or_default();
            self.op.record(d, !self.failed);
            if let Some(all) = &self.all {
                all.record(d, !self.failed);
            }
        }
    }
}

impl Recorder for Tee {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description)
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description)
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description)
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.inner.register_counter(key, metadata)
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.inner.register_gauge(key, metadata)
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        if let Some(h) = self.tees.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(key) {
            return h.clone();
        }
        let prom = self.inner.register_histogram(key, metadata);
        let Some((kind, name, failed, all)) = operation(key) else { return prom };
        let tee = Histogram::from_arc(Arc::new(TeeHistogram {
            prom,
            op: self.perf.op(kind, &name),
            all: all.then(|| self.perf.op(OpKind::Route, ALL_ROUTES)),
            failed,
        }));
        self.tees.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key.clone(), tee.clone());
        tee
    }
}

/// Installs the global recorder on first call and returns its handle. If
/// another recorder is already installed (an embedding program), a detached
/// one is returned so `/metrics` still answers.
pub fn prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), m::DURATION_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(m::BATCH_SIZE.into()), m::BATCH_SIZE_BUCKETS))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(m::BATCH_TOKENS.into()), m::BATCH_TOKENS_BUCKETS))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(m::BATCH_PADDING_RATIO.into()), m::RATIO_BUCKETS))
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            let tee = Tee { inner: recorder, perf: perf(), tees: RwLock::new(HashMap::new()) };
            if metrics::set_global_recorder(tee).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics shows osprey's own recorder only");
            }
            describe();
            osprey_store::metrics::describe();
            osprey_cache::metrics::describe();
            osprey_monitor::metrics::describe();
            let collector = metrics_process::Collector::default();
            collector.describe();
            let _ = PROCESS.set(collector);
            handle
        })
        .clone()
}

/// Renders the Prometheus text exposition, refreshing process metrics first.
pub fn render(handle: &PrometheusHandle) -> String {
    if let Some(c) = PROCESS.get() {
        c.collect();
    }
    handle.render()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(m::HTTP_REQUESTS_TOTAL, "HTTP requests by route template, method and status class");
    describe_histogram!(m::HTTP_REQUEST_DURATION_SECONDS, Unit::Seconds, "HTTP request duration");
    describe_gauge!(m::HTTP_REQUESTS_IN_FLIGHT, "HTTP requests being served");
    describe_gauge!(m::QUEUE_SIZE, "Sequences waiting for a batch");
    describe_histogram!(m::QUEUE_WAIT_SECONDS, Unit::Seconds, "Time a sequence waits in the queue");
    describe_histogram!(m::BATCH_SIZE, "Sequences per batch");
    describe_histogram!(m::BATCH_TOKENS, "Padded tokens per batch");
    describe_histogram!(m::BATCH_PADDING_RATIO, "Share of a batch's tokens that is padding");
    describe_histogram!(m::TOKENIZATION_DURATION_SECONDS, Unit::Seconds, "Tokenization time per request");
    describe_histogram!(m::INFERENCE_DURATION_SECONDS, Unit::Seconds, "Forward pass time per batch");
    describe_counter!(m::REQUESTS_REJECTED_TOTAL, "Requests refused, by reason");
    describe_counter!(m::SEQUENCES_DROPPED_TOTAL, "Queued sequences dropped before inference, by reason");
    describe_counter!(m::EMBEDDINGS_TOTAL, "Vectors returned");
    describe_counter!(m::TOKENS_TOTAL, "Tokens embedded");
    describe_gauge!(m::MODEL_LOAD_SECONDS, Unit::Seconds, "Time to load the model");
    describe_gauge!(m::MODEL_WARMUP_SECONDS, Unit::Seconds, "Time of the warm-up passes");
    describe_gauge!(m::MODEL_WEIGHT_BYTES, Unit::Bytes, "Size of the model's weights file");
    describe_gauge!(m::MODEL_LOADED, "1 while the model is loaded");
    describe_histogram!(m::ANALYSIS_STAGE_SECONDS, Unit::Seconds, "Time per analysis stage");
    describe_counter!(m::ANALYSIS_TEXTS_TOTAL, "Texts or posts analysed, by task");
    describe_counter!(m::EMOTION_PATH_TOTAL, "Emotion answers by the path that produced them");
    describe_counter!(m::EMOTION_FALLBACKS_TOTAL, "Emotion answers that fell back to the lexicon, by reason");
    describe_counter!(m::RESULT_CACHE_REQUESTS_TOTAL, "Result-cache look-ups by task and result");
    describe_counter!(m::RESULT_CACHE_EVICTIONS_TOTAL, "Result-cache evictions by task and cause");
    describe_gauge!(m::QUEUE_ADMITTED_REQUESTS, "Requests admitted to the default model and not yet answered");
    describe_gauge!(m::QUEUE_ADMISSION_LIMIT, "Requests the default model admits at once (max_concurrent_requests)");
    describe_gauge!(m::DB_POOL_CONNECTIONS, "Database pool connections open");
    describe_gauge!(m::DB_POOL_IDLE_CONNECTIONS, "Database pool connections idle");
    describe_gauge!(m::ALERTS_FIRING, "1 while the alert rule fires");
    describe_gauge!(m::ALERT_SIGNAL, "Latest value of each alert signal");
}

/// One request in flight; leaves on drop, so a request whose client went
/// away is not counted forever.
struct InFlight;

fn in_flight_gauge() -> &'static Gauge {
    static GAUGE: OnceLock<Gauge> = OnceLock::new();
    GAUGE.get_or_init(|| metrics::gauge!(m::HTTP_REQUESTS_IN_FLIGHT))
}

impl InFlight {
    fn enter() -> Self {
        in_flight_gauge().increment(1.0);
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
        in_flight_gauge().decrement(1.0);
    }
}

/// The request counter and duration histogram of one route, method and
/// status class, registered once: a request then costs two recorder-free
/// updates instead of two label-set look-ups with allocations.
#[derive(Clone)]
struct RouteSeries {
    requests: Counter,
    duration: Histogram,
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Series by route template, then method, then status class.
type SeriesTable = HashMap<String, Vec<(axum::http::Method, [Option<RouteSeries>; 5])>>;

fn series(route: &str, method: &axum::http::Method, class: usize) -> RouteSeries {
    static TABLE: OnceLock<RwLock<SeriesTable>> = OnceLock::new();
    let table = TABLE.get_or_init(Default::default);
    let found = table.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(route).and_then(|methods| {
        methods.iter().find(|(m, _)| m == method).and_then(|(_, by_class)| by_class[class].clone())
    });
    if let Some(s) = found {
        return s;
    }
    let labels =
        [("route", route.to_string()), ("method", method.as_str().to_string()), ("status", CLASSES[class].to_string())];
    let made = RouteSeries {
        requests: metrics::counter!(m::HTTP_REQUESTS_TOTAL, &labels),
        duration: metrics::histogram!(m::HTTP_REQUEST_DURATION_SECONDS, &labels),
    };
    let mut t = table.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    let methods = t.entry(route.to_string()).or_default();
    let slot = match methods.iter().position(|(m, _)| m == method) {
        Some(i) => &mut methods[i].1,
        None => {
            methods.push((method.clone(), Default::default()));
            &mut methods.last_mut().expect("just pushed").1
        }
    };
    slot[class].get_or_insert(made).clone()
}

/// Counts and times every request by route template and status class.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    // Any method token is valid HTTP; only the standard ones become labels,
    // so a client cannot mint series.
    let method = match *req.method() {
        Method::GET | Method::POST | Method::PUT | Method::DELETE | Method::HEAD | Method::OPTIONS | Method::PATCH => {
            req.method().clone()
        }
        _ => Method::from_bytes(b"OTHER").unwrap_or_default(),
    };
    let started = Instant::now();
    let flight = InFlight::enter();
    let (mut resp, stages) = osprey_engine::timing::scope(next.run(req)).await;
    drop(flight);
    let elapsed = started.elapsed();
    if let Some(v) = server_timing(&stages, elapsed) {
        resp.headers_mut().insert(axum::http::HeaderName::from_static("server-timing"), v);
    }
    let class = match resp.status().as_u16() {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    };
    let s = series(route.as_ref().map_or("unmatched", MatchedPath::as_str), &method, class);
    s.requests.increment(1);
    s.duration.record(elapsed.as_secs_f64());
    resp
}

/// `Server-Timing: queue;dur=1.200, tokenize;dur=0.300, inference;dur=4.000, total;dur=5.800`
/// (milliseconds): where the request's time went on the server, so a load
/// tester can split what it saw into network, queueing and service time.
fn server_timing(stages: &[(&'static str, Duration)], total: Duration) -> Option<axum::http::HeaderValue> {
    use std::fmt::Write as _;
    let mut v = String::with_capacity(24 * (stages.len() + 1));
    for (name, d) in stages {
        let _ = write!(v, "{name};dur={:.3}, ", d.as_secs_f64() * 1000.0);
    }
    let _ = write!(v, "total;dur={:.3}", total.as_secs_f64() * 1000.0);
    axum::http::HeaderValue::from_str(&v).ok()
}
