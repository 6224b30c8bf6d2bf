//! One watch's pipeline over a batch of posts:
//!
//! 1. **dedup**: content hash, within the batch and against the contents the
//!    watch committed before (`watch_seen` in the store);
//! 2. **embed** each post's head once (title and the start of the body);
//! 3. **near-duplicates**: cosine against the last `near_duplicate_window`
//!    posts' vectors;
//! 4. **filter** by topics;
//! 5. **analyse** what is kept (summary, sentiment, emotion, trajectory) and
//!    queue it for the store, then flush: the posts are written;
//! 6. **commit**: the source's cursor and the batch's hashes, in one
//!    transaction;
//! 7. **alert**: kept posts, the digest, trend rules.
//!
//! Alerts follow the commit, so a crash can lose a batch's alerts but never
//! send them twice; a crash before the commit replays the batch, whose
//! writes are idempotent (posts by id, analyses by derived id).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use osprey_engine::Embedder;
use osprey_store::ContentHash;
use osprey_types::analysis::{Post, PostAnalysis, Task};
use osprey_types::metrics as m;
use serde::Serialize;
use serde_json::{json, Value};

use super::alerts::{Alert, Alerter};
use super::digest::{Digest, DigestEntry};
use super::settings::{AlertKind, WatchDefinition};
use super::trend::Trend;
use crate::analysis::watched::{head, whole_text, Kept, TopicFilter, WatchAnalysis};
use crate::analysis::Analyzer;
use crate::error::{ApiError, ApiResult};

/// What happened to one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Kept,
    Duplicate,
    NearDuplicate,
    Filtered,
    Invalid,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Kept => "kept",
            Outcome::Duplicate => "duplicate",
            Outcome::NearDuplicate => "near_duplicate",
            Outcome::Filtered => "filtered",
            Outcome::Invalid => "invalid",
        }
    }
}

/// One post's fate, as `POST /v1/ingest` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct PostOutcome {
    pub id: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// Why a post was invalid, or which post it duplicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Counters of a watch since it started.
#[derive(Debug, Default)]
pub struct Counters {
    pub received: AtomicU64,
    pub kept: AtomicU64,
    pub duplicate: AtomicU64,
    pub near_duplicate: AtomicU64,
    pub filtered: AtomicU64,
    pub invalid: AtomicU64,
    pub batches: AtomicU64,
    pub errors: AtomicU64,
    /// Nanoseconds spent in each [`Stage`], summed over batches.
    stage_nanos: [AtomicU64; Stage::ALL.len()],
}

/// A step of the pipeline whose time is accounted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading and parsing the source (in the source loop).
    Read,
    Dedup,
    Embed,
    NearDuplicate,
    Filter,
    Analyze,
    Store,
    Commit,
    Alert,
}

impl Stage {
    pub const ALL: [Stage; 9] = [
        Stage::Read,
        Stage::Dedup,
        Stage::Embed,
        Stage::NearDuplicate,
        Stage::Filter,
        Stage::Analyze,
        Stage::Store,
        Stage::Commit,
        Stage::Alert,
    ];

    pub fn name(self) -> &'static str {
        self.labels().0
    }

    /// The name, and the `stage` label of `osprey_analysis_stage_seconds`.
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            Stage::Read => ("read", "watch_read"),
            Stage::Dedup => ("dedup", "watch_dedup"),
            Stage::Embed => ("embed", "watch_embed"),
            Stage::NearDuplicate => ("near_duplicate", "watch_near_duplicate"),
            Stage::Filter => ("filter", "watch_filter"),
            Stage::Analyze => ("analyze", "watch_analyze"),
            Stage::Store => ("store", "watch_store"),
            Stage::Commit => ("commit", "watch_commit"),
            Stage::Alert => ("alert", "watch_alert"),
        }
    }
}

impl Counters {
    /// Seconds spent in each stage so far, in pipeline order.
    pub fn stage_seconds(&self) -> Vec<(&'static str, f64)> {
        Stage::ALL
            .iter()
            .zip(&self.stage_nanos)
            .map(|(s, n)| (s.name(), n.load(Ordering::Relaxed) as f64 / 1e9))
            .collect()
    }
}

/// The embedder and topics, made on the first batch (the model may still
/// be loading when the watch starts).
struct Prepared {
    embedder: Option<Embedder>,
    topics: Option<TopicFilter>,
}

