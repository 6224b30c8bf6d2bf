//! What `/v1/analyze` keeps and reuses: each post and its per-task results
//! go to the store's batching writer; content already stored with the same
//! task, options and model revision is answered from the store instead of
//! being recomputed.
//!
//! A task's *signature* (model, revision, options) is what makes a stored
//! result reusable: two requests that would compute the same answer have
//! the same signatures, and anything that could change the answer (an
//! ensemble weight, the smoothing, the topic set's fingerprint, a new model
//! revision) changes them.

use std::collections::BTreeMap;

use osprey_store::{
    AnalysisRecord, ContentHash, NewAnalysis, NewPost, NewSegment, NewTrajectory, PostEmotion, StoredPost,
};
use osprey_types::analysis::{EmotionPath, Post, PostAnalysis, Task};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};

/// The model behind every reused or stored VADER answer.
pub const VADER_MODEL: &str = "vaderSentiment";
pub const VADER_REVISION: &str = "3.3.2";

/// Model, revision and options of one task's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    pub model: String,
    pub revision: String,
    pub options: Value,
}

/// The signatures of the tasks one request asks for.
pub struct Signatures(pub BTreeMap<Task, Signature>);

impl Signatures {
    /// Whether `stored` holds, for every task here, an analysis with the same
    /// signature; if so, the answer rebuilt from them (newest of each).
    pub fn reuse(&self, stored: &StoredPost, slot_id: &str, segments: usize) -> Option<PostAnalysis> {
        let mut out = PostAnalysis {
            segments,
            reused: true,
            stored_id: Some(stored.post.id.clone()),
            ..PostAnalysis::empty(slot_id)
        };
        for (task, sig) in &self.0 {
            // Analyses come newest first.
            // The post may have had other text when an analysis was made
            // (same id, edited body): only analyses of this content count.
            let options = with_content(&sig.options, stored.post.content_hash);
            let a = stored
                .analyses
                .iter()
                .find(|a| a.task == task_name(*task) && a.model_revision == sig.revision && a.options == options)?;
            match task {
                Task::Sentiment => out.sentiment = Some(parse(&a.result)?),
                Task::Emotion => out.emotion = Some(parse(&a.result)?),
                Task::Trajectory => out.trajectory = Some(parse(&a.result)?),
                Task::Summary => out.summary = Some(parse(&a.result)?),
                Task::Topics => out.topics = Some(parse(&a.result)?),
            }
            out.analysis_ids.insert(task_name(*task).to_string(), a.id.clone());
        }
        Some(out)
    }

    /// The record that stores `post` and `analysis`; fills in the analysis
    /// ids the response reports.
    pub fn record(
        &self,
        post: &Post,
        hash: ContentHash,
        analysis: &mut PostAnalysis,
        duration_ms: f64,
    ) -> ApiResult<AnalysisRecord> {
        let mut analyses = Vec::with_capacity(self.0.len());
        let mut ids = BTreeMap::new();
        for (task, sig) in &self.0 {
            let result = match task {
                Task::Sentiment => to_value(&analysis.sentiment),
                Task::Emotion => to_value(&analysis.emotion),
                Task::Trajectory => to_value(&analysis.trajectory),
                Task::Summary => to_value(&analysis.summary),
                Task::Topics => to_value(&analysis.topics),
            };
            let Some(result) = result else { continue };
            // An emotion that fell back to the lexicon is stored as what it is.
            let (model, revision) = match (task, emotion_path(analysis, *task)) {
                (Task::Emotion | Task::Trajectory, Some(EmotionPath::Lexicon)) if sig.model != LEXICON => {
                    (LEXICON.to_string(), LEXICON.to_string())
                }
                _ => (sig.model.clone(), sig.revision.clone()),
            };
            let options = with_content(&sig.options, hash);
            let id = analysis_id(task_name(*task), &revision, &options);
            ids.insert(task_name(*task).to_string(), id.clone());
            analyses.push(NewAnalysis {
                id,
                task: task_name(*task).to_string(),
                model,
                model_revision: revision,
                options,
                result,
                duration_ms,
            });
        }
        let emotion = analysis.emotion.as_ref().map(|e| PostEmotion {
            label: e.label.clone(),
            scores: e.scores.iter().map(|(k, v)| (k.clone(), f64::from(*v))).collect(),
        });
        let trajectory = analysis.trajectory.as_ref().and_then(|t| {
            let analysis_id = ids.get("trajectory")?.clone();
            Some(NewTrajectory {
                analysis_id,
                smoothing: serde_json::to_string(&t.smoothing).unwrap_or_default(),
                shape: t.summary.shape.clone(),
                dominant: t.summary.dominant_emotion.clone(),
                mean_valence: t.summary.mean_valence,
                volatility: t.summary.volatility,
                segments: t
                    .segments
                    .iter()
                    .map(|s| NewSegment {
                        idx: s.index as i64,
                        start: s.start as i64,
                        end: s.end as i64,
                        valence: s.sentiment.compound,
                        smoothed_valence: s.smoothed_valence,
                        label: s.emotion.label.clone(),
                        scores: json!(s.emotion.scores),
                    })
                    .collect(),
            })
        });
        let topic = analysis.topics.as_ref().filter(|t| t.keep).map(|t| t.best_topic.clone());
        let record = AnalysisRecord {
            post: NewPost {
                id: post.id.clone(),
                source: post.source.clone(),
                external_id: post.external_id.clone(),
                author: post.author.clone(),
                // An empty persona is no persona, on every backend.
                persona_id: post.persona_id.clone().filter(|p| !p.trim().is_empty()),
                topic,
                title: post.title.clone(),
                body: post.body.clone(),
                created_at: created_ms(post)?,
                content_hash: hash,
            },
            analyses,
            emotion,
            trajectory,
        };
        analysis.stored_id = Some(post.id.clone());
        analysis.analysis_ids = ids;
        Ok(record)
    }
}

