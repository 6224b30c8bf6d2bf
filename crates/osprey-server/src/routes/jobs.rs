//! Batch jobs: `POST /v1/jobs` (posts, or a source to backfill),
//! `GET /v1/jobs`, `GET /v1/jobs/{id}` (progress, rate, ETA) and
//! `DELETE /v1/jobs/{id}` (cancel).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use osprey_jobs::{JobError, JobId, JobSpec, Jobs};
use osprey_types::analysis::{AnalyzeRequest, Post};
use osprey_types::error::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;

/// Longest a backfill may read its source.
const BACKFILL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3_600);

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/jobs", get(list).post(create)).route("/v1/jobs/{id}", get(status).delete(cancel))
}

fn jobs(state: &AppState) -> ApiResult<&Jobs> {
    state.jobs.as_ref().ok_or_else(|| ApiError::not_found("batch jobs are off on this server"))
}

pub(crate) fn job_error(e: JobError) -> ApiError {
    let code = match e.http_status() {
        404 => ErrorCode::NotFound,
        409 => ErrorCode::ValidationError,
        413 => ErrorCode::PayloadTooLarge,
        400 => ErrorCode::InvalidRequest,
        503 => ErrorCode::NotReady,
        _ => ErrorCode::Internal,
    };
    if code == ErrorCode::Internal || code == ErrorCode::NotReady {
        tracing::error!(error = %e, "job queue failure");
    }
    ApiError::new(code, e.to_string())
}

fn parse_id(id: &str) -> ApiResult<JobId> {
    JobId::parse(id).map_err(|_| ApiError::not_found(format!("no job with id {id:?}")))
}

/// `POST /v1/jobs`: `posts` or `source` (with `max_posts`), a `label`, and
/// the analysis as `/v1/analyze` takes it (its request without `posts`,
/// unknown fields refused).
#[derive(Debug)]
pub struct CreateJob {
    pub label: Option<String>,
    pub posts: Option<Vec<Post>>,
    pub source: Option<osprey_watch::SourceConfig>,
    pub max_posts: Option<usize>,
    /// Stored as the job's options; each chunk fills in its posts.
    pub analysis: AnalyzeRequest,
}

impl CreateJob {
    /// Takes the job's own fields out of `body`; the rest is the analysis.
    fn parse(mut body: serde_json::Map<String, Value>) -> ApiResult<Self> {
        fn field<T: serde::de::DeserializeOwned>(
            body: &mut serde_json::Map<String, Value>,
            key: &str,
        ) -> ApiResult<Option<T>> {
            match body.remove(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => serde_json::from_value(v).map(Some).map_err(|e| ApiError::invalid(format!("`{key}`: {e}"))),
            }
        }
        Ok(Self {
            label: field(&mut body, "label")?,
            posts: field(&mut body, "posts")?,
            source: field(&mut body, "source")?,
            max_posts: field(&mut body, "max_posts")?,
            analysis: {
                // Jobs always store and reuse: that is what makes a chunk
                // delivered twice harmless.
                if body.contains_key("store") || body.contains_key("reuse") {
                    return Err(ApiError::validation("a job always stores and reuses; drop `store` and `reuse`"));
                }
                body.insert("posts".into(), Value::Array(Vec::new()));
                serde_json::from_value(Value::Object(body)).map_err(|e| ApiError::invalid(e.to_string()))?
            },
        })
    }
}

pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<serde_json::Map<String, Value>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req = CreateJob::parse(body)?;
    let jobs = jobs(&state)?;
    let analysis = &req.analysis;
    if analysis.tasks.is_empty() {
        return Err(ApiError::validation(
            "`tasks` cannot be empty; ask for any of sentiment, emotion, trajectory, summary, topics",
        ));
    }
    if analysis.tasks.contains(&osprey_types::analysis::Task::Topics) && analysis.topic_set.is_none() {
        return Err(ApiError::validation("the `topics` task needs `topic_set`"));
    }
    let limit = jobs.settings().max_posts_per_job;
    let options = serde_json::to_value(analysis).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let spec = |total: Option<u64>| JobSpec { label: req.label.clone(), options: options.clone(), sealed_total: total };
    match (req.posts, req.source) {
        (Some(posts), None) => {
            if posts.is_empty() {
                return Err(ApiError::validation("`posts` cannot be empty"));
            }
            if posts.len() > limit {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("a job holds at most {limit} posts (jobs.max_posts_per_job)"),
                ));
            }
            if let Some(p) = posts.iter().find(|p| p.id.trim().is_empty()) {
                return Err(ApiError::validation(format!("every post needs an id (title {:?})", p.title)));
            }
            let total = posts.len();
            let id = jobs.submit(spec(None), posts).await.map_err(job_error)?;
            Ok((StatusCode::ACCEPTED, Json(json!({ "id": id.to_string(), "total": total }))))
        }
        (None, Some(source)) => {
            source.build().map_err(|e| ApiError::validation(format!("`source`: {e}")))?;
            let max = req.max_posts.unwrap_or(limit);
            if max == 0 || max > limit {
                return Err(ApiError::validation(format!("`max_posts` must be 1 to {limit}")));
            }
            let id = jobs.create(spec(None)).await.map_err(job_error)?;
            let stop = state.lifecycle.shutdown_token();
            let backfill = crate::jobs::backfill(jobs.clone(), id.clone(), source, max, BACKFILL_DEADLINE, stop);
            state.lifecycle.tracker().spawn(backfill);
            Ok((StatusCode::ACCEPTED, Json(json!({ "id": id.to_string(), "total": null }))))
        }
        _ => Err(ApiError::validation("give `posts` or `source`, one of them")),
    }
}

pub async fn status(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let s = jobs(&state)?.status(&id).await.map_err(job_error)?;
    let s = s.ok_or_else(|| ApiError::not_found(format!("no job with id {id}")))?;
    Ok(Json(serde_json::to_value(s).unwrap_or(Value::Null)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub limit: Option<usize>,
}

pub async fn list(
    State(state): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q.map_err(|e| ApiError::invalid(format!("bad query string: {}", e.body_text())))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::validation("`limit` must be 1 to 1000"));
    }
    let list = jobs(&state)?.list(limit).await.map_err(job_error)?;
    Ok(Json(json!({ "jobs": list })))
}

pub async fn cancel(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let cancelled = jobs(&state)?.cancel(&id).await.map_err(job_error)?;
    Ok(Json(json!({ "id": id.to_string(), "cancelled": cancelled })))
}
