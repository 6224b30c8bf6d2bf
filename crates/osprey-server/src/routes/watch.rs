//! Watches: `POST /v1/ingest/{name}` (the push source), `GET /v1/watches`,
//! `GET /v1/watches/{name}` and `GET /v1/watches/{name}/dead-letters`.
//!
//! An ingest answers once its posts went through the pipeline and were
//! committed: the response is each post's fate (kept with its topic,
//! duplicate, near-duplicate, filtered, invalid), and a 2xx means they
//! are stored. Only servers started with `osprey watch` run watches.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use osprey_types::analysis::Post;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::watch::{Watch, PUSH_SOURCE};

/// Posts per ingest request.
pub const MAX_INGEST_POSTS: usize = 10_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/ingest/{name}", post(ingest))
        .route("/v1/watches", get(list))
        .route("/v1/watches/{name}", get(one))
        .route("/v1/watches/{name}/dead-letters", get(dead_letters))
}

fn watch<'a>(state: &'a AppState, name: &str) -> ApiResult<&'a std::sync::Arc<Watch>> {
    let watches = state
        .watches
        .as_ref()
        .ok_or_else(|| ApiError::not_found("this server runs no watches; start it with `osprey watch`"))?;
    watches.get(name).ok_or_else(|| {
        ApiError::not_found(format!("no watch named {name:?}; watches here: {}", watches.names().join(", ")))
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    pub posts: Vec<Post>,
}

/// Runs pushed posts through a push watch's pipeline and stores them.
pub async fn ingest(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<IngestRequest>,
) -> ApiResult<Json<Value>> {
    let w = watch(&state, &name)?;
    if !w.def.push {
        return Err(ApiError::validation(format!("watch {name:?} does not take pushed posts (set `push = true`)")));
    }
    if req.posts.is_empty() || req.posts.len() > MAX_INGEST_POSTS {
        return Err(ApiError::validation(format!("`posts` must hold 1 to {MAX_INGEST_POSTS} posts")));
    }
    let mut posts = req.posts;
    for p in &mut posts {
        if p.source.is_none() {
            p.source = Some(PUSH_SOURCE.to_string());
        }
    }
    let mut reports = Vec::new();
    let size = w.def.batch_size;
    let mut rest = posts;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(size));
        let chunk = std::mem::replace(&mut rest, tail);
        match w.process(PUSH_SOURCE, chunk, &Value::Null).await {
            Ok(r) => reports.push(r),
            Err(e) => {
                w.record_error(&e.message);
                return Err(e);
            }
        }
    }
    let mut total = crate::watch::BatchReport::default();
    for r in reports {
        total.received += r.received;
        total.kept += r.kept;
        total.duplicate += r.duplicate;
        total.near_duplicate += r.near_duplicate;
        total.filtered += r.filtered;
        total.invalid += r.invalid;
        total.posts.extend(r.posts);
    }
    Ok(Json(serde_json::to_value(total).unwrap_or(Value::Null)))
}

pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    match &state.watches {
        Some(w) => Ok(Json(w.status().await)),
        None => Ok(Json(serde_json::json!({ "watches": [] }))),
    }
}

pub async fn one(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let w = watch(&state, &name)?;
    Ok(Json(crate::watch::status_of(w).await))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Alerts given up on, newest first (admin: they hold the alerts' contents).
pub async fn dead_letters(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<DeadLetterQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let w = watch(&state, &name)?;
    let Query(q) = q.map_err(|e| ApiError::invalid(format!("bad query string: {}", e.body_text())))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::validation("`limit` must be 1 to 1000"));
    }
    let store = w.store().ok_or_else(|| ApiError::not_found("storage is off: dead letters were logged instead"))?;
    let letters = store.dead_letters(&name, limit).await.map_err(super::store::store_error)?;
    Ok(Json(serde_json::json!({ "dead_letters": letters })))
}
