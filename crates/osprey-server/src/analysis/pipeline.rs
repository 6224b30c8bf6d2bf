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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use osprey_nlp::emotion::EmotionDist;
use osprey_nlp::segment::{split_sentences, Segment};
use osprey_nlp::topics::mean_direction;
use osprey_nlp::vader::Sentiment;
use osprey_store::{ContentHash, StoredPost};
use osprey_types::analysis::{AnalyzeRequest, AnalyzeResponse, EmotionPath, PostAnalysis, SummaryMethod, Task};
use osprey_types::metrics as m;

use osprey_cache::CacheKey;

use super::cache::{KeyBuilder, KeyParts as _};
use super::emotion::{EmotionOutcome, ResolvedOptions};
use super::persist::{Signature, Signatures, LEXICON, VADER_MODEL, VADER_REVISION};
use super::{
    blocking_if, build_summary, build_trajectory, check_smoothing, check_threshold, embed_all, off_runtime,
    rank_sentences, stage, wire_sentiment, Analyzer, INLINE_SEGMENTS,
};
use osprey_types::error::ErrorCode;

use crate::error::{ApiError, ApiResult};

/// One uncached post on its way through the pipeline.
struct Work {
    /// Index in the request.
    slot: usize,
    key: CacheKey,
    text: String,
    segs: Vec<Segment>,
    /// Offset of this post's first sentence in the request-wide sentence list.
    first: usize,
}

impl Analyzer {
    /// Runs the requested tasks over every post in one pass.
    pub async fn analyze(&self, req: AnalyzeRequest) -> ApiResult<AnalyzeResponse> {
        self.analyze_with(req, true).await
    }

    /// [`analyze`](Self::analyze); with `cached` false the result cache is
    /// neither read nor filled (posts seen once, as a watch's are, would
    /// only churn it).
    pub(crate) async fn analyze_with(&self, req: AnalyzeRequest, cached: bool) -> ApiResult<AnalyzeResponse> {
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
            kb.opts(&tasks)
                .opts(&opts)
                .opts(&req.smoothing)
                .opts(&(k, req.summary_method, threshold))
                .str(&self.emotion.model_revision().unwrap_or_default())
                .str(&embedder.as_ref().map(|e| format!("{}@{}", e.info().id, e.info().revision)).unwrap_or_default())
                .opts(&topic_set.as_ref().map(|s| s.fingerprint()));
            kb
        };
        let started_all = Instant::now();
        let storing = self.store.is_some() && req.store.unwrap_or(true);
        let reusing = self.store.is_some() && req.reuse.unwrap_or(true);
        let hashes: Vec<ContentHash> = req.posts.iter().map(|p| ContentHash::of(&p.title, &p.body)).collect();
        let stored = if storing || reusing { self.stored_by_hash(&hashes).await } else { HashMap::new() };
        let sigs = self.signatures(&tasks, opts, &req, embedder.as_ref(), topic_set.as_deref(), threshold, k);

        let mut results: Vec<Option<PostAnalysis>> = vec![None; req.posts.len()];
        let mut uncached_posts = Vec::new();
        let mut uncached_texts = Vec::new();
        let mut keys = Vec::new();
        for (slot, (post, text)) in req.posts.iter().zip(texts).enumerate() {
            // Memory first, then the store, then the models.
            let mut kb = base.clone();
            let key = kb.str(&text).finish();
            if cached {
                if let Some(mut r) = self.caches.analyze.get(key).await {
                    r.id.clone_from(&post.id);
                    r.cached = true;
                    results[slot] = Some(r);
                    continue;
                }
            }
            if reusing {
                if let Some(hit) = stored.get(&hashes[slot]) {
                    let segments = split_sentences(&text).len();
                    if let Some(r) = sigs.reuse(hit, &post.id, segments) {
                        metrics::counter!(m::ANALYSIS_REUSED_TOTAL).increment(1);
                        results[slot] = Some(r);
                        continue;
                    }
                }
            }
            uncached_posts.push(post.clone());
            uncached_texts.push(text);
            keys.push((slot, key));
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
            if cached && !fell_back {
                self.caches.analyze.insert(key, analysis.clone());
            }
            results[slot] = Some(analysis);
        }
        stage("assemble", started);
        let mut results: Vec<PostAnalysis> = results.into_iter().flatten().collect();
        if storing {
            let started = Instant::now();
            let share = started_all.elapsed().as_secs_f64() * 1e3 / req.posts.len() as f64;
            self.store_results(&req.posts, &hashes, &stored, &sigs, &mut results, share).await?;
            stage("store", started);
        }
        metrics::counter!(m::ANALYSIS_TEXTS_TOTAL, "task" => "analyze").increment(req.posts.len() as u64);
        Ok(AnalyzeResponse { results, embedded_sentences: embedded })
    }
}

