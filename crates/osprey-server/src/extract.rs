//! A JSON body extractor whose every rejection is an [`ApiError`]: 400 for
//! malformed JSON or wrong types (with serde's line/column message), 413 over
//! the body limit, 415 for a non-JSON content type. A missing content type is
//! accepted as JSON, as curl users expect.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use osprey_types::error::ErrorCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
            if !(ct.starts_with("application/json") || ct.contains("+json")) {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    format!("content-type {ct:?} is not supported; send application/json"),
                ));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "request body is larger than the server's max_body_bytes")
            } else {
                ApiError::invalid(format!("could not read the request body: {rej}"))
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::invalid("request body is empty; send a JSON object"));
        }
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Data => "invalid request",
                _ => "malformed JSON",
            };
            ApiError::invalid(format!("{what}: {e}"))
        })
    }
}
