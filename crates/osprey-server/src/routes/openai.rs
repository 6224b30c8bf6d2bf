//! OpenAI-compatible `POST /v1/embeddings`.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use osprey_engine::{EmbedOptions, Truncation};
use osprey_types::api::{
    EmbeddingValue, EncodingFormat, OpenAiEmbedding, OpenAiEmbeddingsRequest, OpenAiEmbeddingsResponse, OpenAiUsage,
};
use osprey_types::error::ErrorBody;

use super::texts;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/embeddings", post(embeddings))
}

/// Embeddings in the OpenAI response shape. Vectors are normalised when the
/// model's own pipeline normalises (as sentence-transformers would return them).
#[utoipa::path(post, path = "/v1/embeddings", tag = "OpenAI", request_body = OpenAiEmbeddingsRequest,
    responses(
        (status = 200, body = OpenAiEmbeddingsResponse),
        (status = 400, body = ErrorBody), (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all, fields(inputs = req.input.len(), model = %req.model))]
pub async fn embeddings(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<OpenAiEmbeddingsRequest>,
) -> ApiResult<Json<OpenAiEmbeddingsResponse>> {
    let embedder = state.embedder(&req.model).await?;
    let info = embedder.info().clone();
    if let Some(d) = req.dimensions {
        if d != info.hidden_size {
            return Err(ApiError::validation(format!(
                "dimensions {d} is not supported by {}: its vectors have {} dimensions",
                info.id, info.hidden_size
            )));
        }
    }
    let texts = texts(req.input, "input", embedder.batching().max_client_batch_size)?;
    let out =
        embedder.embed(texts, EmbedOptions { truncation: Truncation::Truncate, normalize: info.normalize }).await?;
    let prompt_tokens: usize = out.tokens.iter().sum();
    let data = out
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| OpenAiEmbedding {
            object: "embedding".into(),
            index,
            embedding: match req.encoding_format {
                EncodingFormat::Float => EmbeddingValue::Float(v),
                EncodingFormat::Base64 => {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    EmbeddingValue::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            },
        })
        .collect();
    Ok(Json(OpenAiEmbeddingsResponse {
        object: "list".into(),
        data,
        model: if req.model.is_empty() { info.id } else { req.model },
        usage: OpenAiUsage { prompt_tokens, total_tokens: prompt_tokens },
    }))
}
