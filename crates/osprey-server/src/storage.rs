//! The server's side of storage: the store's rows as wire bodies, and the
//! time parameters of the read routes.

use osprey_types::store::{EmotionBucket, StoredAnalysis, StoredPost};

use crate::error::{ApiError, ApiResult};

/// A `since`/`until` query value: RFC 3339, a date (`2026-11-23`, midnight
/// UTC) or milliseconds since the epoch.
pub fn parse_time(value: Option<&str>, field: &str) -> ApiResult<Option<i64>> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(Some(ms));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.timestamp_millis()));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(Some(t.and_utc().timestamp_millis()));
        }
    }
    Err(ApiError::invalid(format!(
        "`{field}` {v:?} is not a time; give RFC 3339 (2026-11-23T10:00:00Z), a date (2026-11-23) or epoch milliseconds"
    )))
}

pub fn wire_analysis(a: osprey_store::AnalysisRow) -> StoredAnalysis {
    StoredAnalysis {
        created: a.created,
        id: a.id,
        post_id: a.post_id,
        task: a.task,
        model: a.model,
        model_revision: a.model_revision,
        options: a.options,
        result: a.result,
        created_at: a.created_at,
        duration_ms: a.duration_ms,
    }
}

pub fn wire_post(p: osprey_store::PostRow, analyses: Vec<osprey_store::AnalysisRow>) -> StoredPost {
    StoredPost {
        created: p.created,
        id: p.id,
        source: p.source,
        external_id: p.external_id,
        author: p.author,
        persona_id: p.persona_id,
        topic: p.topic,
        title: p.title,
        body: p.body,
        content_hash: p.content_hash.to_hex(),
        created_at: p.created_at,
        stored_at: p.stored_at,
        analyses: analyses.into_iter().map(wire_analysis).collect(),
    }
}

pub fn wire_bucket(b: osprey_store::EmotionBucket) -> EmotionBucket {
    EmotionBucket {
        start: b.start,
        start_at: b.start_at,
        persona_id: b.persona_id,
        topic: b.topic,
        posts: b.posts,
        means: b.means,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_three_spellings_and_refuse_the_rest() {
        assert_eq!(parse_time(Some("1700000000000"), "since").ok().flatten(), Some(1_700_000_000_000));
        assert_eq!(parse_time(Some("2023-11-14T22:13:20Z"), "since").ok().flatten(), Some(1_700_000_000_000));
        assert_eq!(parse_time(Some("2023-11-14"), "since").ok().flatten(), Some(1_699_920_000_000));
        assert_eq!(parse_time(None, "since").ok().flatten(), None);
        assert!(parse_time(Some("yesterday"), "since").is_err());
    }
}
