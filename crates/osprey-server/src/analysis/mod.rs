//! The analysis service behind `/v1/sentiment`, `/v1/emotion`,
//! `/v1/trajectory`, `/v1/summarize`, `/v1/topics`, `/v1/filter` and
//! `/v1/analyze`: it wires osprey-nlp's pure functions to the engine's
//! embeddings and classifier, and answers repeated requests from the result
//! cache.
//!
//! # Layout
//! - [`settings`]: `[analysis]` settings.
//! - [`cache`]: the content-addressed result cache.
//! - [`emotion`]: classifier, ensemble and lexicon fallback.
//! - [`topics`]: the topic-set store.
//! - `pipeline`: the one-pass `/v1/analyze`.
//! - `persist`: what `/v1/analyze` stores and reuses.
//! - [`watched`]: what `osprey watch` asks of the analyzer.

pub mod cache;
pub mod emotion;
mod persist;
mod pipeline;
pub mod settings;
pub mod topics;
pub mod watched;

use std::sync::Arc;
use std::time::Instant;

use osprey_engine::{EmbedOptions, Embedder, ModelRegistry, Truncation};
use osprey_nlp::emotion::EmotionDist;
use osprey_nlp::segment::{split_sentences, Segment};
use osprey_nlp::summary::{centrality_scores, tfidf_scores, top_k_in_order, Centrality};
use osprey_nlp::trajectory::{self, Smoothing};
use osprey_nlp::vader::{Sentiment, Vader};
use osprey_types::analysis::{
    ArcPoint, EmotionOptions, EmotionPath, EmotionScores, FilterRequest, FilterResponse, FilterResult, SentimentScores,
    SmoothingSpec, SummaryMethod, SummaryResult, SummarySentence, TopicMatch, TopicSetInfo, TopicSetRequest,
    TrajectoryResponse, TrajectorySegment, TrajectorySummary,
};
use osprey_types::error::ErrorCode;
use osprey_types::metrics as m;

pub use settings::AnalysisSettings;

use self::cache::{KeyBuilder, KeyParts as _, TaskCache};
use self::emotion::{EmotionOutcome, EmotionService, ResolvedOptions};
use self::topics::{TopicDraft, TopicSet, TopicStore};
use crate::error::{ApiError, ApiResult};
use osprey_cache::CacheKey;

/// Texts longer than this (in bytes, summed over a request) are analysed on
/// the blocking pool rather than on the async runtime.
const INLINE_BYTES: usize = 16 * 1024;
/// Results assembled from more sentences than this are built on the blocking pool.
const INLINE_SEGMENTS: usize = 256;

struct Caches {
    sentiment: TaskCache<SentimentScores>,
    emotion: TaskCache<EmotionScores>,
    trajectory: TaskCache<TrajectoryResponse>,
    summary: TaskCache<SummaryResult>,
    analyze: TaskCache<osprey_types::analysis::PostAnalysis>,
}

pub struct Analyzer {
    settings: AnalysisSettings,
    /// Where `/v1/analyze` keeps posts and results; `None` with storage off.
    store: Option<osprey_store::Store>,
    vader: Result<Arc<Vader>, String>,
    pub emotion: EmotionService,
    pub topics: TopicStore,
    caches: Caches,
    registry: Arc<ModelRegistry>,
}

impl Analyzer {
    /// Reads VADER's lexicon and opens the topic store; the emotion model
    /// loads later ([`EmotionService::load_model`]).
    pub fn new(
        settings: AnalysisSettings,
        registry: Arc<ModelRegistry>,
        data_dir: Option<std::path::PathBuf>,
        store: Option<osprey_store::Store>,
        cache: osprey_cache::Cache,
    ) -> Self {
        let vader = Vader::from_dir(&settings.vader_dir).map(Arc::new).map_err(|e| {
            tracing::error!(error = %e, "VADER lexicon unavailable; sentiment and emotion routes answer 503");
            e.to_string()
        });
        let c = &settings.cache;
        let max = c.max_entry_bytes;
        let caches = Caches {
            sentiment: TaskCache::new("sentiment", cache.clone(), c.sentiment, max),
            emotion: TaskCache::new("emotion", cache.clone(), c.emotion, max),
            trajectory: TaskCache::new("trajectory", cache.clone(), c.trajectory, max),
            summary: TaskCache::new("summary", cache.clone(), c.summary, max),
            analyze: TaskCache::new("analyze", cache, c.analyze, max),
        };
        Self {
            emotion: EmotionService::new(settings.emotion.clone()),
            topics: TopicStore::open(data_dir.map(|d| d.join("topics")), store.clone()),
            settings,
            store,
            vader,
            caches,
            registry,
        }
    }

