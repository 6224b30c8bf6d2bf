//! The one error body every route answers with:
//! `{"error": {"code": "...", "message": "..."}}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Machine-readable error codes. Each maps to exactly one HTTP status in the
/// server's error table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed JSON, wrong types, unknown fields (400).
    InvalidRequest,
    /// Missing or wrong credentials (401).
    Unauthorized,
    /// Valid credentials without the right to this route, e.g. an API key on
    /// an admin route (403).
    Forbidden,
    /// No such route, model or resource (404).
    NotFound,
    /// Method not allowed on this route (405).
    MethodNotAllowed,
    /// Body larger than `max_body_bytes` (413).
    PayloadTooLarge,
    /// Request valid JSON but unusable: empty input, too many inputs (422).
    ValidationError,
    /// An input is longer than the model accepts and truncation is off (413).
    InputTooLong,
    /// Unsupported media type (415).
    UnsupportedMediaType,
    /// Admission limit reached; retry after the `Retry-After` seconds (429).
    Overloaded,
    /// This credential (or client address) spent its request budget; retry
    /// after the `Retry-After` seconds (429).
    RateLimited,
    /// The request did not finish within `request_timeout` (503).
    Timeout,
    /// Not ready: the model is loading or failed to load (503).
    NotReady,
    /// A failure on the server's side; details are in the server log (500).
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::ValidationError => "validation_error",
            Self::InputTooLong => "input_too_long",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Overloaded => "overloaded",
            Self::RateLimited => "rate_limited",
            Self::Timeout => "timeout",
            Self::NotReady => "not_ready",
            Self::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

/// Body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}
