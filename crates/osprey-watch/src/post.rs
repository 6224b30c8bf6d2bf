//! The item every source yields, and its conversion to the analysis [`Post`].

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use osprey_types::analysis::Post;
use serde::{Deserialize, Serialize};

/// One post collected by a source.
///
/// `source` and `external_id` identify it: [`SourcePost::id`] joins them into
/// the id the pipeline stores it under (`reddit:t3_1abcde`, `rss:<guid>`,
/// `jsonl:<id>`). The Reddit-specific fields are `None` where a source does not
/// know them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcePost {
    /// The kind of source that produced the post: `reddit`, `listing_files`, `jsonl` or `rss`.
    pub source: String,
    /// The source's own id: a Reddit fullname (`t3_…`), a feed item's guid/id, a JSONL `id`.
    pub external_id: String,
    pub title: String,
    /// Plain text (feed HTML is stripped, entities decoded).
    pub body: String,
    pub author: Option<String>,
    pub created: Option<DateTime<Utc>>,
    pub persona_id: Option<String>,
    /// The link the post points at (a feed item's link, a Reddit post's `url`).
    pub url: Option<String>,
    /// Reddit's permalink, as the listing gives it (a path such as `/r/rust/comments/…`).
    pub permalink: Option<String>,
    pub score: Option<i64>,
    pub num_comments: Option<u64>,
    pub subreddit: Option<String>,
}

impl SourcePost {
    /// The id the post is stored under: `<source>:<external_id>`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.source, self.external_id)
    }

    /// The analysis request's view of the post; `created` becomes an RFC 3339 string.
    pub fn into_post(self) -> Post {
        Post {
            id: self.id(),
            title: self.title,
            body: self.body,
            author: self.author,
            created: self.created.map(|t| serde_json::Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))),
            persona_id: self.persona_id,
            source: Some(self.source),
            external_id: Some(self.external_id),
        }
    }
}

impl From<SourcePost> for Post {
    fn from(post: SourcePost) -> Self {
        post.into_post()
    }
}

/// Seconds since the epoch (fractions kept to the microsecond) as a UTC time.
pub(crate) fn from_epoch_secs(secs: f64) -> Option<DateTime<Utc>> {
    if !secs.is_finite() {
        return None;
    }
    let micros = (secs * 1e6).round();
    if micros.abs() > 1e17 {
        return None;
    }
    // In range: |micros| ≤ 1e17 fits an i64 exactly enough for a timestamp.
    Utc.timestamp_micros(micros as i64).single()
}

/// A timestamp as feeds and JSON lines write them: RFC 3339, RFC 2822, or
/// seconds since the epoch (as a number or a numeric string).
pub(crate) fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(text) {
        return Some(t.with_timezone(&Utc));
    }
    text.parse::<f64>().ok().and_then(from_epoch_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_an_analysis_post() {
        let post = SourcePost {
            source: "reddit".into(),
            external_id: "t3_1abcde".into(),
            title: "Title".into(),
            body: "Body".into(),
            author: Some("ferris".into()),
            created: from_epoch_secs(1_718_000_000.0),
            persona_id: None,
            url: None,
            permalink: Some("/r/rust/comments/1abcde/title/".into()),
            score: Some(3),
            num_comments: Some(1),
            subreddit: Some("rust".into()),
        };
        let converted: Post = post.into();
        assert_eq!(converted.id, "reddit:t3_1abcde");
        assert_eq!(converted.external_id.as_deref(), Some("t3_1abcde"));
        assert_eq!(converted.source.as_deref(), Some("reddit"));
        assert_eq!(converted.created, Some(serde_json::json!("2024-06-10T06:13:20Z")));
    }

    #[test]
    fn parses_the_usual_timestamp_shapes() {
        let expected = from_epoch_secs(1_718_000_000.0);
        assert_eq!(parse_timestamp("2024-06-10T06:13:20Z"), expected);
        assert_eq!(parse_timestamp("2024-06-10T08:13:20+02:00"), expected);
        assert_eq!(parse_timestamp("Mon, 10 Jun 2024 06:13:20 GMT"), expected);
        assert_eq!(parse_timestamp(" 1718000000 "), expected);
        assert_eq!(parse_timestamp("1718000000.5").map(|t| t.timestamp_subsec_millis()), Some(500));
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp(""), None);
        assert_eq!(from_epoch_secs(f64::NAN), None);
        assert_eq!(from_epoch_secs(1e300), None);
    }
}