/// A post's whole text as the near-duplicate check compares it.
#[derive(Debug, Clone, PartialEq)]
struct Words {
    /// The text was longer than the head its vector was made from.
    cut: bool,
    /// Hashes of its lower-cased word triples, sorted, each once.
    triples: Vec<u64>,
}

impl Words {
    fn of(text: &str, cut: bool) -> Self {
        let words: Vec<String> =
            text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
        let hash = |w: &[String]| xxhash_rust::xxh3::xxh3_64(w.join(" ").as_bytes());
        let mut triples: Vec<u64> =
            if words.len() < 3 { vec![hash(&words)] } else { words.windows(3).map(hash).collect() };
        triples.sort_unstable();
        triples.dedup();
        Self { cut, triples }
    }

    /// Shared triples over the triples of either (Jaccard).
    fn overlap(&self, other: &Words) -> f32 {
        let (mut i, mut j, mut shared) = (0, 0, 0usize);
        while i < self.triples.len() && j < other.triples.len() {
            match self.triples[i].cmp(&other.triples[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => (i, j, shared) = (i + 1, j + 1, shared + 1),
            }
        }
        let union = self.triples.len() + other.triples.len() - shared;
        if union == 0 {
            1.0
        } else {
            shared as f32 / union as f32
        }
    }
}

/// Whether two posts whose vectors are alike are near-duplicates: yes when
/// both vectors saw the whole text, else when their words overlap enough.
fn confirmed(a: Option<&Words>, b: Option<&Words>, min_overlap: f32) -> bool {
    match (a, b) {
        (Some(a), Some(b)) if a.cut || b.cut => a.overlap(b) >= min_overlap,
        _ => true,
    }
}

/// Recent posts' unit vectors (and words), oldest overwritten first.
struct Recent {
    dim: usize,
    capacity: usize,
    data: Vec<f32>,
    ids: Vec<String>,
    words: Vec<Option<Arc<Words>>>,
    next: usize,
}

impl Recent {
    fn new(capacity: usize) -> Self {
        Self { dim: 0, capacity, data: Vec::new(), ids: Vec::new(), words: Vec::new(), next: 0 }
    }

    /// The most similar recent post at or above `threshold`.
    #[cfg(test)]
    fn nearest(&self, v: &[f32], threshold: f32) -> Option<(usize, f32)> {
        if self.dim != v.len() {
            return None;
        }
        let mut best: Option<(usize, f32)> = None;
        for (i, row) in self.data.chunks_exact(self.dim).enumerate() {
            let s = osprey_nlp::topics::dot(row, v);
            if s >= threshold && best.is_none_or(|(_, b)| s > b) {
                best = Some((i, s));
            }
        }
        best
    }

    /// Adds `v` (with the post's words, if kept) and returns its slot.
    fn push(&mut self, id: &str, v: &[f32], words: Option<Arc<Words>>) -> usize {
        if self.dim != v.len() {
            // First vector, or a new model: start over.
            *self = Self { dim: v.len(), ..Self::new(self.capacity) };
        }
        if self.ids.len() < self.capacity {
            self.data.extend_from_slice(v);
            self.ids.push(id.to_string());
            self.words.push(words);
            self.ids.len() - 1
        } else {
            let at = self.next;
            self.data[at * self.dim..(at + 1) * self.dim].copy_from_slice(v);
            self.ids[at] = id.to_string();
            self.words[at] = words;
            self.next = (at + 1) % self.capacity;
            at
        }
    }

