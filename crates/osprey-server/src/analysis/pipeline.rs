//! The one-pass `/v1/analyze`: every post is split once; each sentence is
//! scored by VADER once, classified once and embedded once, and those
//! per-sentence results feed every task the request asks for:
//!
//! - `sentiment`: VADER on the whole post (title, blank line, body);
//! - `emotion`: the mean of the sentences' distributions, weighted by their
//!   length in characters;
//! - `trajectory`: the sentences' valence and emotions, smoothed, with the arc;
//! - `summary`: centrality of the sentence vectors (TF-IDF without a model);
//! - `topics`: the mean direction of the sentence vectors against the set.
//!
//! The work of all posts in a request is batched: one classifier call and
//! one embedding call for every sentence of every uncached post.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use osprey_nlp::emotion::EmotionDist;
use osprey_nlp::segment::Segment;
use osprey_nlp::topics::mean_direction;
use osprey_nlp::vader::Sentiment;
use osprey_types::analysis::{AnalyzeRequest, AnalyzeResponse, EmotionPath, PostAnalysis, SummaryMethod, Task};
use osprey_types::metrics as m;

use super::cache::KeyBuilder;
use super::emotion::EmotionOutcome;
use super::{
    blocking_if, build_summary, build_trajectory, check_smoothing, check_threshold, embed_all, off_runtime,
    rank_sentences, stage, wire_sentiment, Analyzer, INLINE_SEGMENTS,
};
use crate::error::{ApiError, ApiResult};

/// One uncached post on its way through the pipeline.
struct Work {
    /// Index in the request.
    slot: usize,
    key: u128,
    text: String,
    segs: Vec<Segment>,
    /// Offset of this post's first sentence in the request-wide sentence list.
    first: usize,
}

