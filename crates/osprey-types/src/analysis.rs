//! Request and response bodies of the analysis routes: `/v1/sentiment`,
//! `/v1/emotion`, `/v1/trajectory`, `/v1/summarize`, `/v1/topics/{name}`,
//! `/v1/filter` and the one-pass `/v1/analyze`.
//!
//! Offsets are in Unicode scalar values (what Python's `len` and
//! `str[start:end]` count), end exclusive.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::Input;

/// VADER's scores for one text, with the ±0.05 label.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SentimentScores {
    /// Normalised sum of valences, in [-1, 1].
    pub compound: f64,
    pub pos: f64,
    pub neu: f64,
    pub neg: f64,
    pub label: SentimentLabel,
}

/// `positive` (compound ≥ 0.05), `negative` (≤ -0.05) or `neutral`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SentimentLabel {
    Positive,
    Neutral,
    Negative,
}

/// `POST /v1/sentiment`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SentimentRequest {
    pub inputs: Input,
}

/// `POST /v1/sentiment` answers one result per input, in order.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct SentimentResponse {
    pub results: Vec<SentimentScores>,
}

/// Which path produced an emotion distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EmotionPath {
    /// The classifier alone.
    Model,
    /// `model_weight · classifier + vader_weight · VADER-derived`.
    Ensemble,
    /// osprey's emotion lexicon (no model configured, or the model failed).
    Lexicon,
}

/// An emotion distribution over the seven classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EmotionScores {
    /// The most likely class.
    pub label: String,
    /// Its probability.
    pub score: f32,
    /// Probability per class: anger, disgust, fear, joy, neutral, sadness, surprise.
    pub scores: BTreeMap<String, f32>,
    pub path: EmotionPath,
}

/// Per-request emotion options; unset fields take the server's settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmotionOptions {
    /// Use the classifier when one is loaded.
    #[serde(default)]
    pub enable_model: Option<bool>,
    /// Blend in the VADER-derived distribution (the ensemble).
    #[serde(default)]
    pub enable_vader: Option<bool>,
    /// Weight of the classifier in the ensemble (default 0.7).
    #[serde(default)]
    pub model_weight: Option<f32>,
    /// Weight of the VADER-derived distribution (default 0.3).
    #[serde(default)]
    pub vader_weight: Option<f32>,
}

/// `POST /v1/emotion`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmotionRequest {
    pub inputs: Input,
    #[serde(default)]
    pub emotion: EmotionOptions,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct EmotionResponse {
    pub results: Vec<EmotionScores>,
}

/// Smoothing of a trajectory's valence series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum SmoothingSpec {
    None,
    /// Centred rolling mean over `window` segments.
    Rolling {
        window: usize,
    },
    /// Keep the `low_pass` lowest DCT components (as syuzhet's `get_dct_transform`).
    Dct {
        low_pass: usize,
    },
}

impl Default for SmoothingSpec {
    fn default() -> Self {
        SmoothingSpec::Rolling { window: 3 }
    }
}

/// `POST /v1/trajectory`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrajectoryRequest {
    pub text: String,
    #[serde(default)]
    pub smoothing: SmoothingSpec,
    #[serde(default)]
    pub emotion: EmotionOptions,
}

/// One sentence of a trajectory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrajectorySegment {
    pub index: usize,
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub sentiment: SentimentScores,
    pub emotion: EmotionScores,
    /// The valence series after smoothing (VADER compound before it).
    pub smoothed_valence: f64,
}

/// A peak or trough of the smoothed series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ArcPoint {
    pub index: usize,
    pub start: usize,
    pub end: usize,
    pub value: f64,
}

/// What the trajectory as a whole looks like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrajectorySummary {
    pub dominant_emotion: String,
    pub mean_valence: f64,
    /// Standard deviation of the segment-to-segment change in valence.
    pub volatility: f64,
    pub peaks: Vec<ArcPoint>,
    pub troughs: Vec<ArcPoint>,
    pub turning_points: Vec<ArcPoint>,
    /// flat, rising, falling, rise-fall, fall-rise, rise-fall-rise, fall-rise-fall.
    pub shape: String,
    /// Reagan et al.'s name for the shape ("man in a hole", "Icarus", …), when one fits.
    pub arc: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrajectoryResponse {
    pub segments: Vec<TrajectorySegment>,
    pub summary: TrajectorySummary,
    pub smoothing: SmoothingSpec,
    /// The path that produced the segment emotions.
    pub path: EmotionPath,
}

/// How sentences are ranked for a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SummaryMethod {
    /// Cosine of each sentence embedding to the mean embedding.
    #[default]
    Centroid,
    /// PageRank over the thresholded cosine graph.
    Lexrank,
    /// PageRank over the weighted cosine graph.
    Textrank,
    /// Centroid over TF-IDF vectors (no model needed).
    Tfidf,
}

/// `POST /v1/summarize`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SummarizeRequest {
    pub text: String,
    /// Sentences to keep (default 3).
    #[serde(default)]
    pub k: Option<usize>,
    #[serde(default)]
    pub method: SummaryMethod,
}