    /// What `/info` reports about the analysis side.
    pub fn details(&self) -> osprey_types::api::AnalysisDetails {
        let c = &self.settings.cache;
        osprey_types::api::AnalysisDetails {
            vader: match &self.vader {
                Ok(v) => format!("ok ({} entries)", v.lexicon_len()),
                Err(e) => e.clone(),
            },
            emotion_model: self.emotion.model_status(),
            emotion_model_weight: self.settings.emotion.model_weight,
            emotion_vader_weight: self.settings.emotion.vader_weight,
            cache_policies: [
                ("sentiment", c.sentiment),
                ("emotion", c.emotion),
                ("trajectory", c.trajectory),
                ("summary", c.summary),
                ("analyze", c.analyze),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), format!("{v:?}").to_lowercase()))
            .collect(),
            storage: match &self.store {
                None => "off".into(),
                Some(s) => format!("{:?}", s.backend()).to_lowercase(),
            },
            topic_sets: self.topics.count(),
        }
    }

    /// Whether the analysis routes can answer (VADER loaded, emotion model
    /// not still preloading).
    pub fn readiness(&self) -> Result<(), String> {
        self.vader.as_ref().map(|_| ()).map_err(|e| format!("VADER lexicon: {e}"))?;
        self.emotion.readiness()
    }

    fn vader(&self) -> ApiResult<Arc<Vader>> {
        self.vader.clone().map_err(|e| ApiError::new(ErrorCode::NotReady, format!("sentiment is unavailable: {e}")))
    }

    /// Checks a request's texts against the limits.
    pub fn check_texts(&self, texts: &[String], field: &str) -> ApiResult<()> {
        if texts.is_empty() {
            return Err(ApiError::validation(format!("`{field}` cannot be empty")));
        }
        if texts.len() > self.settings.max_texts {
            return Err(ApiError::validation(format!(
                "`{field}` holds {} items; at most {} are accepted per request (analysis.max_texts)",
                texts.len(),
                self.settings.max_texts
            )));
        }
        for (i, t) in texts.iter().enumerate() {
            self.check_text(t, &format!("{field}[{i}]"))?;
        }
        Ok(())
    }

    pub fn check_text(&self, text: &str, field: &str) -> ApiResult<()> {
        if text.trim().is_empty() {
            return Err(ApiError::validation(format!("`{field}` is empty")));
        }
        // Bytes bound chars from above: count chars only when it could matter.
        if text.len() > self.settings.max_text_chars && text.chars().count() > self.settings.max_text_chars {
            return Err(ApiError::new(
                ErrorCode::InputTooLong,
                format!(
                    "`{field}` is longer than {} characters (analysis.max_text_chars)",
                    self.settings.max_text_chars
                ),
            ));
        }
        Ok(())
    }

    /// The embedding model, if it can be had.
    async fn embedder(&self) -> ApiResult<Embedder> {
        Ok(self.registry.get(self.registry.default_name()).await?)
    }

    /// VADER on each text.
    pub async fn sentiment(&self, texts: Vec<String>) -> ApiResult<Vec<SentimentScores>> {
        let vader = self.vader()?;
        let started = Instant::now();
        let keys: Vec<CacheKey> = texts.iter().map(|t| KeyBuilder::new("sentiment").str(t.trim()).finish()).collect();
        let mut out: Vec<Option<SentimentScores>> = self.caches.sentiment.get_many(&keys).await;
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let todo: Vec<String> = missing.iter().map(|&i| texts[i].trim().to_string()).collect();
            let scores: Vec<SentimentScores> = off_runtime(&todo, move |todo| {
                todo.iter().map(|t| wire_sentiment(&vader.polarity_scores(t))).collect()
            })
            .await?;
            for (i, s) in missing.into_iter().zip(scores) {
                self.caches.sentiment.insert(keys[i], s);
                out[i] = Some(s);
            }
        }
        stage("sentiment", started);
        metrics::counter!(m::ANALYSIS_TEXTS_TOTAL, "task" => "sentiment").increment(texts.len() as u64);
        Ok(out.into_iter().flatten().collect())
    }

    fn emotion_key(&self, opts: &ResolvedOptions) -> KeyBuilder {
        let mut k = KeyBuilder::new("emotion");
        k.str(&self.emotion.model_revision().unwrap_or_default()).opts(opts);
        k
    }

    /// Emotion of each text, whole (long texts are classified in 512-token
    /// windows whose predictions are averaged).
    pub async fn emotion(&self, texts: Vec<String>, opts: &EmotionOptions) -> ApiResult<Vec<EmotionScores>> {
        let opts = self.emotion.resolve(opts)?;
        let vader = self.vader()?;
        let started = Instant::now();
        let base = self.emotion_key(&opts);
        let keys: Vec<CacheKey> = texts
            .iter()
            .map(|t| {
                let mut k = base.clone();
                k.str(t.trim());
                k.finish()
            })
            .collect();
        let mut out: Vec<Option<EmotionScores>> = self.caches.emotion.get_many(&keys).await;
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            // The key is the trimmed text, so that is what is analysed.
            let todo: Vec<String> = missing.iter().map(|&i| texts[i].trim().to_string()).collect();
            let expects_model = self.emotion.expects_model(opts);
            let outcomes = self.emotions_of(&todo, vader, opts, None).await?;
            for (i, o) in missing.into_iter().zip(outcomes) {
                let wire = o.to_wire();
                // A lexicon answer standing in for a failed model call is not cached.
                if !(expects_model && o.path == EmotionPath::Lexicon) {
                    self.caches.emotion.insert(keys[i], wire.clone());
                }
                out[i] = Some(wire);
            }
        }
        stage("emotion", started);
        metrics::counter!(m::ANALYSIS_TEXTS_TOTAL, "task" => "emotion").increment(texts.len() as u64);
        Ok(out.into_iter().flatten().collect())
    }

    /// Emotion outcomes for `texts` by the path `opts` and the model's state
    /// allow. `sentiments`, when given, are the texts' VADER scores.
    async fn emotions_of(
        &self,
        texts: &[String],
        vader: Arc<Vader>,
        opts: ResolvedOptions,
        sentiments: Option<&[Sentiment]>,
    ) -> ApiResult<Vec<EmotionOutcome>> {
        let model = match self.emotion.model_for(opts) {
            Ok(model) => model,
            Err(reason) => {
                // The lexicon path: CPU only, so off the runtime for big inputs.
                self.emotion.record_fallback(reason, texts.len());
                let lexicon = osprey_nlp::emotion::EmotionLexicon::builtin();
                let dists =
                    off_runtime(texts, move |t| t.iter().map(|x| lexicon.score(x).dist).collect::<Vec<_>>()).await?;
                return Ok(dists.into_iter().map(|dist| EmotionOutcome { dist, path: EmotionPath::Lexicon }).collect());
            }
        };
        let owned_sentiments: Vec<Sentiment>;
        let sentiments = match sentiments {
            Some(s) => s,
            None => {
                owned_sentiments =
                    off_runtime(texts, move |t| t.iter().map(|x| vader.polarity_scores(x)).collect()).await?;
                &owned_sentiments
            }
        };
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(self.emotion.classify(&model, &refs, sentiments, opts, Truncation::Chunk).await)
    }

    /// Splits `text` (on the blocking pool when it is long), checking the
    /// result is usable.
    async fn segments(&self, text: &str) -> ApiResult<Vec<Segment>> {
        let started = Instant::now();
        let segs = if text.len() > INLINE_BYTES {
            let owned = text.to_string();
            blocking_if(true, move || split_sentences(&owned)).await?
        } else {
            split_sentences(text)
        };
        stage("segment", started);
        if segs.is_empty() {
            return Err(ApiError::validation("the text holds no sentences"));
        }
        Ok(segs)
    }

    /// Per-sentence emotion and VADER scores, smoothed valence and the arc.
    pub async fn trajectory(
        &self,
        text: String,
        smoothing: SmoothingSpec,
        opts: &EmotionOptions,
    ) -> ApiResult<TrajectoryResponse> {
        let opts = self.emotion.resolve(opts)?;
        check_smoothing(smoothing)?;
        let vader = self.vader()?;
        let key = {
            let mut k = KeyBuilder::new("trajectory");
            k.str(&self.emotion.model_revision().unwrap_or_default()).opts(&opts).opts(&smoothing).str(&text);
            k.finish()
        };
        self.caches
            .trajectory
            .memoize(key, || async move {
                let started = Instant::now();
                let expects_model = self.emotion.expects_model(opts);
                let segs = self.segments(&text).await?;
                let seg_texts: Vec<String> = segs.iter().map(|s| s.text(&text).to_string()).collect();
                let v = Arc::clone(&vader);
                let sentiments: Vec<Sentiment> =
                    off_runtime(&seg_texts, move |t| t.iter().map(|x| v.polarity_scores(x)).collect()).await?;
                let emotions = self.emotions_of(&seg_texts, vader, opts, Some(&sentiments)).await?;
                // A lexicon answer standing in for a failed model call is not cached.
                let fell_back = expects_model && emotions.iter().any(|e| e.path == EmotionPath::Lexicon);
                let out = blocking_if(segs.len() > INLINE_SEGMENTS, move || {
                    build_trajectory(&text, &segs, &sentiments, &emotions, smoothing)
                })
                .await?;
                stage("trajectory", started);
                metrics::counter!(m::ANALYSIS_TEXTS_TOTAL, "task" => "trajectory").increment(1);
                Ok((out, !fell_back))
            })
            .await
    }

    /// The `k` most central sentences, in document order.
    pub async fn summarize(&self, text: String, k: Option<usize>, method: SummaryMethod) -> ApiResult<SummaryResult> {
        let k = self.summary_k(k)?;
        // TF-IDF needs no model; embedding methods fall back to it when the
        // embedding model cannot be had.
        let embedder = match method {
            SummaryMethod::Tfidf => None,
            _ => match self.embedder().await {
                Ok(e) => Some(e),
                Err(e) => {
                    tracing::warn!(error = %e, "embedding model unavailable; summarising with TF-IDF");
                    None
                }
            },
        };
        let revision = embedder.as_ref().map(|e| format!("{}@{}", e.info().id, e.info().revision));
        let key = {
            let mut kb = KeyBuilder::new("summary");
            kb.str(revision.as_deref().unwrap_or("tfidf")).opts(&(k, method)).str(&text);
            kb.finish()
        };
        self.caches
            .summary
            .memoize(key, || async move {
                let started = Instant::now();
                let segs = self.segments(&text).await?;
                let seg_texts: Vec<String> = segs.iter().map(|s| s.text(&text).to_string()).collect();
                let vectors = match embedder {
                    Some(e) if segs.len() > 1 => Some(embed_all(&e, seg_texts.clone()).await?),
                    _ => None,
                };
                let big = seg_texts.len() > INLINE_SEGMENTS;
                let (scores, used) =
                    blocking_if(big, move || rank_sentences(&seg_texts, vectors.as_deref(), method)).await?;
                let out = build_summary(&text, &segs, &scores, k, used);
                stage("summary", started);
                metrics::counter!(m::ANALYSIS_TEXTS_TOTAL, "task" => "summary").increment(1);
                Ok((out, true))
            })
            .await
    }

    fn summary_k(&self, k: Option<usize>) -> ApiResult<usize> {
        match k {
            Some(0) => Err(ApiError::validation("`k` must be at least 1")),
            Some(k) if k > 1_000 => Err(ApiError::validation("`k` must be at most 1000")),
            Some(k) => Ok(k),
            None => Ok(self.settings.summary_k),
        }
    }

    /// Stores (or replaces) a topic set, embedding its phrases once.
    pub async fn put_topics(&self, name: &str, req: TopicSetRequest) -> ApiResult<TopicSetInfo> {
        let draft = TopicDraft::parse(name, req, self.settings.topic_threshold)?;
        let embedder = self.embedder().await?;
        let phrases: Vec<String> = draft.phrases().into_iter().map(|(_, p)| p).collect();
        let vectors = embed_all(&embedder, phrases).await?;
        let info = embedder.info();
        let set = self.topics.insert(draft, vectors, &info.id, &format!("{}@{}", info.id, info.revision)).await?;
        Ok(set.info.clone())
    }

    /// The topic set `name` with vectors from `embedder`'s model: embedded
    /// on first use in this process (or again after a model change).
    pub async fn topic_set(&self, name: &str, embedder: &Embedder) -> ApiResult<Arc<TopicSet>> {
        let info = embedder.info();
        let revision = format!("{}@{}", info.id, info.revision);
        self.topics.resolve(name, &info.id, &revision, |phrases| embed_all(embedder, phrases)).await
    }

    /// Checks posts as `/v1/filter` and `/v1/analyze` both take them: within
    /// the limits, with text, and with distinct ids. Returns each post's text.
    fn post_texts(&self, posts: &[osprey_types::analysis::Post]) -> ApiResult<Vec<String>> {
        if posts.is_empty() {
            return Err(ApiError::validation("`posts` cannot be empty"));
        }
        let texts: Vec<String> = posts.iter().map(|p| post_text(&p.title, &p.body)).collect();
        self.check_texts(&texts, "posts")?;
        let mut ids = std::collections::HashSet::new();
        if let Some(dup) = posts.iter().find(|p| !ids.insert(p.id.as_str())) {
            return Err(ApiError::validation(format!("post id {:?} appears twice", dup.id)));
        }
        for p in posts {
            check_post_fields(p)?;
        }
        Ok(texts)
    }

    /// Splits every post, refusing one that holds no sentence.
    async fn split_posts(
        &self,
        posts: &[osprey_types::analysis::Post],
        texts: &[String],
    ) -> ApiResult<Vec<Vec<Segment>>> {
        let started = Instant::now();
        let per_post = off_runtime(texts, |t| t.iter().map(|x| split_sentences(x)).collect::<Vec<_>>()).await?;
        stage("segment", started);
        if let Some(i) = per_post.iter().position(Vec::is_empty) {
            return Err(ApiError::validation(format!("post {:?} holds no sentences", posts[i].id)));
        }
        Ok(per_post)
    }

    /// Scores posts against a stored topic set.
    pub async fn filter(&self, req: FilterRequest) -> ApiResult<FilterResponse> {
        let texts = self.post_texts(&req.posts)?;
        let threshold = check_threshold(req.threshold)?;
        let embedder = self.embedder().await?;
        let set = self.topic_set(&req.topic_set, &embedder).await?;
        let threshold = threshold.unwrap_or(set.info.threshold);
        let per_post = self.split_posts(&req.posts, &texts).await?;
        let started = Instant::now();
        let mut all = Vec::new();
        for (t, segs) in texts.iter().zip(&per_post) {
            all.extend(segs.iter().map(|s| s.text(t).to_string()));
        }
        let vectors = embed_all(&embedder, all).await?;
        let ids: Vec<String> = req.posts.iter().map(|p| p.id.clone()).collect();
        let scoring_set = Arc::clone(&set);
        let results = blocking_if(vectors.len() > INLINE_SEGMENTS, move || {
            let mut results = Vec::with_capacity(ids.len());
            let mut offset = 0;
            for (id, segs) in ids.into_iter().zip(&per_post) {
                let rows = vectors[offset..offset + segs.len()].iter().map(Vec::as_slice);
                let post_vec = osprey_nlp::topics::mean_direction(rows);
                offset += segs.len();
                results.push(FilterResult { id, topic: topic_match(&scoring_set, &post_vec, threshold) });
            }
            results
        })
        .await?;
        stage("topics", started);
        metrics::counter!(m::ANALYSIS_TEXTS_TOTAL, "task" => "topics").increment(texts.len() as u64);
        Ok(FilterResponse {
            topic_set: set.info.name.clone(),
            version: set.info.version,
            threshold,
            kept: results.iter().filter(|r| r.topic.keep).count(),
            results,
        })
    }
}

