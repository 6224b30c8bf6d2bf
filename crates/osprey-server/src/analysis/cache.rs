//! The result cache: content-addressed, one bounded cache per task.
//!
//! A key is a 128-bit XXH3 hash over the task, the model revisions that
//! shaped the answer, the request's options and the text, each part
//! length-prefixed so that no two different inputs share a byte stream.
//! Entries live in moka caches (TinyLFU admission, LRU eviction, TTL), so a
//! repeated request is answered without touching the engine.

use std::sync::Arc;
use std::time::Duration;

use moka::notification::RemovalCause;
use osprey_types::metrics as m;
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

/// Builds a cache key from length-prefixed parts.
#[derive(Clone)]
pub struct KeyBuilder(Xxh3);

impl KeyBuilder {
    pub fn new(task: &str) -> Self {
        let mut k = Self(Xxh3::new());
        k.part(task.as_bytes());
        k
    }

    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.part(s.as_bytes())
    }

    /// Adds a serialisable value (request options) as compact JSON.
    pub fn json(&mut self, v: &impl Serialize) -> &mut Self {
        let bytes = serde_json::to_vec(v).unwrap_or_default();
        self.part(&bytes)
    }

    pub fn finish(&self) -> u128 {
        self.0.digest128()
    }
}

/// Roughly how many bytes a cached value holds, so that one huge answer (a
/// trajectory of 40,000 sentences) is not kept where a thousand small ones fit.
pub trait ApproxBytes {
    fn approx_bytes(&self) -> usize;
}

/// One task's cache. Disabled (every look-up a miss, nothing stored) when its
/// size is 0. Values over `max_entry_bytes` are not stored.
pub struct TaskCache<V> {
    task: &'static str,
    cache: Option<moka::sync::Cache<u128, Arc<V>>>,
    max_entry_bytes: usize,
}

impl<V: ApproxBytes + Send + Sync + 'static> TaskCache<V> {
    pub fn new(task: &'static str, capacity: u64, ttl: Duration, max_entry_bytes: usize) -> Self {
        let cache = (capacity > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .eviction_listener(move |_key, _value, cause| {
                    let cause = match cause {
                        RemovalCause::Size => "size",
                        RemovalCause::Expired => "expired",
                        RemovalCause::Replaced => "replaced",
                        RemovalCause::Explicit => "explicit",
                    };
                    metrics::counter!(m::RESULT_CACHE_EVICTIONS_TOTAL, "task" => task, "cause" => cause).increment(1);
                })
                .build()
        });
        Self { task, cache, max_entry_bytes }
    }

    pub fn get(&self, key: u128) -> Option<Arc<V>> {
        let cache = self.cache.as_ref()?;
        let hit = cache.get(&key);
        let result = if hit.is_some() { "hit" } else { "miss" };
        metrics::counter!(m::RESULT_CACHE_REQUESTS_TOTAL, "task" => self.task, "result" => result).increment(1);
        hit
    }

    pub fn insert(&self, key: u128, value: Arc<V>) {
        if value.approx_bytes() > self.max_entry_bytes {
            metrics::counter!(m::RESULT_CACHE_EVICTIONS_TOTAL, "task" => self.task, "cause" => "too_large")
                .increment(1);
            return;
        }
        if let Some(cache) = &self.cache {
            cache.insert(key, value);
            metrics::gauge!(m::RESULT_CACHE_ENTRIES, "task" => self.task).set(cache.entry_count() as f64);
        }
    }

    /// Entries held (approximate: moka applies writes lazily).
    pub fn entries(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.entry_count())
    }
}

mod sizes {
    use osprey_types::analysis::{
        EmotionScores, PostAnalysis, SentimentScores, SummaryResult, TopicMatch, TrajectoryResponse,
    };

    use super::ApproxBytes;

    impl ApproxBytes for SentimentScores {
        fn approx_bytes(&self) -> usize {
            std::mem::size_of::<Self>()
        }
    }

    impl ApproxBytes for EmotionScores {
        fn approx_bytes(&self) -> usize {
            // Seven map entries with short keys, plus the label.
            7 * 64 + self.label.len() + std::mem::size_of::<Self>()
        }
    }

    impl ApproxBytes for TrajectoryResponse {
        fn approx_bytes(&self) -> usize {
            let points = self.summary.peaks.len() + self.summary.troughs.len() + self.summary.turning_points.len();
            self.segments.iter().map(|s| s.text.len() + 7 * 64 + 256).sum::<usize>() + points * 48 + 256
        }
    }

    impl ApproxBytes for SummaryResult {
        fn approx_bytes(&self) -> usize {
            self.summary.len() + self.sentences.iter().map(|s| s.text.len() + 64).sum::<usize>() + 64
        }
    }

    impl ApproxBytes for TopicMatch {
        fn approx_bytes(&self) -> usize {
            self.scores.keys().map(|k| k.len() + 48).sum::<usize>() + self.best_topic.len() + 64
        }
    }

    impl ApproxBytes for PostAnalysis {
        fn approx_bytes(&self) -> usize {
            self.id.len()
                + 64
                + self.sentiment.as_ref().map_or(0, ApproxBytes::approx_bytes)
                + self.emotion.as_ref().map_or(0, ApproxBytes::approx_bytes)
                + self.trajectory.as_ref().map_or(0, ApproxBytes::approx_bytes)
                + self.summary.as_ref().map_or(0, ApproxBytes::approx_bytes)
                + self.topics.as_ref().map_or(0, ApproxBytes::approx_bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl ApproxBytes for String {
        fn approx_bytes(&self) -> usize {
            self.len()
        }
    }

    impl ApproxBytes for u128 {
        fn approx_bytes(&self) -> usize {
            16
        }
    }

    #[test]
    fn keys_differ_by_part_boundaries_and_content() {
        let a = KeyBuilder::new("t").str("ab").str("c").finish();
        let b = KeyBuilder::new("t").str("a").str("bc").finish();
        let c = KeyBuilder::new("u").str("ab").str("c").finish();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, KeyBuilder::new("t").str("ab").str("c").finish());
    }

    #[test]
    fn stores_and_returns_and_disables_at_zero() {
        let cache = TaskCache::new("test", 10, Duration::from_secs(60), 8);
        cache.insert(1, Arc::new("one".to_string()));
        assert_eq!(cache.get(1).as_deref().map(String::as_str), Some("one"));
        assert!(cache.get(2).is_none());
        cache.insert(3, Arc::new("longer than eight bytes".to_string()));
        assert!(cache.get(3).is_none(), "over max_entry_bytes: not stored");
        let off: TaskCache<String> = TaskCache::new("off", 0, Duration::from_secs(60), 1024);
        off.insert(1, Arc::new("x".into()));
        assert!(off.get(1).is_none());
    }

    #[test]
    fn size_bound_evicts() {
        let cache = TaskCache::new("bound", 50, Duration::from_secs(60), 1024);
        for i in 0..1_000u128 {
            cache.insert(i, Arc::new(i));
        }
        if let Some(c) = cache.cache.as_ref() {
            c.run_pending_tasks();
        }
        assert!(cache.entries() <= 50, "{} entries", cache.entries());
    }
}
