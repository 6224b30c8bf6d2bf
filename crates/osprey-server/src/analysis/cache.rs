//! The analysis result cache: content-addressed answers per task, kept in
//! the two-tier cache ([`osprey_cache::Cache`]) as `prediction` entries.
//!
//! A key is a 128-bit XXH3 hash over the task, the model revisions that
//! shaped the answer, the request's options and the text, each part
//! length-prefixed so that no two different inputs share a byte stream.
//! Each task's [`CachePolicy`] says whether its answers stay in-process or
//! are shared with other replicas through Redis.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use osprey_cache::KeyBuilder;
use osprey_cache::{Cache, CacheKey, Cacheable, Kind};
use osprey_types::metrics as m;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::settings::CachePolicy;
use crate::error::{ApiError, ApiResult};

/// Request options as a key part. Options are plain data whose JSON cannot
/// fail; were it to, an empty part still keeps keys distinct by position.
pub trait KeyParts {
    fn opts(&mut self, v: &impl Serialize) -> &mut Self;
}

impl KeyParts for KeyBuilder {
    fn opts(&mut self, v: &impl Serialize) -> &mut Self {
        self.part(&serde_json::to_vec(v).unwrap_or_default())
    }
}

/// Roughly how many bytes a cached value holds, so that one huge answer (a
/// trajectory of 40,000 sentences) is not kept where a thousand small ones fit.
pub trait ApproxBytes {
    fn approx_bytes(&self) -> usize;
}

/// How a task's answer is held in the cache.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub struct Entry<V>(pub V);

impl<V> Cacheable for Entry<V>
where
    V: ApproxBytes + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn approx_bytes(&self) -> usize {
        self.0.approx_bytes()
    }
}

/// One task's view of the cache: its policy, its size limit and its
/// hit/miss counters.
pub struct TaskCache<V> {
    task: &'static str,
    cache: Cache,
    policy: CachePolicy,
    max_entry_bytes: usize,
    _value: PhantomData<fn() -> V>,
}

