//! Analysis routes: `/v1/sentiment`, `/v1/emotion`, `/v1/trajectory`,
//! `/v1/summarize`, `/v1/topics[/{name}]`, `/v1/filter` and `/v1/analyze`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use osprey_types::analysis::{
    AnalyzeRequest, AnalyzeResponse, EmotionRequest, EmotionResponse, FilterRequest, FilterResponse, SentimentRequest,
    SentimentResponse, SummarizeRequest, SummaryResult, TopicSetInfo, TopicSetList, TopicSetRequest, TrajectoryRequest,
    TrajectoryResponse,
};
use osprey_types::error::ErrorBody;

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sentiment", post(sentiment))
        .route("/v1/emotion", post(emotion))
        .route("/v1/trajectory", post(trajectory))
        .route("/v1/summarize", post(summarize))
        .route("/v1/topics", get(list_topics))
        .route("/v1/topics/{name}", get(get_topics).put(put_topics).delete(delete_topics))
        .route("/v1/filter", post(filter))
        .route("/v1/analyze", post(analyze))
}

/// VADER sentiment (faithful to vaderSentiment 3.3.2) of each input.
#[utoipa::path(post, path = "/v1/sentiment", tag = "Analysis", request_body = SentimentRequest,
    responses(
        (status = 200, description = "One result per input", body = SentimentResponse),
        (status = 400, description = "Malformed JSON or wrong types", body = ErrorBody),
        (status = 413, description = "Body or a text too long", body = ErrorBody),
        (status = 422, description = "Empty input or too many inputs", body = ErrorBody),
        (status = 503, description = "VADER lexicon missing", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(inputs = req.inputs.len()))]
pub async fn sentiment(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SentimentRequest>,
) -> ApiResult<Json<SentimentResponse>> {
    let texts = req.inputs.into_vec();
    state.analyzer.check_texts(&texts, "inputs")?;
    Ok(Json(SentimentResponse { results: state.analyzer.sentiment(texts).await? }))
}

/// Emotion of each input over seven classes, with the path that produced it
/// (`model`, `ensemble` or `lexicon`).
#[utoipa::path(post, path = "/v1/emotion", tag = "Analysis", request_body = EmotionRequest,
    responses(
        (status = 200, description = "One result per input", body = EmotionResponse),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(inputs = req.inputs.len()))]
pub async fn emotion(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EmotionRequest>,
) -> ApiResult<Json<EmotionResponse>> {
    let texts = req.inputs.into_vec();
    state.analyzer.check_texts(&texts, "inputs")?;
    Ok(Json(EmotionResponse { results: state.analyzer.emotion(texts, &req.emotion).await? }))
}

/// Sentence-by-sentence emotion and valence of a text, smoothed, with the
/// arc's peaks, turning points and shape.
#[utoipa::path(post, path = "/v1/trajectory", tag = "Analysis", request_body = TrajectoryRequest,
    responses(
        (status = 200, body = TrajectoryResponse),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(chars = req.text.len()))]
pub async fn trajectory(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TrajectoryRequest>,
) -> ApiResult<Json<TrajectoryResponse>> {
    state.analyzer.check_text(&req.text, "text")?;
    Ok(Json(state.analyzer.trajectory(req.text, req.smoothing, &req.emotion).await?))
}

/// Extractive summary: the most central sentences, in document order.
#[utoipa::path(post, path = "/v1/summarize", tag = "Analysis", request_body = SummarizeRequest,
    responses(
        (status = 200, body = SummaryResult),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(chars = req.text.len()))]
pub async fn summarize(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SummarizeRequest>,
) -> ApiResult<Json<SummaryResult>> {
    state.analyzer.check_text(&req.text, "text")?;
    Ok(Json(state.analyzer.summarize(req.text, req.k, req.method).await?))
}

/// Every stored topic set.
#[utoipa::path(get, path = "/v1/topics", tag = "Topics",
    responses((status = 200, body = TopicSetList), (status = 503, description = "Database unavailable", body = ErrorBody)))]
pub async fn list_topics(State(state): State<AppState>) -> ApiResult<Json<TopicSetList>> {
    Ok(Json(TopicSetList { sets: state.analyzer.topics.list().await? }))
}

/// One topic set.
#[utoipa::path(get, path = "/v1/topics/{name}", tag = "Topics",
    params(("name" = String, Path, description = "Topic set name")),
    responses((status = 200, body = TopicSetInfo), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn get_topics(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<TopicSetInfo>> {
    state
        .analyzer
        .topics
        .info(&name)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no topic set named {name:?}")))
}

/// Creates or replaces a topic set (a new version); its phrases are embedded once.
#[utoipa::path(put, path = "/v1/topics/{name}", tag = "Topics", request_body = TopicSetRequest,
    params(("name" = String, Path, description = "Topic set name: A-Z, a-z, 0-9, '-', '_', '.'")),
    responses(
        (status = 200, body = TopicSetInfo),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(name = %name))]
pub async fn put_topics(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<TopicSetRequest>,
) -> ApiResult<Json<TopicSetInfo>> {
    Ok(Json(state.analyzer.put_topics(&name, req).await?))
}

/// Deletes a topic set.
#[utoipa::path(delete, path = "/v1/topics/{name}", tag = "Topics",
    params(("name" = String, Path, description = "Topic set name")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete_topics(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    if state.analyzer.topics.delete(&name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no topic set named {name:?}")))
    }
}

/// Scores posts against a topic set: best topic, score, margin, keep or drop.
#[utoipa::path(post, path = "/v1/filter", tag = "Topics", request_body = FilterRequest,
    responses(
        (status = 200, body = FilterResponse),
        (status = 400, body = ErrorBody), (status = 404, description = "No such topic set", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(posts = req.posts.len(), set = %req.topic_set))]
pub async fn filter(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<FilterRequest>,
) -> ApiResult<Json<FilterResponse>> {
    Ok(Json(state.analyzer.filter(req).await?))
}

/// One pass over posts: split once, embed and classify each sentence once,
/// and answer every requested task from those results.
#[utoipa::path(post, path = "/v1/analyze", tag = "Analysis", request_body = AnalyzeRequest,
    responses(
        (status = 200, body = AnalyzeResponse),
        (status = 400, body = ErrorBody), (status = 404, description = "No such topic set", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(posts = req.posts.len()))]
pub async fn analyze(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<AnalyzeRequest>,
) -> ApiResult<Json<AnalyzeResponse>> {
    Ok(Json(state.analyzer.analyze(req).await?))
}
