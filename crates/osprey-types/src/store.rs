//! Bodies of the storage read routes: `GET /v1/posts/{id}`, `GET /v1/posts`,
//! `GET /v1/analyses/{id}` and `GET /v1/stats/emotions`.
//!
//! Times are milliseconds since the Unix epoch (`*_at`), each with its
//! RFC 3339 rendering beside it for people reading the JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One stored analysis: a task's result for one post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoredAnalysis {
    /// UUIDv7, time-ordered.
    pub id: String,
    pub post_id: String,
    /// `sentiment`, `emotion`, `trajectory`, `summary` or `topics`.
    pub task: String,
    /// The model that produced it (`vader`, the emotion model, the embedder, `lexicon`, `tfidf`).
    pub model: String,
    pub model_revision: String,
    /// The options the result depends on.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    /// The task's result, exactly as `/v1/analyze` answered it.
    #[schema(value_type = Object)]
    pub result: serde_json::Value,
    pub created_at: i64,
    pub created: String,
    /// Compute time attributed to this post's share of the request.
    pub duration_ms: f64,
}

/// A stored post with, on `GET /v1/posts/{id}`, its analyses (newest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoredPost {
    pub id: String,
    pub source: Option<String>,
    pub external_id: Option<String>,
    pub author: Option<String>,
    pub persona_id: Option<String>,
    /// The best-matching topic when the post was analysed with a topic set.
    pub topic: Option<String>,
    pub title: String,
    pub body: String,
    /// XXH3-128 of the title length, title and body (hex): the deduplication key.
    pub content_hash: String,
    /// When the post was created (as the client said, else when stored).
    pub created_at: i64,
    pub created: String,
    pub stored_at: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analyses: Vec<StoredAnalysis>,
}

/// Filters and page of `GET /v1/posts`. `since` and `until` take RFC 3339
/// or milliseconds since the epoch; `until` is exclusive.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PostsQuery {
    pub persona_id: Option<String>,
    pub topic: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
    /// Posts per page, 1 to 500 (default 50).
    pub limit: Option<u32>,
}

/// A page of posts, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PostPage {
    pub posts: Vec<StoredPost>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Filters of `GET /v1/stats/emotions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EmotionStatsQuery {
    pub persona_id: Option<String>,
    pub topic: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// `day` (default) or `hour`.
    pub bucket: Option<String>,
}

/// Mean emotion distribution of the posts in one time bucket, per persona
/// and topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EmotionBucket {
    pub start_at: i64,
    pub start: String,
    pub persona_id: Option<String>,
    pub topic: Option<String>,
    pub posts: u64,
    /// Mean probability of each of the seven emotions.
    pub means: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EmotionStatsResponse {
    pub bucket: String,
    /// `materialized_view` (PostgreSQL, daily) or `live`.
    pub computed_from: String,
    pub buckets: Vec<EmotionBucket>,
}
