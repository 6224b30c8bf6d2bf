//! Routes by resource; each module returns a `Router<AppState>`.

pub mod analysis;
pub mod config;
pub mod dashboard;
pub mod docs;
pub mod jobs;
pub mod observe;
pub mod openai;
pub mod performance;
pub mod probes;
pub mod store;
pub mod tei;
pub mod watch;

use osprey_engine::Truncation;
use osprey_types::api::Input;

use crate::error::{ApiError, ApiResult};

/// Turns a request's inputs into texts, enforcing the per-request limits.
pub(crate) fn texts(input: Input, field: &str, max: usize) -> ApiResult<Vec<String>> {
    let texts = input.into_vec();
    if texts.is_empty() {
        return Err(ApiError::validation(format!("`{field}` cannot be an empty list")));
    }
    if texts.len() > max {
        return Err(ApiError::validation(format!(
            "`{field}` holds {} texts; at most {max} are accepted per request (max_client_batch_size)",
            texts.len()
        )));
    }
    if let Some(i) = texts.iter().position(String::is_empty) {
        return Err(ApiError::validation(format!("`{field}`[{i}] is empty")));
    }
    Ok(texts)
}

/// The truncation mode a TEI-style request asks for.
pub(crate) fn truncation(truncate: Option<bool>, direction: Option<&str>, chunk: bool) -> ApiResult<Truncation> {
    if let Some(d) = direction {
        if !d.eq_ignore_ascii_case("right") {
            return Err(ApiError::validation(format!(
                "truncation_direction {d:?} is not supported; only \"Right\" is"
            )));
        }
    }
    Ok(match (chunk, truncate) {
        (true, _) => Truncation::Chunk,
        (false, Some(false)) => Truncation::Reject,
        (false, _) => Truncation::Truncate,
    })
}
