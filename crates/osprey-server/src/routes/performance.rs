//! The storage and cache part of the performance API:
//! `GET /performance/cache/stats`, `POST /performance/cache/clear` and
//! `GET /performance/database`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use osprey_cache::{Kind, Tier};
use osprey_types::error::ErrorBody;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/performance/cache/stats", get(cache_stats))
        .route("/performance/cache/clear", post(cache_clear))
        .route("/performance/database", get(database))
}

/// Which entries `POST /performance/cache/clear` removes; an absent field
/// means every tier (or kind).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClearRequest {
    /// `l1` or `l2`.
    pub tier: Option<String>,
    /// `prediction`, `metadata` or `response`.
    pub kind: Option<String>,
}

/// Hits, misses, evictions, entries and bytes per tier and kind; Redis
/// state, errors and circuit breaker.
#[utoipa::path(get, path = "/performance/cache/stats", tag = "Performance",
    responses((status = 200, description = "osprey-cache's CacheStats", body = Object)))]
pub async fn cache_stats(State(state): State<AppState>) -> Json<osprey_cache::CacheStats> {
    Json(state.cache.stats())
}

/// Removes cached entries by tier and kind.
#[utoipa::path(post, path = "/performance/cache/clear", tag = "Performance", request_body = ClearRequest,
    responses(
        (status = 200, description = "What was removed", body = Object),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "Redis unavailable for an L2 clear", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(tier = ?req.tier, kind = ?req.kind))]
pub async fn cache_clear(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ClearRequest>,
) -> ApiResult<Json<osprey_cache::ClearReport>> {
    let tier = match req.tier.as_deref() {
        None => None,
        Some("l1") => Some(Tier::L1),
        Some("l2") => Some(Tier::L2),
        Some(other) => return Err(ApiError::validation(format!("`tier` {other:?} is not one of l1, l2"))),
    };
    let kind = match req.kind.as_deref() {
        None => None,
        Some(k) => Some(Kind::ALL.into_iter().find(|kind| kind.as_str() == k).ok_or_else(|| {
            ApiError::validation(format!("`kind` {k:?} is not one of prediction, metadata, response"))
        })?),
    };
    let report = state.cache.clear(tier, kind).await.map_err(|e| {
        tracing::warn!(error = %e, "cache clear failed");
        ApiError::new(osprey_types::error::ErrorCode::NotReady, format!("cache clear failed: {e}"))
    })?;
    tracing::info!(?report, "cache cleared");
    Ok(Json(report))
}

/// The database side: backend, pool state, per-statement timing (pool wait
/// apart from execution) and the slow-query log.
#[utoipa::path(get, path = "/performance/database", tag = "Performance",
    responses(
        (status = 200, description = "osprey-store's QueryStats", body = Object),
        (status = 404, description = "Storage off", body = ErrorBody),
    ))]
pub async fn database(State(state): State<AppState>) -> ApiResult<Json<osprey_store::QueryStats>> {
    let store = state
        .store
        .as_ref()
        .ok_or_else(|| ApiError::not_found("storage is off on this server (store.enabled = false)"))?;
    Ok(Json(store.query_stats()))
}
