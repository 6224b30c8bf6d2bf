//! TEI-compatible routes: `/embed`, `/similarity`, `/tokenize`, `/info`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use osprey_engine::EmbedOptions;
use osprey_types::api::{
    EmbedRequest, InfoResponse, ModelDetails, ModelKind, SimilarityRequest, SimpleToken, TokenizeRequest,
};
use osprey_types::error::ErrorBody;

use super::{texts, truncation};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/embed", post(embed))
        .route("/similarity", post(similarity))
        .route("/tokenize", post(tokenize))
        .route("/info", get(info))
}

/// Embed one or more texts.
#[utoipa::path(post, path = "/embed", tag = "TEI", request_body = EmbedRequest,
    responses(
        (status = 200, description = "One vector per input", body = Vec<Vec<f32>>),
        (status = 400, description = "Malformed JSON or wrong types", body = ErrorBody),
        (status = 413, description = "Body or input too long", body = ErrorBody),
        (status = 422, description = "Empty input or too many inputs", body = ErrorBody),
        (status = 429, description = "Overloaded", body = ErrorBody),
        (status = 503, description = "Not ready or timed out", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(inputs = req.inputs.len()))]
pub async fn embed(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EmbedRequest>,
) -> ApiResult<Json<Vec<Vec<f32>>>> {
    let embedder = state.embedder("").await?;
    let texts = texts(req.inputs, "inputs", embedder.batching().max_client_batch_size)?;
    let mode = truncation(req.truncate, req.truncation_direction.as_deref(), req.chunk)?;
    let out = embedder.embed(texts, EmbedOptions { truncation: mode, normalize: req.normalize }).await?;
    Ok(Json(out.vectors))
}

/// Cosine similarity of a source sentence to each of several sentences.
#[utoipa::path(post, path = "/similarity", tag = "TEI", request_body = SimilarityRequest,
    responses(
        (status = 200, description = "One score per sentence", body = Vec<f32>),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(sentences = req.inputs.sentences.len()))]
pub async fn similarity(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SimilarityRequest>,
) -> ApiResult<Json<Vec<f32>>> {
    let embedder = state.embedder("").await?;
    let max = embedder.batching().max_client_batch_size;
    let sentences = texts(req.inputs.sentences.into(), "inputs.sentences", max.saturating_sub(1).max(1))?;
    if req.inputs.source_sentence.trim().is_empty() {
        return Err(ApiError::validation("`inputs.source_sentence` is empty"));
    }
    let mode = truncation(req.truncate, req.truncation_direction.as_deref(), false)?;
    let mut all = Vec::with_capacity(sentences.len() + 1);
    all.push(req.inputs.source_sentence);
    all.extend(sentences);
    let out = embedder.embed(all, EmbedOptions { truncation: mode, normalize: true }).await?;
    let (source, rest) = out.vectors.split_first().ok_or_else(|| ApiError::validation("no inputs"))?;
    Ok(Json(rest.iter().map(|v| v.iter().zip(source).map(|(a, b)| a * b).sum()).collect()))
}

/// Tokens of each input as the model sees them.
#[utoipa::path(post, path = "/tokenize", tag = "TEI", request_body = TokenizeRequest,
    responses((status = 200, body = Vec<Vec<SimpleToken>>), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn tokenize(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TokenizeRequest>,
) -> ApiResult<Json<Vec<Vec<SimpleToken>>>> {
    let embedder = state.embedder("").await?;
    let texts = texts(req.inputs, "inputs", embedder.batching().max_client_batch_size)?;
    let add = req.add_special_tokens;
    let tokens = tokio::task::spawn_blocking(move || {
        texts
            .iter()
            .map(|t| {
                embedder.tokenize(t, add).map(|toks| {
                    toks.into_iter()
                        .map(|k| SimpleToken {
                            id: k.id,
                            text: k.text,
                            special: k.special,
                            start: (!k.special).then_some(k.start),
                            stop: (!k.special).then_some(k.stop),
                        })
                        .collect()
                })
            })
            .collect::<Result<Vec<Vec<SimpleToken>>, _>>()
    })
    .await
    .map_err(|e| ApiError::new(osprey_types::error::ErrorCode::Internal, e.to_string()))??;
    Ok(Json(tokens))
}

/// The served model and the server's limits.
#[utoipa::path(get, path = "/info", tag = "TEI", responses((status = 200, body = InfoResponse), (status = 503, body = ErrorBody)))]
pub async fn info(State(state): State<AppState>) -> ApiResult<Json<InfoResponse>> {
    let embedder = state.embedder("").await?;
    let i = embedder.info();
    let b = embedder.batching();
    // Batch limits change at run time (PUT /performance/config): show those in force.
    let limits = embedder.batch_limits();
    Ok(Json(InfoResponse {
        model_id: i.id.clone(),
        model_sha: None,
        model_dtype: i.dtype.clone(),
        model_type: ModelKind::Embedding { pooling: i.pooling.to_string() },
        max_concurrent_requests: b.max_concurrent_requests,
        max_input_length: i.max_seq_length,
        max_batch_tokens: limits.max_batch_tokens,
        max_batch_requests: Some(limits.max_batch_requests),
        max_client_batch_size: b.max_client_batch_size,
        tokenization_workers: b.tokenizer_workers,
        version: env!("CARGO_PKG_VERSION").into(),
        osprey: ModelDetails {
            backend: i.backend.clone(),
            device: i.device.clone(),
            hidden_size: i.hidden_size,
            normalize_by_default: i.normalize,
            weight_bytes: i.weight_bytes,
            load_seconds: i.load_seconds,
            warmup_seconds: i.warmup_seconds,
            source: serde_json::to_value(&i.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            path: i.path.clone(),
        },
        analysis: state.analyzer.details(),
    }))
}
