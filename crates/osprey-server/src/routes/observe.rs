//! The observability part of the performance API: `health`, `stats`,
//! `system/resources`, `memory` and `memory/cleanup`, `tasks`, `alerts`,
//! `recommendations`, and the `live` event stream the dashboard draws from.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use osprey_types::error::ErrorBody;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::observe::{advice, memory, LiveEvent};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/performance/health", get(health))
        .route("/performance/stats", get(stats))
        .route("/performance/system/resources", get(resources))
        .route("/performance/memory", get(memory_report))
        .route("/performance/memory/cleanup", post(memory_cleanup))
        .route("/performance/tasks", get(tasks))
        .route("/performance/alerts", get(alerts))
        .route("/performance/recommendations", get(recommendations))
        .route("/performance/live", get(live))
}

/// One component's state in `/performance/health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Component {
    /// `ok`, `degraded` or `down`.
    pub status: &'static str,
    pub detail: String,
}

fn component(status: &'static str, detail: impl Into<String>) -> Component {
    Component { status, detail: detail.into() }
}

/// Overall status and each component's: model, emotion model, storage,
/// cache tiers, queue, alerts. `down` (503) when the default model cannot
/// serve; `degraded` (200) when a part works below par.
#[utoipa::path(get, path = "/performance/health", tag = "Performance",
    responses((status = 200, description = "ok or degraded", body = Object),
              (status = 503, description = "down", body = Object)))]
pub async fn health(State(state): State<AppState>) -> Response {
    let mut parts = serde_json::Map::new();
    let model = match state.registry.readiness() {
        Ok(()) => component("ok", "default model loaded"),
        Err(reason) => {
            let failed = state.registry.status().iter().any(|m| m.last_error.is_some());
            component(if failed { "down" } else { "degraded" }, reason)
        }
    };
    parts.insert("model".into(), json!(model));
    let emotion = match state.analyzer.readiness() {
        Ok(()) => component("ok", "sentiment lexicon and emotion path ready"),
        Err(reason) => component("degraded", reason),
    };
    parts.insert("analysis".into(), json!(emotion));
    let storage = match &state.store {
        None => component("ok", "storage off (store.enabled = false)"),
        Some(store) => {
            let (pool, depth, cap) = store.pool_and_queue();
            let full = cap > 0 && depth * 10 >= cap * 9;
            component(
                if full { "degraded" } else { "ok" },
                format!(
                    "{:?}: pool {} open, {} idle; writer queue {depth}/{cap}",
                    store.backend(),
                    pool.size,
                    pool.idle
                ),
            )
        }
    };
    parts.insert("storage".into(), json!(storage));
    let l1 = state.cache.stats().l1;
    parts.insert(
        "cache_l1".into(),
        json!(component("ok", format!("{} entries, {} bytes", l1.total.entries, l1.total.bytes))),
    );
    let l2 = match state.cache.l2_state() {
        osprey_cache::L2State::Disabled => component("ok", "not configured"),
        osprey_cache::L2State::Up => component("ok", "connected"),
        other => component("degraded", format!("{other:?}; serving from L1")),
    };
    parts.insert("cache_l2".into(), json!(l2));
    let queue = match state.registry.loaded(state.registry.default_name()) {
        Some(e) => {
            let (n, cap) = e.admission();
            let st = if cap > 0 && n * 10 >= cap * 9 { "degraded" } else { "ok" };
            component(st, format!("{n}/{cap} requests admitted, {} sequences queued", e.stats().queued))
        }
        None => component("degraded", "model not loaded"),
    };
    parts.insert("queue".into(), json!(queue));
    let active = state.observe.alerts.active();
    let critical = active.iter().filter(|a| a.severity == osprey_perf::Severity::Critical).count();
    let alerts = component(
        if critical > 0 { "degraded" } else { "ok" },
        format!("{} active ({critical} critical)", active.len()),
    );
    parts.insert("alerts".into(), json!(alerts));
    let worst = parts.values().filter_map(|c| c["status"].as_str()).fold("ok", |w, s| match (w, s) {
        ("down", _) | (_, "down") => "down",
        ("degraded", _) | (_, "degraded") => "degraded",
        _ => "ok",
    });
    let code = if worst == "down" { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let body = json!({
        "status": worst,
        "uptime_seconds": state.observe.uptime().as_secs_f64(),
        "version": env!("CARGO_PKG_VERSION"),
        "components": parts,
    });
    (code, Json(body)).into_response()
}

/// Everything the monitors know: per-operation windows (routes, stages,
/// models, statements), the latest live snapshot, the newest resource
/// sample, the monitor's own cost and the task counters.
#[utoipa::path(get, path = "/performance/stats", tag = "Performance",
    responses((status = 200, description = "operations, live snapshot, resources, tasks", body = Object)))]
