//! One HTTP error surface: every failure becomes an [`ApiError`], and one
//! table maps its code to a status. 5xx bodies say nothing internal; the
//! detail goes to the log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use osprey_engine::EngineError;
use osprey_types::error::{ErrorBody, ErrorCode, ErrorDetail};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationError, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn status(&self) -> StatusCode {
        match self.code {
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::PayloadTooLarge | ErrorCode::InputTooLong => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::ValidationError => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Overloaded | ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Timeout | ErrorCode::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() && self.code == ErrorCode::Internal {
            tracing::error!(error = %self.message, "internal error");
            "internal error; see the server log".to_string()
        } else {
            self.message
        };
        let body = ErrorBody { error: ErrorDetail { code: self.code, message } };
        let mut resp = (status, axum::Json(body)).into_response();
        if matches!(self.code, ErrorCode::Overloaded | ErrorCode::Timeout | ErrorCode::NotReady) {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let code = match &e {
            EngineError::EmptyInput => ErrorCode::ValidationError,
            EngineError::InputTooLong { .. } => ErrorCode::InputTooLong,
            EngineError::Overloaded(_) => ErrorCode::Overloaded,
            EngineError::Timeout(_) => ErrorCode::Timeout,
            EngineError::ModelNotFound(_) => ErrorCode::NotReady,
            EngineError::ShutDown => ErrorCode::NotReady,
            EngineError::MissingFile { .. }
            | EngineError::InvalidFile { .. }
            | EngineError::Unsupported(_)
            | EngineError::Device(_) => ErrorCode::NotReady,
            EngineError::Tokenizer(_) | EngineError::Backend(_) => ErrorCode::Internal,
        };
        Self::new(code, e.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