/// Longest post id, author, persona, source or external id accepted.
pub const MAX_POST_FIELD_CHARS: usize = 256;

/// A post's metadata as storage needs it: ids and names of bounded length,
/// no NUL anywhere (PostgreSQL's text and JSON types refuse it, so a post
/// holding one could be answered but never stored), a readable `created`.
fn check_post_fields(p: &osprey_types::analysis::Post) -> ApiResult<()> {
    if p.id.trim().is_empty() {
        return Err(ApiError::validation("a post's `id` cannot be empty"));
    }
    let fields = [
        ("id", Some(&p.id)),
        ("author", p.author.as_ref()),
        ("persona_id", p.persona_id.as_ref()),
        ("source", p.source.as_ref()),
        ("external_id", p.external_id.as_ref()),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            if v.chars().count() > MAX_POST_FIELD_CHARS {
                return Err(ApiError::validation(format!(
                    "post {:?}: `{name}` is longer than {MAX_POST_FIELD_CHARS} characters",
                    p.id
                )));
            }
            if v.contains('\0') {
                return Err(ApiError::validation(format!("post {:?}: `{name}` contains a NUL character", p.id)));
            }
        }
    }
    if p.title.contains('\0') || p.body.contains('\0') {
        return Err(ApiError::validation(format!("post {:?}: the text contains a NUL character", p.id)));
    }
    persist::created_ms(p).map(|_| ())
}

