//! Planning a batch: which of its records are stored, merged or skipped,
//! worked out in memory before any row is sent, from the batch and the
//! stored posts it touches.
//!
//! Two records are "the same content" when their content hashes match. A
//! record whose content is already stored under another post id writes
//! nothing (the server deduplicates before submitting; this is the last
//! line). Records for the same post id are merged in submission order, as
//! applying them one after another would.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::db::RowExt;
use crate::model::{NewAnalysis, NewSegment, NewTrajectory, EMOTIONS};
use crate::{AnalysisRecord, ContentHash, StoreError};

/// A record as the writer holds it: stamped with its acceptance time so a
/// retried batch writes the same timestamps, and numbered so the pending
/// map can forget exactly it.
#[derive(Debug)]
pub(crate) struct Queued {
    pub seq: u64,
    pub accepted_at: i64,
    pub record: AnalysisRecord,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowCounts {
    pub posts: u64,
    pub analyses: u64,
    pub post_emotions: u64,
    pub trajectories: u64,
    pub segments: u64,
}

/// What a committed batch did with each record (by `seq`).
#[derive(Debug, Default)]
pub(crate) struct BatchResult {
    pub written: Vec<u64>,
    /// Content already stored under another post id: nothing written.
    pub duplicates: Vec<u64>,
    pub rows: RowCounts,
}

/// A stored post the batch touches, by id or by content.
#[derive(Debug)]
pub(crate) struct Existing {
    pub(crate) id: String,
    pub(crate) hash: ContentHash,
    pub(crate) created_at: i64,
    pub(crate) persona_id: Option<String>,
    pub(crate) topic: Option<String>,
}

impl Existing {
    pub(crate) fn decode(row: &impl RowExt) -> Result<Self, StoreError> {
        let hash = row.text("content_hash")?;
        Ok(Self {
            id: row.text("id")?,
            hash: hash.parse().map_err(|why| StoreError::Decode { what: "content_hash", why })?,
            created_at: row.int("created_at")?,
            persona_id: row.opt_text("persona_id")?,
            topic: row.opt_text("topic")?,
        })
    }
}

pub(crate) struct PostVals<'a> {
    pub(crate) id: &'a str,
    pub(crate) source: Option<&'a str>,
    pub(crate) external_id: Option<&'a str>,
    pub(crate) author: Option<&'a str>,
    pub(crate) persona_id: Option<&'a str>,
    pub(crate) topic: Option<&'a str>,
    pub(crate) title: &'a str,
    pub(crate) body: &'a str,
    pub(crate) created_at: i64,
    pub(crate) stored_at: i64,
    pub(crate) hash: String,
}

pub(crate) struct AnalysisVals<'a> {
    pub(crate) a: &'a NewAnalysis,
    pub(crate) post_id: &'a str,
    pub(crate) created_at: i64,
}

pub(crate) struct EmotionVals<'a> {
    pub(crate) post_id: &'a str,
    pub(crate) label: &'a str,
    pub(crate) scores: [f64; 7],
    pub(crate) persona_id: Option<&'a str>,
    pub(crate) topic: Option<&'a str>,
    pub(crate) created_at: i64,
}

pub(crate) struct TrajectoryVals<'a> {
    pub(crate) t: &'a NewTrajectory,
    pub(crate) post_id: &'a str,
    pub(crate) created_at: i64,
}

pub(crate) struct SegmentVals<'a> {
    pub(crate) trajectory_id: &'a str,
    pub(crate) s: &'a NewSegment,
}

/// The rows a batch writes, worked out in memory before any of them is
/// sent: duplicates dropped, repeated post ids merged the way applying the
/// records one after another would.
#[derive(Default)]
pub(crate) struct Plan<'a> {
    pub(crate) posts: Vec<PostVals<'a>>,
    pub(crate) analyses: Vec<AnalysisVals<'a>>,
    pub(crate) emotions: Vec<EmotionVals<'a>>,
    /// Stored posts that got no new emotion but may have a new persona,
    /// topic or time, which their `post_emotions` row copies.
    pub(crate) sync_emotions: Vec<&'a str>,
    pub(crate) trajectories: Vec<TrajectoryVals<'a>>,
    pub(crate) segments: Vec<SegmentVals<'a>>,
    pub(crate) written: Vec<u64>,
    pub(crate) duplicates: Vec<u64>,
}