    /// For each of `vectors` in order: the most similar earlier post at or
    /// above `threshold` (in the ring, or earlier in this batch) that
    /// [`confirmed`] accepts given `words` (one per vector), or `None`, and
    /// then the vector joins the ring. Without words, the same answers as
    /// `nearest` then `push` post by post, but the similarities come from
    /// two matrix products (batch × ring, batch × batch) instead of one scan
    /// per post.
    fn scan(
        &mut self,
        ids: &[String],
        vectors: &[Vec<f32>],
        words: &[Option<Arc<Words>>],
        threshold: f32,
        min_overlap: f32,
    ) -> Vec<Option<(String, f32)>> {
        let Some(dim) = vectors.first().map(Vec::len) else { return Vec::new() };
        if self.dim != dim {
            *self = Self { dim, ..Self::new(self.capacity) };
        }
        let batch: Vec<f32> = vectors.iter().flatten().copied().collect();
        let (n, ring) = (vectors.len(), self.ids.len());
        let to_ring = similarities(&batch, n, &self.data, ring, dim);
        let within = similarities(&batch, n, &batch, n, dim);
        // Slots written by this batch, with the batch position now in them.
        let mut owner: Vec<Option<usize>> = vec![None; ring];
        let mut out = Vec::with_capacity(n);
        for (i, (id, v)) in ids.iter().zip(vectors).enumerate() {
            let mine = words.get(i).cloned().flatten();
            // Alike vectors, most similar first (the earlier slot on a tie).
            let mut alike: Vec<(usize, f32)> = owner
                .iter()
                .enumerate()
                .map(|(slot, o)| match o {
                    Some(k) => (slot, within[i * n + k]),
                    None => (slot, to_ring[i * ring + slot]),
                })
                .filter(|(_, s)| *s >= threshold)
                .collect();
            alike.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let best = alike
                .into_iter()
                .find(|(slot, _)| confirmed(mine.as_deref(), self.words[*slot].as_deref(), min_overlap));
            match best {
                Some((slot, s)) => out.push(Some((self.ids[slot].clone(), s))),
                None => {
                    let slot = self.push(id, v, mine);
                    match owner.get_mut(slot) {
                        Some(o) => *o = Some(i),
                        None => owner.push(Some(i)),
                    }
                    out.push(None);
                }
            }
        }
        out
    }
}

/// `a · bᵀ` for row-major `[rows_a, dim]` and `[rows_b, dim]` matrices,
/// row-major `[rows_a, rows_b]`, through candle's SIMD matrix product.
fn similarities(a: &[f32], rows_a: usize, b: &[f32], rows_b: usize, dim: usize) -> Vec<f32> {
    if rows_a == 0 || rows_b == 0 || dim == 0 {
        return Vec::new();
    }
    let product = || -> candle_core::Result<Vec<f32>> {
        let dev = &candle_core::Device::Cpu;
        let ta = candle_core::Tensor::from_slice(a, (rows_a, dim), dev)?;
        let tb = candle_core::Tensor::from_slice(b, (rows_b, dim), dev)?;
        ta.matmul(&tb.t()?)?.flatten_all()?.to_vec1::<f32>()
    };
    // Shapes are checked above; should candle still refuse, scan row by row.
    product().unwrap_or_else(|_| {
        a.chunks_exact(dim).flat_map(|x| b.chunks_exact(dim).map(move |y| osprey_nlp::topics::dot(x, y))).collect()
    })
}

/// What a batch did, for the source loop and `/v1/ingest`.
#[derive(Debug, Default, Serialize)]
pub struct BatchReport {
    pub received: usize,
    pub kept: usize,
    pub duplicate: usize,
    pub near_duplicate: usize,
    pub filtered: usize,
    pub invalid: usize,
    pub posts: Vec<PostOutcome>,
}

/// A running watch.
pub struct Watch {
    pub def: WatchDefinition,
    analyzer: Arc<Analyzer>,
    store: Option<osprey_store::Store>,
    spec: WatchAnalysis,
    prepared: tokio::sync::OnceCell<Prepared>,
    recent: Arc<Mutex<Recent>>,
    /// Contents seen, when there is no store to remember them.
    seen_here: Mutex<HashSet<ContentHash>>,
    /// Serialises commits, so two batches (two sources, or pushes) never
    /// interleave their dedup and commit.
    commit: tokio::sync::Mutex<()>,
    pub alerts: Alerter,
    digest: Option<Mutex<Digest>>,
    trends: Mutex<Vec<Trend>>,
    pub counters: Counters,
    pub started: Instant,
    pub last_error: Mutex<Option<String>>,
}

fn mark(outcomes: &mut [Option<PostOutcome>], slot: usize, id: &str, outcome: Outcome, detail: Option<String>) {
    outcomes[slot] = Some(PostOutcome { id: id.to_string(), outcome, topic: None, score: None, detail });
}

/// Without a store, at most this many contents are remembered.
const SEEN_HERE_MAX: usize = 1_000_000;

impl Watch {
    pub fn new(
        def: WatchDefinition,
        analyzer: Arc<Analyzer>,
        store: Option<osprey_store::Store>,
        alerts: Alerter,
    ) -> Self {
        let spec = WatchAnalysis {
            tasks: def.analyses.iter().copied().collect(),
            emotion: def.emotion.clone(),
            summary_k: def.summary_k,
            summary_method: def.summary_method,
            smoothing: def.smoothing,
        };
        let now = chrono::Utc::now().timestamp_millis();
        Self {
            digest: def.digest.clone().map(|d| Mutex::new(Digest::new(d, now))),
            trends: Mutex::new(def.rules.iter().cloned().map(Trend::new).collect()),
            recent: Arc::new(Mutex::new(Recent::new(def.near_duplicate_window.max(1)))),
            def,
            analyzer,
            store,
            spec,
            prepared: tokio::sync::OnceCell::new(),
            seen_here: Mutex::new(HashSet::new()),
            commit: tokio::sync::Mutex::new(()),
            alerts,
            counters: Counters::default(),
            started: Instant::now(),
            last_error: Mutex::new(None),
        }
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// Accounts `stage` as having run from `started` until now.
    pub fn stage(&self, stage: Stage, started: Instant) {
        // Declaration order is `Stage::ALL`'s order.
        self.counters.stage_nanos[stage as usize].fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        crate::analysis::stage(stage.labels().1, started);
    }

    fn needs_embeddings(&self) -> bool {
        self.def.near_duplicate > 0.0 || self.def.topic_set.is_some() || !self.def.topics.is_empty()
    }

    async fn prepared(&self) -> ApiResult<&Prepared> {
        self.prepared
            .get_or_try_init(|| async {
                if !self.needs_embeddings() {
                    return Ok(Prepared { embedder: None, topics: None });
                }
                let embedder = self.analyzer.default_embedder().await?;
                let topics = if self.def.topic_set.is_some() || !self.def.topics.is_empty() {
                    Some(
                        self.analyzer
                            .watch_topics(
                                &self.def.name,
                                self.def.topic_set.as_deref(),
                                &self.def.topics,
                                self.def.threshold,
                                self.def.head_chars,
                                &embedder,
                            )
                            .await?,
                    )
                } else {
                    None
                };
                Ok(Prepared { embedder: Some(embedder), topics })
            })
            .await
    }

    /// Seeds the trend rules from the store's hourly emotion statistics.
    pub async fn seed_trends(&self) {
        let Some(store) = &self.store else { return };
        let rules: Vec<(usize, Option<String>, String, i64)> = {
            let trends = self.trends.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            trends
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let span = (t.rule.window + t.rule.baseline).as_millis() as i64;
                    (i, t.rule.topic.clone(), t.rule.emotion.clone(), span)
                })
                .collect()
        };
        let now = chrono::Utc::now().timestamp_millis();
        for (i, topic, emotion, span) in rules {
            let q = osprey_store::EmotionStatsQuery {
                persona_id: self.def.persona_id.clone(),
                topic,
                since: Some(now - span),
                until: Some(now),
                bucket: osprey_store::Bucket::Hour,
            };
            match store.emotion_stats(&q).await {
                Ok(buckets) => {
                    let mut trends = self.trends.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    for b in buckets {
                        let share = b.means.get(&emotion).copied().unwrap_or(0.0) * b.posts as f64;
                        // A bucket counts at its middle, clamped to the past.
                        trends[i].add((b.start_at + 1_800_000).min(now), b.posts, share);
                    }
                }
                Err(e) => {
                    tracing::warn!(watch = %self.def.name, error = %e, "could not seed trend rules from the store")
                }
            }
        }
    }

