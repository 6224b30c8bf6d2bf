//! Storage read routes: `GET /v1/posts/{id}`, `GET /v1/posts`,
//! `GET /v1/analyses/{id}` and `GET /v1/stats/emotions`.
//!
//! With storage off (`store.enabled = false`) they answer 404 with a
//! message saying so, rather than pretending nothing was stored.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use osprey_store::{Bucket, Store, StoreError};
use osprey_types::error::{ErrorBody, ErrorCode};
use osprey_types::store::{EmotionStatsQuery, EmotionStatsResponse, PostPage, PostsQuery, StoredAnalysis, StoredPost};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::storage::{parse_time, wire_analysis, wire_bucket, wire_post};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/posts", get(list_posts))
        .route("/v1/posts/{id}", get(get_post))
        .route("/v1/analyses/{id}", get(get_analysis))
        .route("/v1/stats/emotions", get(emotion_stats))
        .route("/v1/stats/emotions/refresh", axum::routing::post(refresh_emotion_stats))
}

fn store(state: &AppState) -> ApiResult<&Store> {
    state.store.as_ref().ok_or_else(|| ApiError::not_found("storage is off on this server (store.enabled = false)"))
}

/// A store failure as the client sees it: a bad cursor is theirs (400);
/// anything else is the database's, and says nothing internal (503).
pub(crate) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::BadCursor(why) => ApiError::invalid(format!("`cursor` is not one this server gave out: {why}")),
        other => {
            tracing::error!(error = %other, "storage request failed");
            ApiError::new(ErrorCode::NotReady, "storage is unavailable; retry shortly")
        }
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(v)| v).map_err(|e| ApiError::invalid(format!("bad query string: {}", e.body_text())))
}

/// A stored post with every analysis of it, newest first.
#[utoipa::path(get, path = "/v1/posts/{id}", tag = "Storage",
    params(("id" = String, Path, description = "The client's post id")),
    responses(
        (status = 200, body = StoredPost),
        (status = 404, description = "No such post, or storage off", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn get_post(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<StoredPost>> {
    let post = store(&state)?.get_post(&id).await.map_err(store_error)?;
    let post = post.ok_or_else(|| ApiError::not_found(format!("no stored post with id {id:?}")))?;
    Ok(Json(wire_post(post.post, post.analyses)))
}

/// Stored posts, newest first, filtered by persona, topic and time, one
/// page at a time (keyset pagination: pages stay consistent while new posts
/// arrive).
#[utoipa::path(get, path = "/v1/posts", tag = "Storage", params(PostsQuery),
    responses(
        (status = 200, body = PostPage),
        (status = 400, description = "Bad query string or cursor", body = ErrorBody),
        (status = 422, description = "Limit out of range or since after until", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn list_posts(
    State(state): State<AppState>,
    q: Result<Query<PostsQuery>, QueryRejection>,
) -> ApiResult<Json<PostPage>> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation(format!("`limit` is {limit}; give 1 to 500")));
    }
    let (since, until) = (parse_time(q.since.as_deref(), "since")?, parse_time(q.until.as_deref(), "until")?);
    if let (Some(s), Some(u)) = (since, until) {
        if s >= u {
            return Err(ApiError::validation("`since` must be before `until`"));
        }
    }
    let page = store(&state)?
        .list_posts(&osprey_store::PostQuery {
            persona_id: q.persona_id,
            topic: q.topic,
            since,
            until,
            cursor: q.cursor,
            limit,
        })
        .await
        .map_err(store_error)?;
    Ok(Json(PostPage {
        posts: page.posts.into_iter().map(|p| wire_post(p, Vec::new())).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One stored analysis by its id (the `analysis_ids` of `/v1/analyze`).
#[utoipa::path(get, path = "/v1/analyses/{id}", tag = "Storage",
    params(("id" = String, Path, description = "Analysis id (UUIDv7)")),
    responses((status = 200, body = StoredAnalysis), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn get_analysis(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<StoredAnalysis>> {
    let row = store(&state)?.get_analysis(&id).await.map_err(store_error)?;
    let row = row.ok_or_else(|| ApiError::not_found(format!("no stored analysis with id {id:?}")))?;
    Ok(Json(wire_analysis(row)))
}

/// Mean emotion distribution per day (or hour), persona and topic. On
/// PostgreSQL daily figures come from a materialized view refreshed on a
/// schedule (`store.aggregate_refresh_interval`); everything else is live.
#[utoipa::path(get, path = "/v1/stats/emotions", tag = "Storage", params(EmotionStatsQuery),
    responses(
        (status = 200, body = EmotionStatsResponse),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn emotion_stats(
    State(state): State<AppState>,
    q: Result<Query<EmotionStatsQuery>, QueryRejection>,
) -> ApiResult<Json<EmotionStatsResponse>> {
    let q = query(q)?;
    let bucket = match q.bucket.as_deref().unwrap_or("day") {
        "day" => Bucket::Day,
        "hour" => Bucket::Hour,
        other => return Err(ApiError::validation(format!("`bucket` {other:?} is not one of day, hour"))),
    };
    let (since, until) = (parse_time(q.since.as_deref(), "since")?, parse_time(q.until.as_deref(), "until")?);
    let store = store(&state)?;
    let stats = store
        .emotion_stats(&osprey_store::EmotionStatsQuery {
            persona_id: q.persona_id,
            topic: q.topic,
            since,
            until,
            bucket,
        })
        .await
        .map_err(store_error)?;
    let from_view = store.backend() == osprey_store::Backend::Postgres && bucket == Bucket::Day;
    Ok(Json(EmotionStatsResponse {
        bucket: if bucket == Bucket::Day { "day" } else { "hour" }.into(),
        computed_from: if from_view { "materialized_view" } else { "live" }.into(),
        buckets: stats.into_iter().map(wire_bucket).collect(),
    }))
}

/// Refreshes the aggregate view now, rather than at the next scheduled
/// refresh (PostgreSQL; on SQLite figures are always live and this is a
/// no-op).
#[utoipa::path(post, path = "/v1/stats/emotions/refresh", tag = "Storage",
    responses((status = 204, description = "Refreshed"), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[tracing::instrument(skip_all)]
pub async fn refresh_emotion_stats(State(state): State<AppState>) -> ApiResult<axum::http::StatusCode> {
    store(&state)?.refresh_aggregates().await.map_err(store_error)?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