pub async fn stats(State(state): State<AppState>) -> Json<Value> {
    let obs = &state.observe;
    Json(json!({
        "uptime_seconds": obs.uptime().as_secs_f64(),
        "operations": obs.perf.snapshot().ops,
        "live": obs.latest(),
        "resources": obs.monitor.latest(),
        "monitor_cost": obs.monitor.cost(),
        "tasks": task_report(&state),
        "events": obs.recent_logs(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResourcesQuery {
    /// `fine` (1 s samples, the last hour) or `coarse` (1 min averages, the last day).
    pub resolution: Option<String>,
    /// Only samples at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
}

/// The newest resource sample and the history at one resolution.
#[utoipa::path(get, path = "/performance/system/resources", tag = "Performance", params(ResourcesQuery),
    responses((status = 200, description = "latest sample and history", body = Object),
              (status = 422, body = ErrorBody)))]
pub async fn resources(State(state): State<AppState>, Query(q): Query<ResourcesQuery>) -> ApiResult<Json<Value>> {
    let resolution = match q.resolution.as_deref() {
        None | Some("fine") => osprey_monitor::Resolution::Fine,
        Some("coarse") => osprey_monitor::Resolution::Coarse,
        Some(other) => {
            return Err(crate::error::ApiError::validation(format!(
                "`resolution` {other:?} is not one of fine, coarse"
            )))
        }
    };
    let m = &state.observe.monitor;
    Ok(Json(json!({
        "latest": m.latest(),
        "resolution": resolution,
        "history": m.history(resolution, q.since_ms),
        "cost": m.cost(),
    })))
}

/// Memory by holder: the process (RSS, peak, virtual), the L1 cache, the
/// models' weights, the store writer's queue.
#[utoipa::path(get, path = "/performance/memory", tag = "Performance",
    responses((status = 200, description = "memory by holder", body = Object)))]
pub async fn memory_report(State(state): State<AppState>) -> Json<Value> {
    Json(memory::report(&state))
}

/// Frees what can be freed: L1 maintenance (and, when asked, all of L1),
/// models idle for `idle_for`, then returns freed heap pages to the OS.
#[utoipa::path(post, path = "/performance/memory/cleanup", tag = "Performance",
    request_body = memory::CleanupRequest,
    responses((status = 200, description = "what was freed, RSS before and after", body = Object),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn memory_cleanup(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<memory::CleanupRequest>,
) -> ApiResult<Json<Value>> {
    let report = memory::cleanup(&state, &req)?;
    state.observe.log("info", format!("memory cleanup: {}", report["summary"].as_str().unwrap_or("")));
    Ok(Json(report))
}

fn task_report(state: &AppState) -> Value {
    let model = state.registry.loaded(state.registry.default_name()).map(|e| {
        let s = e.stats();
        let (in_flight, capacity) = e.admission();
        json!({
            "queue_depth": s.queued,
            "in_flight": in_flight,
            "capacity": capacity,
            "completed": s.sequences,
            "batches": s.batches,
            "timed_out": s.dropped_timeout,
            "disconnected": s.dropped_disconnected,
            "failed": s.failed,
            "rejected": e.rejected(),
        })
    });
    let writer = state.store.as_ref().map(|s| s.query_stats().writer);
    json!({
        "http_in_flight": crate::telemetry::in_flight(),
        "model": model,
        "store_writer": writer,
    })
}

/// Queue depth, in flight, completed, timed out, rejected: the model's
/// batcher and the store's writer.
#[utoipa::path(get, path = "/performance/tasks", tag = "Performance",
    responses((status = 200, description = "task counters", body = Object)))]
pub async fn tasks(State(state): State<AppState>) -> Json<Value> {
    Json(task_report(&state))
}

/// Active alerts, history with start and end, every rule's state, and the
/// webhook's delivery counters.
#[utoipa::path(get, path = "/performance/alerts", tag = "Performance",
    responses((status = 200, description = "active, history, rules", body = Object)))]
pub async fn alerts(State(state): State<AppState>) -> Json<Value> {
    let a = &state.observe.alerts;
    Json(json!({
        "active": a.active(),
        "history": a.history(),
        "rules": a.rule_states(),
        "webhook": a.webhook_stats(),
    }))
}

/// What to change, derived from the alerts and the live figures: each with
/// priority, the setting, the evidence and the expected effect.
#[utoipa::path(get, path = "/performance/recommendations", tag = "Performance",
    responses((status = 200, description = "recommendations", body = Object)))]
pub async fn recommendations(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "recommendations": advice::recommend(&state) }))
}

/// Server-sent events: `hello` (history), then `snapshot` every
/// `telemetry.live_interval`, `alert` on each alert transition and `log` for
/// notable events.
#[utoipa::path(get, path = "/performance/live", tag = "Performance",
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream", body = String)))]
pub async fn live(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (rx, history, logs) = state.observe.subscribe();
    let interval_ms = state.settings.telemetry.live_interval.as_millis() as u64;
    let hello = json!({ "version": 1, "interval_ms": interval_ms, "history": history, "events": logs });
    let first = Event::default().event("hello").data(hello.to_string());
    let stream = futures::stream::unfold((Some(first), rx), |(first, mut rx)| async move {
        if let Some(ev) = first {
            return Some((Ok(ev), (None, rx)));
        }
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    let event = match ev {
                        LiveEvent::Snapshot(s) => Event::default().event("snapshot").json_data(&*s),
                        LiveEvent::Alert(a) => Event::default().event("alert").json_data(&a),
                        LiveEvent::Log(l) => Event::default().event("log").json_data(&l),
                    };
                    match event {
                        Ok(e) => return Some((Ok(e), (None, rx))),
                        Err(e) => tracing::warn!(error = %e, "live event not serialisable"),
                    }
                }
                // A slow client missed some events; the next snapshot is whole.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