    /// Runs the pipeline over `posts` from `source` and commits `cursor`
    /// with them. On `Err` nothing was committed (posts may have been
    /// stored; a replay stores nothing twice).
    pub async fn process(&self, source: &str, posts: Vec<Post>, cursor: &Value) -> ApiResult<BatchReport> {
        let _one_at_a_time = self.commit.lock().await;
        let started = Instant::now();
        let received = posts.len();
        let mut outcomes: Vec<Option<PostOutcome>> = vec![None; received];
        let mut report = BatchReport { received, ..BatchReport::default() };

        // 1. Exact duplicates: in the batch, then against what was committed.
        let posts: Vec<Post> = posts
            .into_iter()
            .map(|mut p| {
                if p.persona_id.is_none() {
                    p.persona_id.clone_from(&self.def.persona_id);
                }
                p
            })
            .collect();
        let hashes: Vec<ContentHash> = posts.iter().map(|p| ContentHash::of(&p.title, &p.body)).collect();
        let seen = self.seen(&hashes).await?;
        let mut first: HashMap<ContentHash, usize> = HashMap::new();
        let mut ids: HashSet<&str> = HashSet::new();
        let mut fresh: Vec<usize> = Vec::new();
        for (slot, (p, h)) in posts.iter().zip(&hashes).enumerate() {
            if p.id.trim().is_empty() || p.id.len() > 512 {
                mark(&mut outcomes, slot, &p.id, Outcome::Invalid, Some("a post needs an id of 1 to 512 bytes".into()));
            } else if seen.contains(h) {
                mark(&mut outcomes, slot, &p.id, Outcome::Duplicate, Some("content seen before".into()));
            } else if let Some(&earlier) = first.get(h) {
                mark(
                    &mut outcomes,
                    slot,
                    &p.id,
                    Outcome::Duplicate,
                    Some(format!("same content as {}", posts[earlier].id)),
                );
            } else if !ids.insert(p.id.as_str()) {
                mark(&mut outcomes, slot, &p.id, Outcome::Invalid, Some("the id appears twice in the batch".into()));
            } else if p.title.trim().is_empty() && p.body.trim().is_empty() {
                mark(&mut outcomes, slot, &p.id, Outcome::Invalid, Some("no text".into()));
            } else {
                first.insert(*h, slot);
                fresh.push(slot);
            }
        }
        self.stage(Stage::Dedup, started);

        // 2-4. Embed, near-duplicates, topics.
        let prepared = self.prepared().await?;
        let mut matches: HashMap<usize, osprey_types::analysis::TopicMatch> = HashMap::new();
        let mut kept: Vec<usize> = fresh.clone();
        if let Some(embedder) = &prepared.embedder {
            let t = Instant::now();
            let texts: Vec<String> = fresh.iter().map(|&s| head(&posts[s], self.def.head_chars)).collect();
            let vectors = self.analyzer.embed_heads(embedder, texts.clone()).await?;
            self.stage(Stage::Embed, t);
            let t = Instant::now();
            let near = if self.def.near_duplicate > 0.0 {
                let recent = Arc::clone(&self.recent);
                let (threshold, min_overlap) = (self.def.near_duplicate, self.def.near_duplicate_overlap);
                let ids: Vec<String> = fresh.iter().map(|&s| posts[s].id.clone()).collect();
                let vs = vectors.clone();
                // Whole texts, and whether the head cut them, when words confirm.
                let wholes: Vec<(String, bool)> = if min_overlap > 0.0 {
                    fresh
                        .iter()
                        .zip(&texts)
                        .map(|(&s, head)| {
                            let whole = whole_text(&posts[s]);
                            let cut = whole.len() > head.len();
                            (whole, cut)
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                tokio::task::spawn_blocking(move || {
                    let words: Vec<Option<Arc<Words>>> =
                        wholes.iter().map(|(text, cut)| Some(Arc::new(Words::of(text, *cut)))).collect();
                    recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner).scan(
                        &ids,
                        &vs,
                        &words,
                        threshold,
                        min_overlap,
                    )
                })
                .await
                .map_err(|e| ApiError::new(osprey_types::error::ErrorCode::Internal, e.to_string()))?
            } else {
                vec![None; fresh.len()]
            };
            self.stage(Stage::NearDuplicate, t);
            let t = Instant::now();
            kept.clear();
            for ((&slot, v), hit) in fresh.iter().zip(&vectors).zip(near) {
                if let Some((of, score)) = hit {
                    mark(
                        &mut outcomes,
                        slot,
                        &posts[slot].id,
                        Outcome::NearDuplicate,
                        Some(format!("{score:.3} similar to {of}")),
                    );
                    continue;
                }
                match &prepared.topics {
                    Some(filter) => {
                        let m = filter.score(v);
                        if m.keep {
                            matches.insert(slot, m);
                            kept.push(slot);
                        } else {
                            outcomes[slot] = Some(PostOutcome {
                                id: posts[slot].id.clone(),
                                outcome: Outcome::Filtered,
                                topic: Some(m.best_topic.clone()),
                                score: Some(m.score),
                                detail: None,
                            });
                        }
                    }
                    None => kept.push(slot),
                }
            }
            self.stage(Stage::Filter, t);
        }

        // 5. Analyse and store what is kept.
        let t = Instant::now();
        let batch: Vec<Kept> = kept
            .iter()
            .map(|&s| Kept { post: posts[s].clone(), hash: hashes[s], topic: matches.get(&s).cloned() })
            .collect();
        let results = if batch.is_empty() {
            Vec::new()
        } else {
            self.analyzer.analyze_kept(batch, &self.spec, prepared.topics.as_ref()).await?
        };
        self.stage(Stage::Analyze, t);
        if let Some(store) = &self.store {
            let t = Instant::now();
            store.flush().await.map_err(|e| {
                ApiError::new(osprey_types::error::ErrorCode::NotReady, format!("storing the batch failed: {e}"))
            })?;
            self.stage(Stage::Store, t);
        }
        let mut stored: Vec<(usize, PostAnalysis)> = Vec::new();
        for (&slot, r) in kept.iter().zip(results) {
            match r {
                Ok(a) => {
                    outcomes[slot] = Some(PostOutcome {
                        id: posts[slot].id.clone(),
                        outcome: Outcome::Kept,
                        topic: a.topics.as_ref().map(|m| m.best_topic.clone()),
                        score: a.topics.as_ref().map(|m| m.score),
                        detail: None,
                    });
                    stored.push((slot, a));
                }
                Err(why) => mark(&mut outcomes, slot, &posts[slot].id, Outcome::Invalid, Some(why)),
            }
        }

        // 6. Commit the cursor and every hash of the batch but the invalid ones.
        let t = Instant::now();
        // Each hash once: PostgreSQL refuses an upsert that touches a row twice.
        let committed: Vec<ContentHash> = outcomes
            .iter()
            .zip(&hashes)
            .filter(|(o, _)| o.as_ref().is_some_and(|o| o.outcome != Outcome::Invalid))
            .map(|(_, h)| *h)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        self.commit_seen(source, cursor, stored.len() as u64, &committed).await?;
        self.stage(Stage::Commit, t);

        // Counts.
        let outcomes: Vec<PostOutcome> = outcomes.into_iter().flatten().collect();
        for o in &outcomes {
            let (field, n) = match o.outcome {
                Outcome::Kept => (&self.counters.kept, &mut report.kept),
                Outcome::Duplicate => (&self.counters.duplicate, &mut report.duplicate),
                Outcome::NearDuplicate => (&self.counters.near_duplicate, &mut report.near_duplicate),
                Outcome::Filtered => (&self.counters.filtered, &mut report.filtered),
                Outcome::Invalid => (&self.counters.invalid, &mut report.invalid),
            };
            field.fetch_add(1, Ordering::Relaxed);
            *n += 1;
        }
        self.counters.received.fetch_add(received as u64, Ordering::Relaxed);
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        for outcome in [Outcome::Kept, Outcome::Duplicate, Outcome::NearDuplicate, Outcome::Filtered, Outcome::Invalid]
        {
            let n = outcomes.iter().filter(|o| o.outcome == outcome).count();
            if n > 0 {
                metrics::counter!(m::WATCH_POSTS_TOTAL, "watch" => self.def.name.clone(), "outcome" => outcome.label())
                    .increment(n as u64);
            }
        }
        metrics::counter!(m::WATCH_BATCHES_TOTAL, "watch" => self.def.name.clone(), "source" => source.to_string())
            .increment(1);

        // 7. Alerts.
        let t = Instant::now();
        self.alert(&posts, &stored).await;
        self.stage(Stage::Alert, t);
        report.posts = outcomes;
        Ok(report)
    }

    async fn seen(&self, hashes: &[ContentHash]) -> ApiResult<HashSet<ContentHash>> {
        match &self.store {
            Some(store) => store.watch_seen(&self.def.name, hashes).await.map_err(|e| {
                ApiError::new(
                    osprey_types::error::ErrorCode::NotReady,
                    format!("reading the watch's state failed: {e}"),
                )
            }),
            None => {
                let here = self.seen_here.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                Ok(hashes.iter().filter(|h| here.contains(h)).copied().collect())
            }
        }
    }

    async fn commit_seen(&self, source: &str, cursor: &Value, kept: u64, hashes: &[ContentHash]) -> ApiResult<()> {
        match &self.store {
            Some(store) => store.watch_commit(&self.def.name, source, cursor, kept, hashes).await.map_err(|e| {
                ApiError::new(osprey_types::error::ErrorCode::NotReady, format!("saving the watch's state failed: {e}"))
            }),
            None => {
                let mut here = self.seen_here.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if here.len() + hashes.len() > SEEN_HERE_MAX {
                    here.clear();
                }
                here.extend(hashes.iter().copied());
                Ok(())
            }
        }
    }

    /// The kept posts' alert, their share of the digest and the trend rules.
    async fn alert(&self, posts: &[Post], stored: &[(usize, PostAnalysis)]) {
        if stored.is_empty() {
            return;
        }
        if self.alerts.wants(AlertKind::Posts) {
            let body: Vec<Value> = stored
                .iter()
                .map(|(slot, a)| {
                    let p = &posts[*slot];
                    json!({
                        "id": p.id,
                        "title": p.title,
                        "author": p.author,
                        "source": p.source,
                        "created": p.created,
                        "topic": a.topics.as_ref().map(|m| &m.best_topic),
                        "score": a.topics.as_ref().map(|m| m.score),
                        "summary": a.summary.as_ref().map(|s| s.sentences.iter().map(|x| x.text.as_str()).collect::<Vec<_>>()),
                        "sentiment": a.sentiment.as_ref().map(|s| s.compound),
                        "emotion": a.emotion.as_ref().map(|e| &e.label),
                        "trajectory": a.trajectory.as_ref().map(|t| &t.summary.shape),
                    })
                })
                .collect();
            self.alerts.send(Alert::new(AlertKind::Posts, &self.def.name, json!({ "posts": body }))).await;
        }
        if let Some(digest) = &self.digest {
            let mut d = digest.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (slot, a) in stored {
                let p = &posts[*slot];
                d.add(DigestEntry {
                    topic: a.topics.as_ref().map_or("all", |m| m.best_topic.as_str()),
                    score: a.topics.as_ref().map_or(0.0, |m| m.score),
                    id: &p.id,
                    title: &p.title,
                    compound: a.sentiment.as_ref().map(|s| s.compound),
                    emotion: a.emotion.as_ref().map(|e| e.label.as_str()),
                    summary: a
                        .summary
                        .as_ref()
                        .map(|s| s.sentences.iter().map(|x| x.text.clone()).collect())
                        .unwrap_or_default(),
                });
            }
        }
        let fired: Vec<Value> = {
            let mut trends = self.trends.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if trends.is_empty() || !self.spec.tasks.contains(&Task::Emotion) {
                Vec::new()
            } else {
                let now = chrono::Utc::now().timestamp_millis();
                for (slot, a) in stored {
                    let Some(e) = &a.emotion else { continue };
                    let created = crate::analysis::watched::created_ms(&posts[*slot]);
                    let topic = a.topics.as_ref().map(|m| m.best_topic.as_str());
                    for t in trends.iter_mut().filter(|t| t.applies(topic)) {
                        let share = e.scores.get(&t.rule.emotion).copied().map_or(0.0, f64::from);
                        let at = t.placed(created, now);
                        t.add(at, 1, share);
                    }
                }
                trends.iter_mut().filter_map(|t| t.check(now)).collect()
            }
        };
        for body in fired {
            tracing::warn!(watch = %self.def.name, alert = %body, "emotion trend rule fired");
            self.alerts.send(Alert::new(AlertKind::Trend, &self.def.name, body)).await;
        }
    }

    /// Sends the digest of the period now ending, if anything was kept.
    pub async fn send_digest(&self) {
        let Some(digest) = &self.digest else { return };
        let body = digest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take(chrono::Utc::now().timestamp_millis());
        if let Some(body) = body {
            self.alerts.send(Alert::new(AlertKind::Digest, &self.def.name, body)).await;
        }
    }

    /// The digest period, if there is a digest.
    pub fn digest_every(&self) -> Option<std::time::Duration> {
        self.def.digest.as_ref().map(|d| d.every)
    }

    pub fn record_error(&self, e: &str) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e.to_string());
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn store(&self) -> Option<&osprey_store::Store> {
        self.store.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn recent_finds_the_nearest_above_the_threshold_and_wraps() {
        let mut r = Recent::new(2);
        r.push("a", &unit(&[1.0, 0.0]), None);
        r.push("b", &unit(&[0.0, 1.0]), None);
        let (i, s) = r.nearest(&unit(&[1.0, 0.1]), 0.9).expect("near a");
        assert_eq!(r.ids[i], "a");
        assert!(s > 0.99);
        assert!(r.nearest(&unit(&[1.0, 1.0]), 0.9).is_none());
        // A third vector overwrites the oldest.
        r.push("c", &unit(&[-1.0, 0.0]), None);
        assert!(r.nearest(&unit(&[1.0, 0.0]), 0.9).is_none());
        assert_eq!(r.nearest(&unit(&[-1.0, 0.0]), 0.9).map(|(i, _)| r.ids[i].as_str()), Some("c"));
        // Another dimension starts over.
        r.push("d", &unit(&[1.0, 0.0, 0.0]), None);
        assert_eq!(r.ids, ["d"]);
    }

    #[test]
    fn batch_scan_answers_as_post_by_post_does() {
        // Unit vectors in 24 dimensions, a third of them copies or near
        // copies of earlier ones; a ring of 5 so it wraps within batches.
        let mut rng = fastrand::Rng::with_seed(0x2545_f491);
        let mut next = move || rng.f32() - 0.5;
        let mut vectors: Vec<Vec<f32>> = Vec::new();
        for i in 0..60usize {
            let v: Vec<f32> = if i % 3 == 2 {
                let of = &vectors[(i - 1).saturating_sub(i % 4)];
                of.iter().map(|x| x + 0.01 * next()).collect()
            } else {
                (0..24).map(|_| next()).collect()
            };
            vectors.push(unit(&v));
        }
        let ids: Vec<String> = (0..vectors.len()).map(|i| format!("p{i}")).collect();
        let (mut one_by_one, mut batched) = (Recent::new(5), Recent::new(5));
        let mut want = Vec::new();
        for (id, v) in ids.iter().zip(&vectors) {
            let hit = one_by_one.nearest(v, 0.9).map(|(i, s)| (one_by_one.ids[i].clone(), s));
            if hit.is_none() {
                one_by_one.push(id, v, None);
            }
            want.push(hit);
        }
        let mut got = Vec::new();
        for (ids, vs) in ids.chunks(7).zip(vectors.chunks(7)) {
            got.extend(batched.scan(ids, vs, &[], 0.9, 0.5));
        }
        assert!(want.iter().filter(|h| h.is_some()).count() >= 10, "the data must hold near copies");
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.as_ref().map(|h| &h.0), w.as_ref().map(|h| &h.0), "post {i}");
            if let (Some(g), Some(w)) = (g, w) {
                assert!((g.1 - w.1).abs() < 1e-5, "post {i}: {} vs {}", g.1, w.1);
            }
        }
        assert_eq!(batched.ids, one_by_one.ids);
        assert_eq!(batched.next, one_by_one.next);
    }

