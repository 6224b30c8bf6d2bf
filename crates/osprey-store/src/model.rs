//! What goes in (records for the writer) and what comes out (rows, pages,
//! buckets). Out types serialise as the server returns them: timestamps as
//! epoch milliseconds with an RFC 3339 rendering beside them, JSON columns
//! as JSON values.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Backend, ContentHash};

/// The seven emotion labels `post_emotions` has a column for; a score for
/// any other label is not aggregated.
pub const EMOTIONS: [&str; 7] = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"];

/// One post and what was computed for it: the unit the writer commits
/// atomically (all of it or none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRecord {
    pub post: NewPost,
    pub analyses: Vec<NewAnalysis>,
    /// The post's emotion distribution, for the aggregates.
    pub emotion: Option<PostEmotion>,
    /// The emotion trajectory; its `analysis_id` must be one of `analyses`.
    pub trajectory: Option<NewTrajectory>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewPost {
    /// The client's id; posts are upserted by it.
    pub id: String,
    pub source: Option<String>,
    pub external_id: Option<String>,
    pub author: Option<String>,
    pub persona_id: Option<String>,
    /// Best-matching topic at analysis time.
    pub topic: Option<String>,
    pub title: String,
    pub body: String,
    /// When the post was written (epoch ms); `None`: when it was accepted,
    /// or, for a post already stored, the time it already has.
    pub created_at: Option<i64>,
    /// Must be `ContentHash::of(title, body)`; passed in because the caller
    /// computed it already to look for stored copies.
    pub content_hash: ContentHash,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAnalysis {
    /// A UUID chosen by the caller (the server derives it from the content,
    /// task, revision and options), so its response can name the analysis
    /// before the write lands. Rewriting the same id is a no-op, which is
    /// what makes retried batches exactly-once.
    pub id: String,
    pub task: String,
    pub model: String,
    pub model_revision: String,
    pub options: Value,
    pub result: Value,
    /// Compute time; negative values are refused by the schema.
    pub duration_ms: f64,
}

/// A post's emotion distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostEmotion {
    pub label: String,
    /// Probability per label; labels of [`EMOTIONS`] missing here count 0.
    pub scores: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTrajectory {
    /// The trajectory analysis this belongs to; also the trajectory's id.
    pub analysis_id: String,
    /// The smoothing applied, as JSON text.
    pub smoothing: String,
    pub shape: String,
    pub dominant: String,
    pub mean_valence: f64,
    pub volatility: f64,
    pub segments: Vec<NewSegment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSegment {
    pub idx: i64,
    pub start: i64,
    pub end: i64,
    pub valence: f64,
    pub smoothed_valence: f64,
    pub label: String,
    pub scores: Value,
}

/// A stored post, without its analyses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostRow {
    pub id: String,
    pub source: Option<String>,
    pub external_id: Option<String>,
    pub author: Option<String>,
    pub persona_id: Option<String>,
    pub topic: Option<String>,
    pub title: String,
    pub body: String,
    pub content_hash: ContentHash,
    pub created_at: i64,
    /// `created_at` as RFC 3339.
    pub created: String,
    pub stored_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalysisRow {
    pub id: String,
    pub post_id: String,
    pub task: String,
    pub model: String,
    pub model_revision: String,
    pub options: Value,
    pub result: Value,
    pub created_at: i64,
    pub created: String,
    pub duration_ms: f64,
}

/// A post with every analysis of it, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredPost {
    pub post: PostRow,
    pub analyses: Vec<AnalysisRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrajectoryRow {
    pub id: String,
    pub post_id: String,
    pub analysis_id: String,
    pub smoothing: String,
    pub shape: String,
    pub dominant: String,
    pub mean_valence: f64,
    pub volatility: f64,
    pub n_segments: i64,
    pub created_at: i64,
    /// In `idx` order.
    pub segments: Vec<SegmentRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentRow {
    pub idx: i64,
    pub start: i64,
    pub end: i64,
    pub valence: f64,
    pub smoothed_valence: f64,
    pub label: String,
    pub scores: Value,
}

/// Filters and page of [`Store::list_posts`](crate::Store::list_posts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostQuery {
    pub persona_id: Option<String>,
    pub topic: Option<String>,
    /// Inclusive, epoch ms.
    pub since: Option<i64>,
    /// Exclusive, epoch ms.
    pub until: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 500.
    pub limit: u32,
}

impl Default for PostQuery {
    fn default() -> Self {
        Self { persona_id: None, topic: None, since: None, until: None, cursor: None, limit: 50 }
    }
}

/// Posts newest first; `next_cursor` is `None` on the last page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostPage {
    pub posts: Vec<PostRow>,
    pub next_cursor: Option<String>,
}

/// Width of an emotion statistics bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    #[default]
    Day,
    Hour,
}

impl Bucket {
    /// The bucket's width: the divisor of `created_at` in SQL.
    pub fn millis(self) -> i64 {
        match self {
            Bucket::Day => 86_400_000,
            Bucket::Hour => 3_600_000,
        }
    }
}

/// Filters of [`Store::emotion_stats`](crate::Store::emotion_stats).
/// Buckets are whole: one that overlaps `[since, until)` is reported with
/// all its posts, so PostgreSQL's daily view and the live query agree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmotionStatsQuery {
    pub persona_id: Option<String>,
    pub topic: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub bucket: Bucket,
}

/// Mean emotion distribution of one bucket's posts of one persona and topic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmotionBucket {
    /// Bucket start, epoch ms.
    pub start_at: i64,
    pub start: String,
    pub persona_id: Option<String>,
    pub topic: Option<String>,
    pub posts: u64,
    /// Mean of each of [`EMOTIONS`].
    pub means: BTreeMap<String, f64>,
}

/// A topic set version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicSetRow {
    pub name: String,
    /// From 1; every change is a new version.
    pub version: i64,
    pub topics: Value,
    pub threshold: f64,
    pub description: Option<String>,
    /// The embedding model the set was built for.
    pub model: String,
    /// Epoch ms. A rewrite of an existing version keeps its `created_at`.
    pub created_at: i64,
    pub updated_at: i64,
}

/// Schema versions in the database after [`Store::migrate`](crate::Store::migrate).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationReport {
    pub backend: Backend,
    /// Every version applied, oldest first, with its description.
    pub versions: Vec<(i64, String)>,
    /// The versions this call applied (empty when already current).
    pub newly_applied: Vec<i64>,
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (version, description)) in self.versions.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let note = if self.newly_applied.contains(version) { "applied now" } else { "already applied" };
            write!(f, "{version:04} {description} ({note})")?;
        }
        Ok(())
    }
}

/// What [`Store::close`](crate::Store::close) managed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CloseReport {
    /// Records committed since the store opened.
    pub written: u64,
    /// Of those, committed while closing.
    pub drained: u64,
    /// Records not stored because their content belongs to another post.
    pub duplicates: u64,
    /// Records the database refused (a constraint), logged one by one.
    pub rejected: u64,
    /// Records still unwritten when `shutdown_deadline` ran out: lost.
    pub left: u64,
    pub elapsed_ms: f64,
}

/// Epoch milliseconds as RFC 3339 (UTC, millisecond precision); empty for
/// a time chrono cannot represent.
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Now, in epoch milliseconds.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