impl<V> TaskCache<V>
where
    V: ApproxBytes + Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    pub fn new(task: &'static str, cache: Cache, policy: CachePolicy, max_entry_bytes: usize) -> Self {
        Self { task, cache, policy, max_entry_bytes, _value: PhantomData }
    }

    /// The cached answer for `key`: L1, then (for shared tasks) Redis.
    pub async fn get(&self, key: CacheKey) -> Option<V> {
        let hit: Option<Arc<Entry<V>>> = match self.policy {
            CachePolicy::Off => return None,
            CachePolicy::Local => self.cache.get_l1(Kind::Prediction, key),
            CachePolicy::Shared => self.cache.get(Kind::Prediction, key).await,
        };
        let result = if hit.is_some() { "hit" } else { "miss" };
        metrics::counter!(m::RESULT_CACHE_REQUESTS_TOTAL, "task" => self.task, "result" => result).increment(1);
        hit.map(|e| e.0.clone())
    }

    /// The cached answers for `keys`, in order: L1 for each, then one Redis
    /// round trip (MGET) for all the L1 misses of a shared task.
    pub async fn get_many(&self, keys: &[CacheKey]) -> Vec<Option<V>> {
        let hits: Vec<Option<Arc<Entry<V>>>> = match self.policy {
            CachePolicy::Off => return vec![None; keys.len()],
            CachePolicy::Local => keys.iter().map(|k| self.cache.get_l1(Kind::Prediction, *k)).collect(),
            CachePolicy::Shared => self.cache.get_many(Kind::Prediction, keys).await,
        };
        let found = hits.iter().filter(|h| h.is_some()).count() as u64;
        metrics::counter!(m::RESULT_CACHE_REQUESTS_TOTAL, "task" => self.task, "result" => "hit").increment(found);
        metrics::counter!(m::RESULT_CACHE_REQUESTS_TOTAL, "task" => self.task, "result" => "miss")
            .increment(keys.len() as u64 - found);
        hits.into_iter().map(|h| h.map(|e| e.0.clone())).collect()
    }

    /// The cached answer for `key`, or `compute`'s, cached when it says the
    /// answer may be (`(value, true)`) and it fits. Shared tasks go through
    /// [`Cache::memoize`], so concurrent identical requests compute once.
    pub async fn memoize<F, Fut>(&self, key: CacheKey, compute: F) -> ApiResult<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<(V, bool)>>,
    {
        if self.policy != CachePolicy::Shared {
            if let Some(hit) = self.get(key).await {
                return Ok(hit);
            }
            let (value, keep) = compute().await?;
            if keep {
                self.insert(key, value.clone());
            }
            return Ok(value);
        }
        /// Why an answer bypassed the cache.
        enum Bypass<V> {
            Uncacheable(V),
            Failed(ApiError),
        }
        let ran = AtomicBool::new(false);
        let max = self.max_entry_bytes;
        let outcome = self
            .cache
            .memoize(Kind::Prediction, key, || async {
                ran.store(true, Ordering::Relaxed);
                match compute().await {
                    Ok((v, true)) if v.approx_bytes() <= max => Ok(Entry(v)),
                    Ok((v, _)) => Err(Bypass::Uncacheable(v)),
                    Err(e) => Err(Bypass::Failed(e)),
                }
            })
            .await;
        let result = if ran.load(Ordering::Relaxed) { "miss" } else { "hit" };
        metrics::counter!(m::RESULT_CACHE_REQUESTS_TOTAL, "task" => self.task, "result" => result).increment(1);
        match outcome {
            Ok(entry) => Ok(entry.0.clone()),
            Err(Bypass::Uncacheable(v)) => Ok(v),
            Err(Bypass::Failed(e)) => Err(e),
        }
    }

    pub fn insert(&self, key: CacheKey, value: V) {
        if self.policy == CachePolicy::Off {
            return;
        }
        if value.approx_bytes() > self.max_entry_bytes {
            metrics::counter!(m::RESULT_CACHE_EVICTIONS_TOTAL, "task" => self.task, "cause" => "too_large")
                .increment(1);
            return;
        }
        let value = Arc::new(Entry(value));
        match self.policy {
            CachePolicy::Shared => self.cache.put(Kind::Prediction, key, value),
            _ => self.cache.put_l1(Kind::Prediction, key, value),
        }
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

    fn l1() -> Cache {
        Cache::l1_only(osprey_cache::L1Settings::default()).expect("valid defaults")
    }

    #[tokio::test]
    async fn stores_returns_and_respects_policy_and_size() {
        let cache = l1();
        let k = |n: u128| CacheKey(n);
        let t = TaskCache::new("test", cache.clone(), CachePolicy::Local, 8);
        t.insert(k(1), "one".to_string());
        assert_eq!(t.get(k(1)).await.as_deref(), Some("one"));
        assert!(t.get(k(2)).await.is_none());
        t.insert(k(3), "longer than eight bytes".to_string());
        assert!(t.get(k(3)).await.is_none(), "over max_entry_bytes: not stored");
        let off: TaskCache<String> = TaskCache::new("off", cache.clone(), CachePolicy::Off, 1024);
        off.insert(k(4), "x".into());
        assert!(off.get(k(4)).await.is_none());
        // Without an L2 URL a shared task is served from L1 alone.
        let shared = TaskCache::new("shared", cache, CachePolicy::Shared, 1024);
        shared.insert(k(5), "five".to_string());
        assert_eq!(shared.get(k(5)).await.as_deref(), Some("five"));
        let many = shared.get_many(&[k(5), k(99)]).await;
        assert_eq!(many, vec![Some("five".to_string()), None]);
        // memoize: computed once, then served; an uncacheable answer is returned, not kept.
        let v = shared.memoize(k(6), || async { Ok(("six".to_string(), true)) }).await.expect("ok");
        assert_eq!(v, "six");
        let again = shared.memoize(k(6), || async { Ok(("other".to_string(), true)) }).await.expect("ok");
        assert_eq!(again, "six", "served from the cache");
        let v = shared.memoize(k(7), || async { Ok(("lexicon".to_string(), false)) }).await.expect("ok");
        assert_eq!(v, "lexicon");
        assert!(shared.get(k(7)).await.is_none(), "not kept");
        let err = shared.memoize(k(8), || async { Err(ApiError::validation("bad")) }).await;
        assert!(err.is_err() && shared.get(k(8)).await.is_none());
    }
}
