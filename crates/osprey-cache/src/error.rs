//! The crate's one error type.
//!
//! Most cache failures are deliberately *not* errors: a Redis outage, a timeout
//! or an undecodable entry make a look-up a miss and a write a no-op, because a
//! cache must never be the reason a request fails. What remains are mistakes
//! the caller can act on: bad settings, a key that cannot be built, and the
//! administrative `clear`, whose caller asked for L2 explicitly and must learn
//! that it did not happen.

use std::time::Duration;

/// Errors from building a cache, building keys, encoding values or clearing L2.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A setting is out of range or malformed; the message names it.
    #[error("invalid cache settings: {0}")]
    InvalidSettings(String),

    /// A value (or a key part) could not be serialised to JSON.
    #[error("cannot encode a cache value as JSON: {0}")]
    Encode(#[source] serde_json::Error),

    /// zstd refused to compress an encoded value.
    #[error("cannot compress a cache value: {0}")]
    Compress(#[source] std::io::Error),

    /// Stored bytes are not a value this build can read (unknown format,
    /// corrupt zstd frame, JSON that does not fit the requested type).
    #[error("cannot decode a cached value: {0}")]
    Decode(String),

    /// The encoded value exceeds `l2.max_value_bytes`.
    #[error("value of {bytes} bytes exceeds the {max} byte limit")]
    TooLarge { bytes: usize, max: usize },

    /// L2 is not configured, still connecting, or its circuit breaker is open.
    #[error("L2 (Redis) is unavailable: {0}")]
    L2Unavailable(&'static str),

    /// Redis answered a command with an error or the connection failed.
    #[error("L2 (Redis) {op} failed: {source}")]
    Redis {
        op: &'static str,
        #[source]
        source: redis::RedisError,
    },

    /// Redis did not answer a command in time.
    #[error("L2 (Redis) {op} timed out after {timeout:?}")]
    Timeout { op: &'static str, timeout: Duration },
}