/// `title`, a blank line, then `body` (either may be empty): what a post's
/// offsets refer to.
pub fn post_text(title: &str, body: &str) -> String {
    match (title.trim().is_empty(), body.trim().is_empty()) {
        (false, false) => format!("{title}\n\n{body}"),
        (false, true) => title.to_string(),
        _ => body.to_string(),
    }
}

fn check_threshold(t: Option<f32>) -> ApiResult<Option<f32>> {
    match t {
        Some(t) if !t.is_finite() || !(-1.0..=1.0).contains(&t) => {
            Err(ApiError::validation("`threshold` must be within [-1, 1]"))
        }
        other => Ok(other),
    }
}

fn check_smoothing(s: SmoothingSpec) -> ApiResult<()> {
    match s {
        SmoothingSpec::Rolling { window } if window == 0 || window > 10_000 => {
            Err(ApiError::validation("smoothing.window must be 1 to 10000"))
        }
        SmoothingSpec::Dct { low_pass } if low_pass == 0 || low_pass > 1_000 => {
            Err(ApiError::validation("smoothing.low_pass must be 1 to 1000"))
        }
        _ => Ok(()),
    }
}

fn topic_match(set: &TopicSet, v: &[f32], threshold: f32) -> TopicMatch {
    let s = set.index.score(v);
    let labels = set.index.labels();
    TopicMatch {
        best_topic: labels[s.best].clone(),
        score: s.score,
        runner_up: s.runner_up.map(|r| labels[r].clone()),
        margin: s.margin,
        keep: s.score >= threshold,
        scores: labels.iter().cloned().zip(s.scores.iter().copied()).collect(),
    }
}

