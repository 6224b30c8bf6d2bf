//! Probes and metrics: `/health` (liveness), `/ready` (readiness), `/metrics`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use osprey_types::api::ProbeResponse;
use osprey_types::error::{ErrorBody, ErrorCode};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/health", get(health)).route("/ready", get(ready)).route("/metrics", get(metrics))
}

/// Liveness: the process answers (while draining too). Touches nothing else.
#[utoipa::path(get, path = "/health", tag = "Probes", responses((status = 200, body = ProbeResponse)))]
pub async fn health() -> Json<ProbeResponse> {
    Json(ProbeResponse { status: "ok".into() })
}

/// Readiness: the server is not shutting down, the default model is loaded
/// and warmed up, VADER's lexicon is loaded, and a preloaded emotion model
/// has finished loading. From a shutdown signal on it answers 503
/// ("draining") while requests are still served, so load balancers stop
/// sending before the listener closes.
#[utoipa::path(get, path = "/ready", tag = "Probes",
    responses((status = 200, body = ProbeResponse), (status = 503, description = "Not ready, with the reason", body = ErrorBody)))]
pub async fn ready(State(state): State<AppState>) -> ApiResult<Json<ProbeResponse>> {
    if state.lifecycle.is_draining() {
        return Err(ApiError::new(ErrorCode::NotReady, "draining"));
    }
    state.registry.readiness().map_err(|reason| ApiError::new(ErrorCode::NotReady, reason))?;
    state.analyzer.readiness().map_err(|reason| ApiError::new(ErrorCode::NotReady, reason))?;
    Ok(Json(ProbeResponse { status: "ready".into() }))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "Probes", responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = crate::telemetry::render(&state.metrics);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
