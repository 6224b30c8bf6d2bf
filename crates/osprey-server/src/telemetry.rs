//! The Prometheus recorder (installed once per process), process metrics and
//! the HTTP metrics middleware.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use osprey_types::metrics as m;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();

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
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics shows osprey's own recorder only");
            }
            describe();
            osprey_store::metrics::describe();
            osprey_cache::metrics::describe();
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
}

/// Counts and times every request by route template and status class.
pub async fn track(req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    metrics::gauge!(m::HTTP_REQUESTS_IN_FLIGHT).increment(1.0);
    let resp = next.run(req).await;
    metrics::gauge!(m::HTTP_REQUESTS_IN_FLIGHT).decrement(1.0);
    let class = match resp.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let labels = [("route", route), ("method", method), ("status", class.to_string())];
    metrics::counter!(m::HTTP_REQUESTS_TOTAL, &labels).increment(1);
    metrics::histogram!(m::HTTP_REQUEST_DURATION_SECONDS, &labels).record(started.elapsed().as_secs_f64());
    resp
}