fn centrality_of(method: SummaryMethod) -> Centrality {
    match method {
        SummaryMethod::Lexrank => Centrality::Lexrank,
        SummaryMethod::Textrank => Centrality::Textrank,
        SummaryMethod::Centroid | SummaryMethod::Tfidf => Centrality::Centroid,
    }
}

/// Embeds `texts` (normalised, long ones in windows rather than cut).
async fn embed_all(embedder: &Embedder, texts: Vec<String>) -> ApiResult<Vec<Vec<f32>>> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let started = Instant::now();
    let out = embedder.embed(texts, EmbedOptions { truncation: Truncation::Chunk, normalize: true }).await?;
    stage("embed", started);
    Ok(out.vectors)
}

pub(crate) fn stage(name: &'static str, started: Instant) {
    let took = started.elapsed();
    metrics::histogram!(m::ANALYSIS_STAGE_SECONDS, "stage" => name).record(took.as_secs_f64());
    osprey_engine::timing::record(name, took);
}

/// Runs CPU work over `texts` inline when small, else on the blocking pool.
async fn off_runtime<T: Send + 'static>(
    texts: &[String],
    f: impl FnOnce(&[String]) -> T + Send + 'static,
) -> ApiResult<T> {
    let bytes: usize = texts.iter().map(String::len).sum();
    if bytes <= INLINE_BYTES {
        return Ok(f(texts));
    }
    let owned = texts.to_vec();
    blocking_if(true, move || f(&owned)).await
}

