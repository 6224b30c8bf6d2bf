//! Engine errors. Every failure names the file or setting at fault, so an
//! operator can act on the message without reading code.

use std::path::PathBuf;

/// Errors raised while locating, loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model not found: {0}")]
    ModelNotFound(String),
    #[error("model file {path} is missing")]
    MissingFile { path: PathBuf },
    #[error("model file {path} is invalid: {reason}")]
    InvalidFile { path: PathBuf, reason: String },
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("backend error: {0}")]
    Backend(String),
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    #[error("device error: {0}")]
    Device(String),
    #[error("input too long: {tokens} tokens, the model accepts at most {max}")]
    InputTooLong { tokens: usize, max: usize },
    #[error("empty input")]
    EmptyInput,
    #[error("overloaded: {0} requests in flight")]
    Overloaded(usize),
    #[error("request timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("engine shut down")]
    ShutDown,
}

impl EngineError {
    pub(crate) fn invalid(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        Self::InvalidFile { path: path.into(), reason: reason.to_string() }
    }
    pub(crate) fn backend(e: impl std::fmt::Display) -> Self {
        Self::Backend(e.to_string())
    }
}

impl From<candle_core::Error> for EngineError {
    fn from(e: candle_core::Error) -> Self {
        Self::Backend(e.to_string())
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