impl Analyzer {
    /// Runs the requested tasks over every post in one pass.
    pub async fn analyze(&self, req: AnalyzeRequest) -> ApiResult<AnalyzeResponse> {
        if req.tasks.is_empty() {
            return Err(ApiError::validation(
                "`tasks` cannot be empty; ask for any of sentiment, emotion, trajectory, summary, topics",
            ));
        }
        let tasks: BTreeSet<Task> = req.tasks.iter().copied().collect();
        let texts = self.post_texts(&req.posts)?;
        let opts = self.emotion.resolve(&req.emotion)?;
        check_smoothing(req.smoothing)?;
        let threshold = check_threshold(req.threshold)?;
        let k = self.summary_k(req.summary_k)?;
        let vader = self.vader()?;

        let wants = |t: Task| tasks.contains(&t);
        let need_embeddings =
            wants(Task::Topics) || (wants(Task::Summary) && req.summary_method != SummaryMethod::Tfidf);
        let embedder = if need_embeddings {
            match self.embedder().await {
                Ok(e) => Some(e),
                Err(e) if !wants(Task::Topics) => {
                    tracing::warn!(error = %e, "embedding model unavailable; summarising with TF-IDF");
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let topic_set = match (wants(Task::Topics), &req.topic_set, &embedder) {
            (true, None, _) => return Err(ApiError::validation("the `topics` task needs `topic_set`")),
            (true, Some(name), Some(e)) => Some(self.topic_set(name, e).await?),
            _ => None,
        };
        let threshold = threshold.or(topic_set.as_ref().map(|s| s.info.threshold));
        let need_emotion = wants(Task::Emotion) || wants(Task::Trajectory);
        let expects_model = need_emotion && self.emotion.expects_model(opts);

        // One key per post covers the tasks, every option and every model revision involved.
        let base = {
            let mut kb = KeyBuilder::new("analyze");
            kb.json(&tasks)
                .json(&opts)
                .json(&req.smoothing)
                .json(&(k, req.summary_method, threshold))
                .str(&self.emotion.model_revision().unwrap_or_default())
                .str(&embedder.as_ref().map(|e| format!("{}@{}", e.info().id, e.info().revision)).unwrap_or_default())
                .json(&topic_set.as_ref().map(|s| s.fingerprint()));
            kb
        };
        let mut results: Vec<Option<PostAnalysis>> = vec![None; req.posts.len()];
        let mut uncached_posts = Vec::new();
        let mut uncached_texts = Vec::new();
        let mut keys = Vec::new();
        for (slot, (post, text)) in req.posts.iter().zip(texts).enumerate() {
            let mut kb = base.clone();
            let key = kb.str(&text).finish();
            match self.caches.analyze.get(key) {
                Some(hit) => {
                    let mut r = (*hit).clone();
                    r.id.clone_from(&post.id);
                    r.cached = true;
                    results[slot] = Some(r);
                }
                None => {
                    uncached_posts.push(post.clone());
                    uncached_texts.push(text);
                    keys.push((slot, key));
                }
            }
        }
        let per_post = if uncached_posts.is_empty() {
            Vec::new()
        } else {
            self.split_posts(&uncached_posts, &uncached_texts).await?
        };
        let mut work = Vec::with_capacity(per_post.len());
        let mut sentences: Vec<String> = Vec::new();
        for (((slot, key), text), segs) in keys.into_iter().zip(uncached_texts).zip(per_post) {
            let first = sentences.len();
            sentences.extend(segs.iter().map(|s| s.text(&text).to_string()));
            work.push(Work { slot, key, text, segs, first });
        }

        // Per sentence: VADER (for trajectories and the ensemble), emotion, vectors.
        let need_sentence_vader = wants(Task::Trajectory) || (expects_model && opts.ensemble());
        let v = Arc::clone(&vader);
        let started = Instant::now();
        let sentence_vader: Vec<Sentiment> = if need_sentence_vader && !sentences.is_empty() {
            off_runtime(&sentences, move |t| t.iter().map(|x| v.polarity_scores(x)).collect()).await?
        } else {
            Vec::new()
        };
        stage("sentiment", started);
        let started = Instant::now();
        let emotions: Vec<EmotionOutcome> = if need_emotion && !sentences.is_empty() {
            self.emotions_of(&sentences, Arc::clone(&vader), opts, Some(&sentence_vader)).await?
        } else {
            Vec::new()
        };
        stage("emotion", started);
        let vectors = match &embedder {
            Some(e) if !sentences.is_empty() => embed_all(e, sentences.clone()).await?,
            _ => Vec::new(),
        };
        let embedded = vectors.len();
        // A lexicon answer standing in for a failed model call is not cached.
        let fell_back = expects_model && emotions.iter().any(|e| e.path == EmotionPath::Lexicon);

        let started = Instant::now();
        let plan = Assembly {
            tasks,
            sentences,
            sentence_vader,
            emotions,
            vectors,
            topic_set,
            threshold,
            k,
            summary_method: req.summary_method,
            smoothing: req.smoothing,
        };
        let ids: Vec<String> = work.iter().map(|w| req.posts[w.slot].id.clone()).collect();
        let big = plan.sentences.len() > INLINE_SEGMENTS;
        let built = blocking_if(big, move || {
            work.into_iter().zip(ids).map(|(w, id)| (w.slot, w.key, plan.post(&vader, &w, id))).collect::<Vec<_>>()
        })
        .await?;
        for (slot, key, analysis) in built {
            if !fell_back {
                self.caches.analyze.insert(key, Arc::new(analysis.clone()));
            }
            results[slot] = Some(analysis);
        }
        stage("assemble", started);
        metrics::counter!(m::ANALYSIS_TEXTS_TOTAL, "task" => "analyze").increment(req.posts.len() as u64);
        Ok(AnalyzeResponse { results: results.into_iter().flatten().collect(), embedded_sentences: embedded })
    }
}

/// Everything the per-post answers are built from, owned so the build can run
/// on the blocking pool.
struct Assembly {
    tasks: BTreeSet<Task>,
    sentences: Vec<String>,
    sentence_vader: Vec<Sentiment>,
    emotions: Vec<EmotionOutcome>,
    vectors: Vec<Vec<f32>>,
    topic_set: Option<Arc<super::topics::TopicSet>>,
    threshold: Option<f32>,
    k: usize,
    summary_method: SummaryMethod,
    smoothing: osprey_types::analysis::SmoothingSpec,
}

impl Assembly {
    fn post(&self, vader: &osprey_nlp::vader::Vader, w: &Work, id: String) -> PostAnalysis {
        let wants = |t: Task| self.tasks.contains(&t);
        let range = w.first..w.first + w.segs.len();
        let sentiment = wants(Task::Sentiment).then(|| wire_sentiment(&vader.polarity_scores(&w.text)));
        let emotion = (wants(Task::Emotion) && !self.emotions.is_empty())
            .then(|| weighted_emotion(&w.segs, &self.emotions[range.clone()]).to_wire());
        let trajectory = (wants(Task::Trajectory) && !self.emotions.is_empty()).then(|| {
            let (s, e) = (&self.sentence_vader[range.clone()], &self.emotions[range.clone()]);
            build_trajectory(&w.text, &w.segs, s, e, self.smoothing)
        });
        let summary = wants(Task::Summary).then(|| {
            let vectors = (!self.vectors.is_empty()).then(|| &self.vectors[range.clone()]);
            let (scores, method) = rank_sentences(&self.sentences[range.clone()], vectors, self.summary_method);
            build_summary(&w.text, &w.segs, &scores, self.k, method)
        });
        let topics = match (&self.topic_set, self.threshold) {
            (Some(set), Some(t)) if !self.vectors.is_empty() => {
                let v = mean_direction(self.vectors[range.clone()].iter().map(Vec::as_slice));
                Some(super::topic_match(set, &v, t))
            }
            _ => None,
        };
        PostAnalysis { id, segments: w.segs.len(), sentiment, emotion, trajectory, summary, topics, cached: false }
    }
}

/// The sentences' emotion distributions averaged by their length in characters.
fn weighted_emotion(segs: &[Segment], emotions: &[EmotionOutcome]) -> EmotionOutcome {
    let mut acc = [0f32; 7];
    let mut total = 0f32;
    for (s, e) in segs.iter().zip(emotions) {
        let w = (s.char_end - s.char_start).max(1) as f32;
        total += w;
        for (a, p) in acc.iter_mut().zip(e.dist.0) {
            *a += w * p;
        }
    }
    if total > 0.0 {
        acc.iter_mut().for_each(|a| *a /= total);
    }
    let dist = if total > 0.0 { EmotionDist(acc) } else { EmotionDist::neutral() };
    EmotionOutcome { dist, path: emotions.first().map_or(EmotionPath::Lexicon, |e| e.path) }
}