/// Runs `f` on the blocking pool when `big`, else inline.
async fn blocking_if<T: Send + 'static>(big: bool, f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    if !big {
        return Ok(f());
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("analysis task failed: {e}")))
}

/// Scores sentences for a summary: centrality of their `vectors` when there
/// are any (and the method is not TF-IDF), else TF-IDF. Returns the scores
/// and the method that actually ran.
fn rank_sentences(
    sentences: &[String],
    vectors: Option<&[Vec<f32>]>,
    method: SummaryMethod,
) -> (Vec<f64>, SummaryMethod) {
    match vectors {
        Some(v) if method != SummaryMethod::Tfidf && sentences.len() > 1 => {
            (centrality_scores(v, centrality_of(method)), method_used(method, sentences.len()))
        }
        _ => {
            let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
            (tfidf_scores(&refs, Centrality::Centroid), SummaryMethod::Tfidf)
        }
    }
}

/// The summary method that really runs: graph methods fall back to the
/// centroid above `MAX_GRAPH_SENTENCES` sentences.
fn method_used(method: SummaryMethod, sentences: usize) -> SummaryMethod {
    match method {
        SummaryMethod::Lexrank | SummaryMethod::Textrank if sentences > osprey_nlp::summary::MAX_GRAPH_SENTENCES => {
            SummaryMethod::Centroid
        }
        other => other,
    }
}

