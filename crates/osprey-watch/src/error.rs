//! What can go wrong while polling, and while building a source from its settings.

use std::path::PathBuf;
use std::time::Duration;

/// A problem met during one poll. Sources report it in [`Batch::error`](crate::Batch::error)
/// and keep going: the batch's `next_poll` already accounts for the backoff.
///
/// [`is_transient`](SourceError::is_transient) separates what will likely fix
/// itself (timeouts, 5xx, rate limits, a file not there yet) from what needs a
/// person (a 404 subreddit, a malformed feed, a cursor from another source).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// Connection refused or reset, DNS failure, or a body cut short.
    #[error("could not fetch {url}: {message}")]
    Transport { url: String, message: String },
    #[error("{url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    /// An unexpected status: 5xx and 408 are transient, other 4xx permanent.
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    /// HTTP 429, or the rate-limit headers said the quota is spent.
    #[error("{url} is rate limiting this client{}", retry_after.map(|d| format!(" (retry in {d:?})")).unwrap_or_default())]
    RateLimited { url: String, retry_after: Option<Duration> },
    #[error("{origin}: larger than the {limit}-byte limit")]
    TooLarge { origin: String, limit: u64 },
    /// The body or file is not the format the source reads.
    #[error("{origin}: malformed {format}: {message}")]
    Malformed { origin: String, format: &'static str, message: String },
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, kind: std::io::ErrorKind, message: String },
    /// [`Source::restore`](crate::Source::restore) was handed a cursor this source cannot read.
    #[error("cursor does not fit this source: {0}")]
    InvalidCursor(String),
}

impl SourceError {
    /// Whether retrying later is likely to succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Transport { .. }
            | SourceError::Timeout { .. }
            | SourceError::RateLimited { .. }
            | SourceError::Io { .. } => true,
            SourceError::Status { status, .. } => *status >= 500 || *status == 408,
            SourceError::TooLarge { .. } | SourceError::Malformed { .. } | SourceError::InvalidCursor(_) => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, error: &std::io::Error) -> Self {
        SourceError::Io { path: path.into(), kind: error.kind(), message: error.to_string() }
    }
}

/// A source's settings do not make a working source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("watch source {source_name}: {message}")]
pub struct ConfigError {
    pub source_name: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(source_name: &str, message: impl Into<String>) -> Self {
        ConfigError { source_name: source_name.to_owned(), message: message.into() }
    }
}