impl<'a> Plan<'a> {
    pub(crate) fn new(batch: &'a [Arc<Queued>], existing: &'a [Existing]) -> Self {
        let mut plan = Plan::default();
        let mut owner: HashMap<ContentHash, &'a str> = existing.iter().map(|e| (e.hash, e.id.as_str())).collect();
        let stored: HashMap<&'a str, &'a Existing> = existing.iter().map(|e| (e.id.as_str(), e)).collect();
        let mut post_at: HashMap<&'a str, usize> = HashMap::new();
        let mut emotion_at: HashMap<&'a str, usize> = HashMap::new();
        let mut analysis_ids: HashSet<&'a str> = HashSet::new();
        let mut trajectory_ids: HashSet<&'a str> = HashSet::new();
        for q in batch {
            let (r, p) = (&q.record, &q.record.post);
            if let Some(other) = owner.get(&p.content_hash).filter(|other| **other != p.id) {
                tracing::debug!(post = %p.id, stored_as = %other, hash = %p.content_hash, "content already stored under another post id; skipped");
                plan.duplicates.push(q.seq);
                continue;
            }
            owner.insert(p.content_hash, &p.id);
            match post_at.get(p.id.as_str()) {
                Some(&i) => {
                    let v = &mut plan.posts[i];
                    v.source = p.source.as_deref().or(v.source);
                    v.external_id = p.external_id.as_deref().or(v.external_id);
                    v.author = p.author.as_deref().or(v.author);
                    v.persona_id = p.persona_id.as_deref().or(v.persona_id);
                    v.topic = p.topic.as_deref().or(v.topic);
                    v.title = &p.title;
                    v.body = &p.body;
                    v.hash = p.content_hash.to_hex();
                    v.created_at = p.created_at.unwrap_or(v.created_at);
                }
                None => {
                    let old = stored.get(p.id.as_str());
                    plan.posts.push(PostVals {
                        id: &p.id,
                        source: p.source.as_deref(),
                        external_id: p.external_id.as_deref(),
                        author: p.author.as_deref(),
                        persona_id: p.persona_id.as_deref().or(old.and_then(|e| e.persona_id.as_deref())),
                        topic: p.topic.as_deref().or(old.and_then(|e| e.topic.as_deref())),
                        title: &p.title,
                        body: &p.body,
                        created_at: p.created_at.or(old.map(|e| e.created_at)).unwrap_or(q.accepted_at),
                        stored_at: q.accepted_at,
                        hash: p.content_hash.to_hex(),
                    });
                    post_at.insert(&p.id, plan.posts.len() - 1);
                }
            }
            for a in &r.analyses {
                if analysis_ids.insert(&a.id) {
                    plan.analyses.push(AnalysisVals { a, post_id: &p.id, created_at: q.accepted_at });
                }
            }
            if let Some(e) = &r.emotion {
                let vals = EmotionVals {
                    post_id: &p.id,
                    label: &e.label,
                    scores: EMOTIONS.map(|name| e.scores.get(name).copied().unwrap_or(0.0)),
                    persona_id: None,
                    topic: None,
                    created_at: 0,
                };
                match emotion_at.get(p.id.as_str()) {
                    Some(&i) => plan.emotions[i] = vals,
                    None => {
                        emotion_at.insert(&p.id, plan.emotions.len());
                        plan.emotions.push(vals);
                    }
                }
            }
            if let Some(t) = &r.trajectory {
                if trajectory_ids.insert(&t.analysis_id) {
                    plan.trajectories.push(TrajectoryVals { t, post_id: &p.id, created_at: q.accepted_at });
                    plan.segments.extend(t.segments.iter().map(|s| SegmentVals { trajectory_id: &t.analysis_id, s }));
                }
            }
            plan.written.push(q.seq);
        }
        // The aggregates row copies the post's final persona, topic and time.
        for e in &mut plan.emotions {
            if let Some(&i) = post_at.get(e.post_id) {
                let post = &plan.posts[i];
                (e.persona_id, e.topic, e.created_at) = (post.persona_id, post.topic, post.created_at);
            }
        }
        plan.sync_emotions = plan
            .posts
            .iter()
            .filter(|p| stored.contains_key(p.id) && !emotion_at.contains_key(p.id))
            .map(|p| p.id)
            .collect();
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NewPost, PostEmotion};

    fn queued(seq: u64, id: &str, body: &str, persona: Option<&str>, created: Option<i64>) -> Arc<Queued> {
        let post = NewPost {
            id: id.into(),
            source: None,
            external_id: None,
            author: None,
            persona_id: persona.map(str::to_string),
            topic: None,
            title: String::new(),
            body: body.into(),
            created_at: created,
            content_hash: ContentHash::of("", body),
        };
        let emotion = PostEmotion { label: "joy".into(), scores: [("joy".to_string(), 0.9)].into_iter().collect() };
        Arc::new(Queued {
            seq,
            accepted_at: 1_000 + seq as i64,
            record: AnalysisRecord { post, analyses: Vec::new(), emotion: Some(emotion), trajectory: None },
        })
    }

    #[test]
    fn plan_drops_content_owned_by_another_post_and_merges_repeats() {
        let existing = vec![Existing {
            id: "old".into(),
            hash: ContentHash::of("", "taken"),
            created_at: 5,
            persona_id: Some("p0".into()),
            topic: Some("t0".into()),
        }];
        let batch = vec![
            queued(1, "a", "fresh", Some("p1"), Some(10)),
            queued(2, "b", "taken", None, None),
            queued(3, "c", "fresh", None, None),
            queued(4, "a", "fresh again", None, None),
            queued(5, "old", "taken", None, None),
        ];
        let plan = Plan::new(&batch, &existing);
        assert_eq!(plan.written, vec![1, 4, 5]);
        assert_eq!(plan.duplicates, vec![2, 3]);
        assert_eq!(plan.posts.len(), 2);
        let a = &plan.posts[0];
        assert_eq!((a.body, a.persona_id, a.created_at), ("fresh again", Some("p1"), 10), "merged in order");
        let old = &plan.posts[1];
        assert_eq!((old.created_at, old.persona_id, old.topic), (5, Some("p0"), Some("t0")), "stored values kept");
        assert_eq!(plan.emotions.len(), 2);
        assert_eq!(plan.emotions[1].persona_id, Some("p0"));
        assert_eq!(plan.emotions[0].scores, [0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.0]);
        assert!(plan.sync_emotions.is_empty(), "both posts got a new emotion");
    }
}