pub fn wire_sentiment(s: &Sentiment) -> SentimentScores {
    use osprey_nlp::vader::SentimentLabel as L;
    use osprey_types::analysis::SentimentLabel as W;
    let label = match s.label() {
        L::Positive => W::Positive,
        L::Negative => W::Negative,
        L::Neutral => W::Neutral,
    };
    SentimentScores { compound: s.compound, pos: s.pos, neu: s.neu, neg: s.neg, label }
}

fn smoothing_of(s: SmoothingSpec) -> Smoothing {
    match s {
        SmoothingSpec::None => Smoothing::None,
        SmoothingSpec::Rolling { window } => Smoothing::Rolling { window },
        SmoothingSpec::Dct { low_pass } => Smoothing::Dct { low_pass },
    }
}

/// Assembles a trajectory from per-segment scores.
fn build_trajectory(
    text: &str,
    segs: &[Segment],
    sentiments: &[Sentiment],
    emotions: &[EmotionOutcome],
    smoothing: SmoothingSpec,
) -> TrajectoryResponse {
    let valence: Vec<f64> = sentiments.iter().map(|s| s.compound).collect();
    let smoothed = trajectory::smooth(&valence, smoothing_of(smoothing));
    let dists: Vec<EmotionDist> = emotions.iter().map(|e| e.dist).collect();
    let arc = trajectory::summarize(&valence, &smoothed, &dists);
    let point = |index: usize, value: f64| {
        let s = segs.get(index).copied().unwrap_or(Segment { start: 0, end: 0, char_start: 0, char_end: 0 });
        ArcPoint { index, start: s.char_start, end: s.char_end, value }
    };
    let segments = segs
        .iter()
        .enumerate()
        .map(|(i, s)| TrajectorySegment {
            index: i,
            start: s.char_start,
            end: s.char_end,
            text: s.text(text).to_string(),
            sentiment: wire_sentiment(&sentiments[i]),
            emotion: emotions[i].to_wire(),
            smoothed_valence: smoothed.get(i).copied().unwrap_or(valence[i]),
        })
        .collect();
    let shape = serde_json::to_value(arc.shape).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    TrajectoryResponse {
        segments,
        summary: TrajectorySummary {
            dominant_emotion: arc.dominant_emotion.to_string(),
            mean_valence: arc.mean_valence,
            volatility: arc.volatility,
            peaks: arc.peaks.iter().map(|p| point(p.index, p.value)).collect(),
            troughs: arc.troughs.iter().map(|p| point(p.index, p.value)).collect(),
            turning_points: arc
                .turning_points
                .iter()
                .map(|&i| point(i, smoothed.get(i).copied().unwrap_or(0.0)))
                .collect(),
            shape,
            arc: arc.arc.map(String::from),
        },
        smoothing,
        path: emotions.first().map_or(EmotionPath::Lexicon, |e| e.path),
    }
}

/// Picks the top `k` sentences by `scores`.
fn build_summary(text: &str, segs: &[Segment], scores: &[f64], k: usize, method: SummaryMethod) -> SummaryResult {
    let chosen = top_k_in_order(scores, k);
    let sentences: Vec<SummarySentence> = chosen
        .iter()
        .map(|&i| SummarySentence {
            index: i,
            start: segs[i].char_start,
            end: segs[i].char_end,
            text: segs[i].text(text).to_string(),
            score: scores[i],
        })
        .collect();
    SummaryResult {
        summary: sentences.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" "),
        sentences,
        method,
        total_sentences: segs.len(),
    }
}
