//! `clear` by tier and kind, exact stats under concurrency, and the
//! Prometheus series published from them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{wait_up, Recorder, TestRedis};
use osprey_cache::{Cache, CacheKey, Kind, L1Settings, L2State, Tier};

async fn fill(cache: &Cache, per_kind: u128) {
    for kind in Kind::ALL {
        for i in 0..per_kind {
            cache.put(kind, CacheKey(i), Arc::new(format!("{kind} {i}")));
        }
    }
    cache.flush_writes().await;
}

fn l1_count(cache: &Cache, kind: Kind) -> usize {
    (0..5).filter(|&i| cache.get_l1::<String>(kind, CacheKey(i)).is_some()).count()
}

#[tokio::test]
async fn clear_by_tier_and_kind_touches_nothing_else() {
    let Some(redis) = TestRedis::new("clear").await else { return };
    let Some(neighbour) = TestRedis::new("clear-neighbour").await else { return };
    let cache = Cache::new(redis.settings()).await.expect("valid settings");
    let other = Cache::new(neighbour.settings()).await.expect("valid settings");
    assert!(wait_up(&cache, Duration::from_secs(5)).await && wait_up(&other, Duration::from_secs(5)).await);
    fill(&cache, 5).await;
    fill(&other, 1).await;
    assert_eq!(redis.keys().await.len(), 15);

    let r = cache.clear(Some(Tier::L1), Some(Kind::Prediction)).await.expect("clear");
    assert_eq!((r.l1_removed, r.l2_removed, r.kinds.as_slice()), (Some(5), None, &[Kind::Prediction][..]));
    assert_eq!(l1_count(&cache, Kind::Prediction), 0);
    assert_eq!(l1_count(&cache, Kind::Metadata), 5);
    assert_eq!(redis.keys().await.len(), 15, "L2 untouched");

    let r = cache.clear(Some(Tier::L2), Some(Kind::Metadata)).await.expect("clear");
    assert_eq!((r.l1_removed, r.l2_removed), (None, Some(5)));
    assert_eq!(l1_count(&cache, Kind::Metadata), 5, "L1 untouched");
    let keys = redis.keys().await;
    assert_eq!(keys.len(), 10);
    assert!(keys.iter().all(|k| !k.contains(":metadata:")), "{keys:?}");

    let r = cache.clear(None, None).await.expect("clear");
    assert_eq!((r.l1_removed, r.l2_removed), (Some(10), Some(10)));
    assert!(redis.keys().await.is_empty());
    assert_eq!(neighbour.keys().await.len(), 3, "another prefix is never touched");
    assert_eq!(other.get_l1::<String>(Kind::Response, CacheKey(0)).as_deref().map(String::as_str), Some("response 0"));

    cache.run_pending_tasks();
    let s = cache.stats();
    assert_eq!(s.l1.total.entries, 0);
    assert_eq!(s.l1.kinds.prediction.evictions.explicit, 5);
    assert_eq!((s.l2.kinds.prediction.cleared, s.l2.kinds.metadata.cleared, s.l2.total.cleared), (5, 5, 15));
}

#[tokio::test]
async fn clear_without_l2_reports_only_l1() {
    let cache = Cache::l1_only(L1Settings::default()).expect("valid settings");
    fill(&cache, 2).await;
    let r = cache.clear(None, Some(Kind::Response)).await.expect("clear");
    assert_eq!((r.l1_removed, r.l2_removed), (Some(2), None));
    assert_eq!(cache.l2_state(), L2State::Disabled);
}