/// A sentence chosen for a summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SummarySentence {
    pub index: usize,
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SummaryResult {
    /// The chosen sentences in document order.
    pub sentences: Vec<SummarySentence>,
    /// The chosen sentences joined with a space.
    pub summary: String,
    /// The method that actually ran (`tfidf` when no embedding model is available).
    pub method: SummaryMethod,
    /// Sentences in the text.
    pub total_sentences: usize,
}

/// One topic of a set: a label and example phrases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    pub label: String,
    #[serde(default)]
    pub examples: Vec<String>,
}

/// `PUT /v1/topics/{name}`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicSetRequest {
    pub topics: Vec<TopicSpec>,
    /// Posts scoring at least this much on their best topic are kept (default 0.35).
    #[serde(default)]
    pub threshold: Option<f32>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A stored topic set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TopicSetInfo {
    pub name: String,
    /// Starts at 1 and grows with every `PUT`.
    pub version: u64,
    pub topics: Vec<TopicSpec>,
    pub threshold: f32,
    pub description: Option<String>,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    pub updated_at: u64,
    /// The embedding model the phrase vectors were computed with.
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TopicSetList {
    pub sets: Vec<TopicSetInfo>,
}

/// A post as the analysis routes take it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Post {
    /// The client's id for the post; echoed back.
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub author: Option<String>,
    /// When the post was created (RFC 3339 or seconds since the epoch; stored as given).
    #[serde(default)]
    pub created: Option<serde_json::Value>,
    #[serde(default)]
    pub persona_id: Option<String>,
    /// Where the post came from (`reddit`, `rss`, …); stored with it.
    #[serde(default)]
    pub source: Option<String>,
    /// The source's own id for the post, when it differs from `id`.
    #[serde(default)]
    pub external_id: Option<String>,
}

/// `POST /v1/filter`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterRequest {
    /// Name of a stored topic set.
    pub topic_set: String,
    pub posts: Vec<Post>,
    /// Overrides the set's threshold for this request.
    #[serde(default)]
    pub threshold: Option<f32>,
}

/// How one post scored against a topic set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TopicMatch {
    pub best_topic: String,
    /// Cosine similarity to the best topic.
    pub score: f32,
    pub runner_up: Option<String>,
    /// Best score minus the runner-up's.
    pub margin: f32,
    pub keep: bool,
    /// Score per topic label.
    pub scores: BTreeMap<String, f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FilterResult {
    pub id: String,
    #[serde(flatten)]
    pub topic: TopicMatch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FilterResponse {
    pub topic_set: String,
    pub version: u64,
    pub threshold: f32,
    pub results: Vec<FilterResult>,
    pub kept: usize,
}

/// The analyses `/v1/analyze` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Sentiment,
    Emotion,
    Trajectory,
    Summary,
    Topics,
}

/// `POST /v1/analyze`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeRequest {
    pub posts: Vec<Post>,
    pub tasks: Vec<Task>,
    /// Required with the `topics` task.
    #[serde(default)]
    pub topic_set: Option<String>,
    #[serde(default)]
    pub threshold: Option<f32>,
    /// Summary length in sentences (default 3).
    #[serde(default)]
    pub summary_k: Option<usize>,
    #[serde(default)]
    pub summary_method: SummaryMethod,
    #[serde(default)]
    pub smoothing: SmoothingSpec,
    #[serde(default)]
    pub emotion: EmotionOptions,
    /// `false`: do not store these posts and results. Default: stored when
    /// the server's storage is on.
    #[serde(default)]
    pub store: Option<bool>,
    /// `false`: recompute even when the same content was already analysed
    /// and stored with the same tasks, options and models. Default `true`.
    #[serde(default)]
    pub reuse: Option<bool>,
}

/// Everything `/v1/analyze` found in one post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PostAnalysis {
    pub id: String,
    /// Sentences the post was split into (title first).
    pub segments: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<SentimentScores>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emotion: Option<EmotionScores>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trajectory: Option<TrajectoryResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<SummaryResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topics: Option<TopicMatch>,
    /// Answered from the result cache.
    pub cached: bool,
    /// Answered from stored analyses of the same content (nothing recomputed).
    #[serde(default)]
    pub reused: bool,
    /// The post id the content is stored under: this post's `id`, or the id
    /// of an earlier post with the same content. Absent when not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_id: Option<String>,
    /// Stored analysis ids by task (`GET /v1/analyses/{id}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub analysis_ids: BTreeMap<String, String>,
}

impl PostAnalysis {
    /// An answer for post `id` that holds no analysis yet.
    pub fn empty(id: &str) -> Self {
        Self {
            id: id.to_string(),
            segments: 0,
            sentiment: None,
            emotion: None,
            trajectory: None,
            summary: None,
            topics: None,
            cached: false,
            reused: false,
            stored_id: None,
            analysis_ids: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnalyzeResponse {
    pub results: Vec<PostAnalysis>,
    /// Sentences embedded for this request (0 when every post was cached).
    pub embedded_sentences: usize,
}