impl Analyzer {
    /// Stored posts with these contents. Storage trouble never fails an
    /// analysis: after `store_lookup_timeout` (or an error) the posts are
    /// simply computed.
    async fn stored_by_hash(&self, hashes: &[ContentHash]) -> HashMap<ContentHash, StoredPost> {
        let Some(store) = &self.store else { return HashMap::new() };
        let limit = self.settings.store_lookup_timeout;
        match tokio::time::timeout(limit, store.find_by_hashes(hashes)).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "stored-analysis lookup failed; computing");
                metrics::counter!(m::ANALYSIS_STORE_LOOKUP_FAILURES_TOTAL, "reason" => "error").increment(1);
                HashMap::new()
            }
            Err(_) => {
                tracing::warn!(?limit, "stored-analysis lookup timed out; computing");
                metrics::counter!(m::ANALYSIS_STORE_LOOKUP_FAILURES_TOTAL, "reason" => "timeout").increment(1);
                HashMap::new()
            }
        }
    }

    /// What each requested task's answer depends on.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn signatures(
        &self,
        tasks: &BTreeSet<Task>,
        opts: ResolvedOptions,
        req: &AnalyzeRequest,
        embedder: Option<&osprey_engine::Embedder>,
        topic_set: Option<&super::topics::TopicSet>,
        threshold: Option<f32>,
        k: usize,
    ) -> Signatures {
        let emotion_model = match (self.emotion.expects_model(opts), self.emotion.model_revision()) {
            (true, Some(rev)) => (rev.split('@').next().unwrap_or_default().to_string(), rev),
            _ => (LEXICON.to_string(), LEXICON.to_string()),
        };
        let embedding = embedder.map(|e| (e.info().id.clone(), format!("{}@{}", e.info().id, e.info().revision)));
        let sig = |task: Task| match task {
            Task::Sentiment => {
                Signature { model: VADER_MODEL.into(), revision: VADER_REVISION.into(), options: serde_json::json!({}) }
            }
            Task::Emotion => Signature {
                model: emotion_model.0.clone(),
                revision: emotion_model.1.clone(),
                options: serde_json::json!({ "emotion": opts }),
            },
            Task::Trajectory => Signature {
                model: emotion_model.0.clone(),
                revision: emotion_model.1.clone(),
                options: serde_json::json!({ "emotion": opts, "smoothing": req.smoothing }),
            },
            Task::Summary => {
                let (model, revision) = match (&embedding, req.summary_method) {
                    (Some(e), m) if m != osprey_types::analysis::SummaryMethod::Tfidf => e.clone(),
                    _ => ("tfidf".to_string(), "tfidf".to_string()),
                };
                Signature { model, revision, options: serde_json::json!({ "k": k, "method": req.summary_method }) }
            }
            Task::Topics => {
                let (model, revision) = embedding.clone().unwrap_or_default();
                Signature {
                    model,
                    revision,
                    options: serde_json::json!({
                        "topic_set": req.topic_set,
                        "fingerprint": topic_set.map(|s| format!("{:032x}", s.fingerprint())),
                        "threshold": threshold,
                    }),
                }
            }
        };
        Signatures(tasks.iter().map(|t| (*t, sig(*t))).collect())
    }

    /// Queues every answered post that is not stored yet for the writer and
    /// says in each answer where it is stored. Waits for room in the
    /// writer's queue (back-pressure) rather than dropping anything.
    async fn store_results(
        &self,
        posts: &[osprey_types::analysis::Post],
        hashes: &[ContentHash],
        stored: &HashMap<ContentHash, StoredPost>,
        sigs: &Signatures,
        results: &mut [PostAnalysis],
        duration_ms: f64,
    ) -> ApiResult<()> {
        let Some(store) = &self.store else { return Ok(()) };
        // Content seen earlier in this request: stored under that post's id.
        let mut first_id: HashMap<ContentHash, String> = HashMap::new();
        for ((post, hash), result) in posts.iter().zip(hashes).zip(results.iter_mut()) {
            if result.reused {
                continue;
            }
            result.stored_id = None;
            result.analysis_ids.clear();
            if let Some(earlier) = first_id.get(hash) {
                result.stored_id = Some(earlier.clone());
                continue;
            }
            if let Some(existing) = stored.get(hash) {
                if existing.post.id != post.id {
                    result.stored_id = Some(existing.post.id.clone());
                    continue;
                }
                // Answered from the cache, already stored with these signatures.
                if let Some(same) = sigs.reuse(existing, &post.id, result.segments) {
                    result.stored_id = same.stored_id;
                    result.analysis_ids = same.analysis_ids;
                    continue;
                }
            }
            let record = sigs.record(post, *hash, result, duration_ms)?;
            // A full queue (the database down for longer than it holds) is
            // waited on for a bounded time; past it the answer goes back
            // unstored and says so (no `stored_id`), rather than failing.
            match tokio::time::timeout(self.settings.store_submit_timeout, store.submit(record)).await {
                Ok(Ok(())) => {
                    first_id.insert(*hash, post.id.clone());
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "store writer refused a record");
                    return Err(ApiError::new(
                        ErrorCode::NotReady,
                        "storage is shutting down; retry on another instance",
                    ));
                }
                Err(_) => {
                    tracing::warn!(post = %post.id, "store queue full; answering without storing");
                    metrics::counter!(m::ANALYSIS_STORE_SKIPPED_TOTAL, "reason" => "queue_full").increment(1);
                    result.stored_id = None;
                    result.analysis_ids.clear();
                }
            }
        }
        Ok(())
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
        PostAnalysis {
            id,
            segments: w.segs.len(),
            sentiment,
            emotion,
            trajectory,
            summary,
            topics,
            cached: false,
            reused: false,
            stored_id: None,
            analysis_ids: BTreeMap::new(),
        }
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