/// N tasks x M rounds of put, hit, miss and L2 look-ups: every counter equals
/// the sum of what the tasks did.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stats_are_exact_under_concurrency() {
    const N: u128 = 8;
    const M: u128 = 250;
    let Some(redis) = TestRedis::new("stats").await else { return };
    let mut settings = redis.settings();
    settings.l2.max_pending_writes = 100_000;
    let cache = Cache::new(settings).await.expect("valid settings");
    let replica = Cache::new(redis.settings()).await.expect("valid settings");
    assert!(wait_up(&cache, Duration::from_secs(5)).await && wait_up(&replica, Duration::from_secs(5)).await);
    let tasks: Vec<_> = (0..N)
        .map(|t| {
            let (cache, replica) = (cache.clone(), replica.clone());
            tokio::spawn(async move {
                for i in 0..M {
                    let key = CacheKey(t * M + i);
                    cache.put(Kind::Prediction, key, Arc::new(format!("{t}/{i}")));
                    assert!(cache.get_l1::<String>(Kind::Prediction, key).is_some());
                    assert!(cache.get::<String>(Kind::Metadata, key).await.is_none(), "L1 and L2 miss");
                    if i % 2 == 0 {
                        let memo = cache.memoize(Kind::Response, key, || async { Ok::<_, ()>("memo".to_string()) });
                        assert!(memo.await.is_ok());
                    }
                }
                cache.flush_writes().await;
                for i in 0..M {
                    let found = replica.get::<String>(Kind::Prediction, CacheKey(t * M + i)).await;
                    assert_eq!(found.as_deref().map(String::as_str), Some(format!("{t}/{i}").as_str()));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    cache.flush_writes().await;
    cache.run_pending_tasks();
    replica.run_pending_tasks();
    let (ops, memos) = ((N * M) as u64, (N * M / 2) as u64);
    let s = cache.stats();
    let (p, m, r) = (s.l1.kinds.prediction, s.l1.kinds.metadata, s.l1.kinds.response);
    assert_eq!((p.inserts, p.hits, p.misses, p.entries), (ops, ops, 0, ops));
    assert_eq!((m.inserts, m.hits, m.misses), (0, 0, ops));
    assert_eq!((r.inserts, r.hits, r.misses, r.entries), (memos, 0, memos, memos));
    assert_eq!(p.bytes, (0..N).flat_map(|t| (0..M).map(move |i| format!("{t}/{i}").len() as u64 + 24)).sum::<u64>());
    let l2 = s.l2.kinds;
    assert_eq!((l2.prediction.inserts, l2.response.inserts, l2.metadata.inserts), (ops, memos, 0));
    assert_eq!((l2.metadata.misses, l2.response.misses, l2.metadata.hits), (ops, memos, 0));
    assert_eq!(s.l2.total.errors + s.l2.total.timeouts + s.l2.total.dropped_writes, 0);
    let rs = replica.stats();
    assert_eq!((rs.l2.kinds.prediction.hits, rs.l2.kinds.prediction.misses), (ops, 0));
    assert_eq!((rs.l1.kinds.prediction.inserts, rs.l1.kinds.prediction.entries), (ops, ops), "promotions");
    assert_eq!(redis.keys().await.len() as u64, ops + memos);
}

#[tokio::test]
async fn prometheus_series_follow_the_stats() {
    let Some(redis) = TestRedis::new("metrics").await else { return };
    let cache = Cache::new(redis.settings()).await.expect("valid settings");
    assert!(wait_up(&cache, Duration::from_secs(5)).await);
    cache.put(Kind::Metadata, CacheKey(1), Arc::new("abc".to_string()));
    assert!(cache.get_l1::<String>(Kind::Metadata, CacheKey(1)).is_some());
    assert!(cache.get::<String>(Kind::Metadata, CacheKey(2)).await.is_none());
    cache.flush_writes().await;
    cache.run_pending_tasks();
    let recorder = Recorder::default();
    metrics::with_local_recorder(&recorder, || cache.publish_metrics());
    let c = |name: &str| recorder.counter(name);
    assert_eq!(c("osprey_cache_requests_total{tier=l1,kind=metadata,result=hit}"), Some(1));
    assert_eq!(c("osprey_cache_requests_total{tier=l1,kind=metadata,result=miss}"), Some(1));
    assert_eq!(c("osprey_cache_requests_total{tier=l2,kind=metadata,result=miss}"), Some(1));
    assert_eq!(c("osprey_cache_l2_bytes_total{kind=metadata,direction=written}"), Some(6));
    let g = |name: &str| recorder.gauge(name);
    assert_eq!(g("osprey_cache_entries{tier=l1,kind=metadata}"), Some(1.0));
    assert_eq!(g("osprey_cache_bytes{tier=l1,kind=metadata}"), Some(27.0));
    assert_eq!(g("osprey_cache_l2_up{}"), Some(1.0));
    assert_eq!(g("osprey_cache_l2_breaker_open{}"), Some(0.0));
    assert_eq!(osprey_cache::metrics::REQUESTS_TOTAL, "osprey_cache_requests_total");
}
