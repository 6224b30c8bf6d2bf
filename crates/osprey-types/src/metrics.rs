//! Every metric name osprey exports, in one place. Names carry the `osprey_`
//! prefix and base units (`_seconds`, `_bytes`, `_total`); labels come from
//! small fixed sets (route templates, status classes, model names).

pub const HTTP_REQUESTS_TOTAL: &str = "osprey_http_requests_total";
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "osprey_http_request_duration_seconds";
pub const HTTP_REQUESTS_IN_FLIGHT: &str = "osprey_http_requests_in_flight";

pub const QUEUE_SIZE: &str = "osprey_queue_size";
pub const QUEUE_WAIT_SECONDS: &str = "osprey_queue_wait_seconds";
pub const BATCH_SIZE: &str = "osprey_batch_size";
pub const BATCH_TOKENS: &str = "osprey_batch_tokens";
pub const BATCH_PADDING_RATIO: &str = "osprey_batch_padding_ratio";
pub const TOKENIZATION_DURATION_SECONDS: &str = "osprey_tokenization_duration_seconds";
pub const INFERENCE_DURATION_SECONDS: &str = "osprey_inference_duration_seconds";
pub const REQUESTS_REJECTED_TOTAL: &str = "osprey_requests_rejected_total";
pub const SEQUENCES_DROPPED_TOTAL: &str = "osprey_sequences_dropped_total";
pub const EMBEDDINGS_TOTAL: &str = "osprey_embeddings_total";
pub const TOKENS_TOTAL: &str = "osprey_tokens_total";

pub const MODEL_LOAD_SECONDS: &str = "osprey_model_load_seconds";
pub const MODEL_WARMUP_SECONDS: &str = "osprey_model_warmup_seconds";
pub const MODEL_WEIGHT_BYTES: &str = "osprey_model_weight_bytes";
pub const MODEL_LOADED: &str = "osprey_model_loaded";

/// Histogram buckets for durations, in seconds (100 µs to 60 s).
pub const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Buckets for sequences per batch.
pub const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// Buckets for padded tokens per batch.
pub const BATCH_TOKENS_BUCKETS: &[f64] =
    &[16.0, 64.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0, 65536.0];
/// Buckets for ratios in [0, 1].
pub const RATIO_BUCKETS: &[f64] = &[0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// Time per analysis stage (`stage`: segment, sentiment, emotion, embed,
/// trajectory, summary, topics).
pub const ANALYSIS_STAGE_SECONDS: &str = "osprey_analysis_stage_seconds";
/// Texts analysed, by task.
pub const ANALYSIS_TEXTS_TOTAL: &str = "osprey_analysis_texts_total";
/// Emotion answers by the path that produced them (`model`, `ensemble`, `lexicon`).
pub const EMOTION_PATH_TOTAL: &str = "osprey_emotion_path_total";
/// Emotion answers that fell back to the lexicon (`reason`: no_model, model_failed, model_error, disabled).
pub const EMOTION_FALLBACKS_TOTAL: &str = "osprey_emotion_fallbacks_total";
/// `/v1/analyze` posts answered from stored analyses of the same content.
pub const ANALYSIS_REUSED_TOTAL: &str = "osprey_analysis_reused_total";
/// Stored-analysis look-ups that failed or timed out (`reason`), so the posts were computed.
pub const ANALYSIS_STORE_LOOKUP_FAILURES_TOTAL: &str = "osprey_analysis_store_lookup_failures_total";
/// `/v1/analyze` posts answered but not stored (`reason`: queue_full).
pub const ANALYSIS_STORE_SKIPPED_TOTAL: &str = "osprey_analysis_store_skipped_total";
/// Result-cache look-ups by task and `result` (hit, miss).
pub const RESULT_CACHE_REQUESTS_TOTAL: &str = "osprey_result_cache_requests_total";
/// Result-cache evictions by task and `cause` (size, expired, replaced, explicit).
pub const RESULT_CACHE_EVICTIONS_TOTAL: &str = "osprey_result_cache_evictions_total";

/// Requests admitted to the default model and not yet answered (gauge).
pub const QUEUE_ADMITTED_REQUESTS: &str = "osprey_queue_admitted_requests";
/// `batching.max_concurrent_requests` of the default model (gauge).
pub const QUEUE_ADMISSION_LIMIT: &str = "osprey_queue_admission_limit";
/// Database pool connections open and idle (gauges, label-free).
pub const DB_POOL_CONNECTIONS: &str = "osprey_db_pool_connections";
pub const DB_POOL_IDLE_CONNECTIONS: &str = "osprey_db_pool_idle_connections";
/// 1 while an alert rule fires (`rule`, `severity`), else 0.
pub const ALERTS_FIRING: &str = "osprey_alerts_firing";
/// The latest value of each alert signal (`signal`), as the built-in rules see it.
pub const ALERT_SIGNAL: &str = "osprey_alert_signal";

/// Posts a watch received, by watch and outcome (`kept`, `duplicate`,
/// `near_duplicate`, `filtered`, `invalid`).
pub const WATCH_POSTS_TOTAL: &str = "osprey_watch_posts_total";
/// Batches a watch committed, by watch and source.
pub const WATCH_BATCHES_TOTAL: &str = "osprey_watch_batches_total";
/// Source and pipeline errors, by watch and kind (`source`, `pipeline`).
pub const WATCH_ERRORS_TOTAL: &str = "osprey_watch_errors_total";
/// Alerts by watch, target and outcome (`sent`, `retried`, `dead_letter`).
pub const WATCH_ALERTS_TOTAL: &str = "osprey_watch_alerts_total";