pub const LEXICON: &str = "lexicon";

/// The id of the analysis of one content by one task, model revision and
/// options (the options carry the content hash): a UUID (version 8) made
/// from their hash. The same computation always gets the same id, so a
/// batch analysed twice (a job chunk delivered again after a worker died,
/// a watch batch replayed after a crash, two replicas racing) writes its
/// analyses once: the store inserts analyses with `ON CONFLICT DO NOTHING`.
pub fn analysis_id(task: &str, revision: &str, options: &Value) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for part in [task, revision, &options.to_string()] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    uuid::Builder::from_custom_bytes(h.digest128().to_be_bytes()).into_uuid().to_string()
}

/// A signature's options with the content they were computed on: what a
/// stored analysis depends on, so an edited post's old results never match.
fn with_content(options: &Value, hash: ContentHash) -> Value {
    let mut o = options.clone();
    if let Some(map) = o.as_object_mut() {
        map.insert("content_hash".into(), Value::String(hash.to_hex()));
    }
    o
}

fn emotion_path(a: &PostAnalysis, task: Task) -> Option<EmotionPath> {
    match task {
        Task::Emotion => a.emotion.as_ref().map(|e| e.path),
        Task::Trajectory => a.trajectory.as_ref().map(|t| t.path),
        _ => None,
    }
}

pub fn task_name(t: Task) -> &'static str {
    match t {
        Task::Sentiment => "sentiment",
        Task::Emotion => "emotion",
        Task::Trajectory => "trajectory",
        Task::Summary => "summary",
        Task::Topics => "topics",
    }
}

fn parse<T: DeserializeOwned>(v: &Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

/// `v` as the JSON the client received. Going through the text matters:
/// `to_value` widens an `f32` such as 0.604811 to 0.6048110127449036, so the
/// stored result would not read back as what was answered.
fn to_value<T: serde::Serialize>(v: &Option<T>) -> Option<Value> {
    let text = serde_json::to_string(v.as_ref()?).ok()?;
    serde_json::from_str(&text).ok()
}

/// The post's `created` as milliseconds since the epoch: RFC 3339, or a
/// number of seconds (fractions allowed). Absent: the store uses the time
/// it stored the post.
pub fn created_ms(post: &Post) -> ApiResult<Option<i64>> {
    let bad = |why: &str| {
        ApiError::validation(format!(
            "post {:?}: `created` {why}; give RFC 3339 (2026-11-23T10:00:00Z) or seconds since the epoch",
            post.id
        ))
    };
    match &post.created {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let secs = n.as_f64().ok_or_else(|| bad("is not a number"))?;
            // Years 1970 to 9999.
            if !(0.0..=253_402_300_799.0).contains(&secs) {
                return Err(bad("is out of range"));
            }
            Ok(Some((secs * 1000.0).round() as i64))
        }
        Some(Value::String(s)) => {
            if let Ok(secs) = s.trim().parse::<f64>() {
                return created_ms(&Post { created: Some(json!(secs)), ..post.clone() });
            }
            let t = chrono::DateTime::parse_from_rfc3339(s.trim())
                .map_err(|e| bad(&format!("is not a time ({e})")))?
                .timestamp_millis();
            // Buckets are whole days and hours since 1970.
            if t < 0 {
                return Err(bad("is before 1970"));
            }
            Ok(Some(t))
        }
        Some(_) => Err(bad("must be a string or a number")),
    }
}