    #[test]
    fn word_overlap_confirms_alike_heads_only_when_the_texts_agree() {
        let title = "Help: the borrow checker rejects my iterator";
        let a = Words::of(&format!("{title}\n\nI collect into a Vec and then call iter_mut on it twice."), true);
        let edited = Words::of(&format!("{title}\n\nI collect into a Vec and then call iter_mut on it twice!!"), true);
        let other =
            Words::of(&format!("{title}\n\nMy lifetimes look fine but the closure borrows self mutably."), true);
        assert!((a.overlap(&a) - 1.0).abs() < f32::EPSILON);
        assert!(a.overlap(&edited) > 0.9, "punctuation does not count: {}", a.overlap(&edited));
        assert!(a.overlap(&other) < 0.5, "a shared title alone is not enough: {}", a.overlap(&other));
        assert!(confirmed(Some(&a), Some(&edited), 0.5));
        assert!(!confirmed(Some(&a), Some(&other), 0.5));
        // Vectors that saw both whole texts are trusted; so is a missing side.
        let whole = Words { cut: false, ..other.clone() };
        let whole_a = Words { cut: false, ..a.clone() };
        assert!(confirmed(Some(&whole_a), Some(&whole), 0.5));
        assert!(confirmed(Some(&a), None, 0.5));

        // In a scan: three posts with one head vector; the second shares only
        // the title and is kept, the third is a light edit of the first.
        let v = unit(&[1.0, 0.0, 0.0]);
        let mut r = Recent::new(8);
        let ids: Vec<String> = ["a", "other", "edited"].map(String::from).to_vec();
        let words = [Some(Arc::new(a)), Some(Arc::new(other)), Some(Arc::new(edited))];
        let hits = r.scan(&ids, &[v.clone(), v.clone(), v], &words, 0.95, 0.5);
        assert_eq!(hits[0], None);
        assert_eq!(hits[1], None, "same title, another question");
        assert_eq!(hits[2].as_ref().map(|h| h.0.as_str()), Some("a"));
        assert_eq!(r.ids, ["a", "other"]);
    }
}
