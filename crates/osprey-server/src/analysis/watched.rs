//! What `osprey watch` asks of the analyzer: one embedding per post (its
//! head: title and the start of the body) for near-duplicates and topics,
//! and the one-pass analysis of the posts it keeps, stored with their topic.
//!
//! A watch sees each post once, so nothing here goes through the result
//! cache. Analysis ids are derived from content and signature
//! ([`analysis_id`](super::persist::analysis_id)), so a batch replayed
//! after a crash stores nothing twice.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use osprey_engine::{EmbedOptions, Embedder, Truncation};
use osprey_nlp::topics::TopicIndex;
use osprey_store::ContentHash;
use osprey_types::analysis::{
    AnalyzeRequest, EmotionOptions, Post, PostAnalysis, SmoothingSpec, SummaryMethod, Task, TopicMatch, TopicSetInfo,
    TopicSpec,
};
use osprey_types::error::ErrorCode;

use super::persist::Signature;
use super::topics::{TopicDraft, TopicSet};
use super::{embed_all, stage, topic_match, Analyzer};
use crate::error::{ApiError, ApiResult};

/// The analyses a watch runs on the posts it keeps.
#[derive(Debug, Clone)]
pub struct WatchAnalysis {
    /// Without `topics`: the watch matches topics itself, once per post.
    pub tasks: BTreeSet<Task>,
    pub emotion: EmotionOptions,
    pub summary_k: Option<usize>,
    pub summary_method: SummaryMethod,
    pub smoothing: SmoothingSpec,
}

/// A watch's topic set, embedded, with the threshold it keeps posts at.
pub struct TopicFilter {
    pub set: Arc<TopicSet>,
    pub threshold: f32,
    /// What a stored topic match depends on.
    signature: Signature,
}

impl TopicFilter {
    pub fn score(&self, v: &[f32]) -> TopicMatch {
        topic_match(&self.set, v, self.threshold)
    }
}

/// A post the watch keeps, with its content hash and topic.
pub struct Kept {
    pub post: Post,
    pub hash: ContentHash,
    pub topic: Option<TopicMatch>,
}

/// A post's whole text as a watch reads it: the title, a blank line and
/// the body.
pub fn whole_text(post: &Post) -> String {
    if post.body.is_empty() {
        post.title.clone()
    } else if post.title.is_empty() {
        post.body.clone()
    } else {
        format!("{}\n\n{}", post.title, post.body)
    }
}

/// The text a watch embeds for a post: the title, a blank line and the
/// body, cut at `chars` characters (on a character boundary).
pub fn head(post: &Post, chars: usize) -> String {
    let full = whole_text(post);
    match full.char_indices().nth(chars) {
        Some((cut, _)) => full[..cut].to_string(),
        None => full,
    }
}

impl Analyzer {
    /// The default embedding model, loading it if needed.
    pub(crate) async fn default_embedder(&self) -> ApiResult<Embedder> {
        self.embedder().await
    }

