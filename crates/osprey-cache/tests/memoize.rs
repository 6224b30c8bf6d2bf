//! `memoize`: one computation for concurrent misses, errors never cached,
//! results shared between replicas through L2.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{wait_up, TestRedis};
use osprey_cache::{Cache, CacheKey, Kind, L1Settings};

#[derive(Debug, PartialEq)]
struct Failed(&'static str);

/// 32 callers miss on one key at once; the computation runs once and every
/// caller gets the same `Arc`.
async fn computes_once(cache: Cache) -> usize {
    let runs = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..32)
        .map(|_| {
            let (cache, runs) = (cache.clone(), Arc::clone(&runs));
            tokio::spawn(async move {
                cache
                    .memoize(Kind::Prediction, CacheKey(7), || async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok::<_, Failed>("computed".to_string())
                    })
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for c in callers {
        results.push(c.await.expect("caller task").expect("memoize"));
    }
    assert!(results.iter().all(|r| Arc::ptr_eq(r, &results[0])), "one value shared by all callers");
    assert_eq!(results[0].as_str(), "computed");
    runs.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_compute_once_in_l1_only() {
    let cache = Cache::l1_only(L1Settings::default()).expect("valid settings");
    assert_eq!(computes_once(cache.clone()).await, 1);
    let s = cache.stats().l1.kinds.prediction;
    assert_eq!((s.misses, s.inserts), (32, 1), "32 misses, one insert");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_compute_once_with_l2() {
    let Some(redis) = TestRedis::new("memo-once").await else { return };
    let cache = Cache::new(redis.settings()).await.expect("valid settings");
    assert!(wait_up(&cache, Duration::from_secs(5)).await);
    assert_eq!(computes_once(cache.clone()).await, 1);
    cache.flush_writes().await;
    let s = cache.stats().l2.kinds.prediction;
    assert_eq!((s.misses, s.inserts), (1, 1), "the leader alone looked in L2 and wrote the value");
}

#[tokio::test]
async fn errors_pass_through_and_are_never_cached() {
    let Some(redis) = TestRedis::new("memo-err").await else { return };
    let cache = Cache::new(redis.settings()).await.expect("valid settings");
    assert!(wait_up(&cache, Duration::from_secs(5)).await);
    let runs = AtomicUsize::new(0);
    let attempt = |fail: bool| {
        let runs = &runs;
        let cache = &cache;
        async move {
            cache
                .memoize(Kind::Metadata, CacheKey(1), || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    if fail {
                        Err(Failed("model unavailable"))
                    } else {
                        Ok("answer".to_string())
                    }
                })
                .await
        }
    };
    assert_eq!(attempt(true).await, Err(Failed("model unavailable")));
    cache.flush_writes().await;
    assert!(redis.keys().await.is_empty(), "nothing written to L2 for an error");
    assert_eq!(attempt(true).await, Err(Failed("model unavailable")), "the error was not cached");
    assert!(attempt(false).await.is_ok());
    assert!(attempt(true).await.is_ok(), "the success was cached: the failing function is not called");
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    cache.flush_writes().await;
    assert_eq!(redis.keys().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_leader_lets_each_waiting_caller_compute() {
    let cache = Cache::l1_only(L1Settings::default()).expect("valid settings");
    let runs = Arc::new(AtomicUsize::new(0));
    let leader = {
        let (cache, runs) = (cache.clone(), Arc::clone(&runs));
        tokio::spawn(async move {
            cache
                .memoize(Kind::Response, CacheKey(3), || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Err::<String, _>(Failed("leader failed"))
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let follower = cache.memoize(Kind::Response, CacheKey(3), || async {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok::<_, Failed>("follower's own".to_string())
    });
    let follower = follower.await;
    assert_eq!(leader.await.expect("leader task"), Err(Failed("leader failed")));
    assert_eq!(follower.as_deref().map(String::as_str), Ok("follower's own"));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_replica_memoizes_from_l2_without_computing() {
    let Some(redis) = TestRedis::new("memo-replica").await else { return };
    let first = Cache::new(redis.settings()).await.expect("valid settings");
    let second = Cache::new(redis.settings()).await.expect("valid settings");
    assert!(wait_up(&first, Duration::from_secs(5)).await && wait_up(&second, Duration::from_secs(5)).await);
    let v = first.memoize(Kind::Prediction, CacheKey(9), || async { Ok::<_, Failed>("once".to_string()) }).await;
    assert_eq!(v.as_deref().map(String::as_str), Ok("once"));
    first.flush_writes().await;
    let v = second.memoize(Kind::Prediction, CacheKey(9), || async { Err::<String, _>(Failed("must not run")) }).await;
    assert_eq!(v.as_deref().map(String::as_str), Ok("once"));
    assert!(second.get_l1::<String>(Kind::Prediction, CacheKey(9)).is_some(), "promoted into L1");
}