    /// Unit vectors of `texts`, each cut at the model's sequence length.
    pub(crate) async fn embed_heads(&self, embedder: &Embedder, texts: Vec<String>) -> ApiResult<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let out = embedder.embed(texts, EmbedOptions { truncation: Truncation::Truncate, normalize: true }).await?;
        stage("embed", started);
        Ok(out.vectors)
    }

    /// A watch's topics: the stored set `name`, or `inline` topics embedded
    /// now under the watch's name. `head_chars` is part of what a stored
    /// match depends on.
    pub(crate) async fn watch_topics(
        &self,
        watch: &str,
        name: Option<&str>,
        inline: &[TopicSpec],
        threshold: Option<f32>,
        head_chars: usize,
        embedder: &Embedder,
    ) -> ApiResult<TopicFilter> {
        let set = match name {
            Some(name) => self.topic_set(name, embedder).await?,
            None => {
                let req = osprey_types::analysis::TopicSetRequest {
                    topics: inline.to_vec(),
                    threshold,
                    description: Some(format!("inline topics of watch {watch}")),
                };
                let draft = TopicDraft::parse(watch, req, self.settings.topic_threshold)?;
                let phrases: Vec<String> = draft.phrases().into_iter().map(|(_, p)| p).collect();
                let vectors = embed_all(embedder, phrases).await?;
                Arc::new(inline_set(draft, vectors, embedder)?)
            }
        };
        let threshold = threshold.unwrap_or(set.info.threshold);
        if !threshold.is_finite() || !(-1.0..=1.0).contains(&threshold) {
            return Err(ApiError::validation("a watch's `threshold` must be within [-1, 1]"));
        }
        let info = embedder.info();
        let signature = Signature {
            model: info.id.clone(),
            revision: format!("{}@{}", info.id, info.revision),
            options: serde_json::json!({
                "topic_set": set.info.name,
                "fingerprint": format!("{:032x}", set.fingerprint()),
                "threshold": threshold,
                "text": "head",
                "head_chars": head_chars,
            }),
        };
        Ok(TopicFilter { set, threshold, signature })
    }

    /// Runs `spec`'s analyses over `posts` and queues each post, its
    /// results and its topic match for the store, waiting for room in the
    /// writer's queue rather than dropping anything. Posts that cannot be
    /// analysed (no sentences, too long) come back as `Err` in their slot;
    /// the rest are queued. The caller flushes the store to know they are
    /// written.
    pub(crate) async fn analyze_kept(
        &self,
        posts: Vec<Kept>,
        spec: &WatchAnalysis,
        topics: Option<&TopicFilter>,
    ) -> ApiResult<Vec<Result<PostAnalysis, String>>> {
        let mut out = Vec::with_capacity(posts.len());
        let mut rest = posts;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(self.settings.max_texts));
            let chunk = std::mem::replace(&mut rest, tail);
            match self.analyze_chunk(&chunk, spec, topics).await {
                Ok(results) => out.extend(results.into_iter().map(Ok)),
                // One bad post refuses the whole request: retry one by one
                // to keep the others.
                Err(e) if e.code == ErrorCode::ValidationError || e.code == ErrorCode::InputTooLong => {
                    for one in chunk {
                        let single = std::slice::from_ref(&one);
                        match self.analyze_chunk(single, spec, topics).await {
                            Ok(mut r) => out.push(r.pop().ok_or_else(|| "no result".to_string())),
                            Err(e) if e.code == ErrorCode::ValidationError || e.code == ErrorCode::InputTooLong => {
                                out.push(Err(e.message))
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn analyze_chunk(
        &self,
        chunk: &[Kept],
        spec: &WatchAnalysis,
        topics: Option<&TopicFilter>,
    ) -> ApiResult<Vec<PostAnalysis>> {
        let started = Instant::now();
        let req = AnalyzeRequest {
            posts: chunk.iter().map(|k| k.post.clone()).collect(),
            tasks: spec.tasks.iter().copied().filter(|t| *t != Task::Topics).collect(),
            topic_set: None,
            threshold: None,
            summary_k: spec.summary_k,
            summary_method: spec.summary_method,
            smoothing: spec.smoothing,
            emotion: spec.emotion.clone(),
            store: Some(false),
            reuse: Some(false),
        };
        // What each stored result depends on, worked out before the request
        // is handed over (no copy of the posts).
        let sigs = match &self.store {
            None => None,
            Some(_) => {
                let tasks: BTreeSet<Task> = req.tasks.iter().copied().collect();
                let opts = self.emotion.resolve(&req.emotion)?;
                let k = self.summary_k(req.summary_k)?;
                // The summary's signature names the embedding model when one ranked the sentences.
                let embedder = if tasks.contains(&Task::Summary) && req.summary_method != SummaryMethod::Tfidf {
                    self.embedder().await.ok()
                } else {
                    None
                };
                let mut sigs = self.signatures(&tasks, opts, &req, embedder.as_ref(), None, None, k);
                if let Some(filter) = topics {
                    sigs.0.insert(Task::Topics, filter.signature.clone());
                }
                Some(sigs)
            }
        };
        let mut results = if req.tasks.is_empty() {
            chunk.iter().map(|k| PostAnalysis::empty(&k.post.id)).collect()
        } else {
            self.analyze_with(req, false).await?.results
        };
        for (kept, result) in chunk.iter().zip(results.iter_mut()) {
            result.topics.clone_from(&kept.topic);
        }
        let (Some(store), Some(sigs)) = (&self.store, sigs) else { return Ok(results) };
        let share = started.elapsed().as_secs_f64() * 1e3 / chunk.len().max(1) as f64;
        let started = Instant::now();
        for (kept, result) in chunk.iter().zip(results.iter_mut()) {
            let record = sigs.record(&kept.post, kept.hash, result, share)?;
            store
                .submit(record)
                .await
                .map_err(|e| ApiError::new(ErrorCode::NotReady, format!("the store refused a watched post: {e}")))?;
        }
        stage("store", started);
        Ok(results)
    }
}

/// When `post` was created (epoch ms), if it says so validly.
pub fn created_ms(post: &Post) -> Option<i64> {
    super::persist::created_ms(post).ok().flatten()
}

/// A topic set that lives only in the watch that defines it (version 1).
fn inline_set(draft: TopicDraft, vectors: Vec<Vec<f32>>, embedder: &Embedder) -> ApiResult<TopicSet> {
    let labels: Vec<String> = draft.topics.iter().map(|t| t.label.clone()).collect();
    let phrases: Vec<(usize, Vec<f32>)> = draft.phrases().into_iter().map(|(t, _)| t).zip(vectors).collect();
    let index = TopicIndex::new(labels, phrases).map_err(|e| ApiError::validation(e.to_string()))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let info = embedder.info();
    Ok(TopicSet {
        info: TopicSetInfo {
            name: draft.name,
            version: 1,
            topics: draft.topics,
            threshold: draft.threshold,
            description: draft.description,
            created_at: now,
            updated_at: now,
            model: info.id.clone(),
        },
        index,
        revision: format!("{}@{}", info.id, info.revision),
    })
}
