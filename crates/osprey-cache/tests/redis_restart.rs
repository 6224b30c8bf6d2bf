//! Redis killed and restarted under a stream of `memoize` calls: no call
//! fails, the breaker opens and says so, and L2 comes back by itself.
//! Uses a private `redis-server` child, so the shared test Redis is untouched.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{settings_for, PrivateRedis, Recorder};
use osprey_cache::{Cache, CacheKey, Kind, L2State};

#[derive(Debug)]
struct Never;

/// One memoize call on a fresh key; must succeed, and quickly, whatever
/// Redis is doing.
async fn call(cache: &Cache, i: u128) -> Duration {
    let started = Instant::now();
    let value = tokio::time::timeout(
        Duration::from_secs(2),
        cache.memoize(Kind::Prediction, CacheKey(i), || async move { Ok::<_, Never>(format!("value {i}")) }),
    )
    .await
    .expect("memoize never hangs on Redis")
    .expect("memoize never fails because of Redis");
    assert_eq!(*value, format!("value {i}"));
    started.elapsed()
}

async fn raw_exists(url: &str, key: &str) -> bool {
    let client = redis::Client::open(url).expect("valid url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("private Redis connection");
    redis::cmd("EXISTS").arg(key).query_async::<u64>(&mut conn).await.expect("EXISTS") == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_redis_degrades_then_recovers() {
    let Some(mut server) = PrivateRedis::start("redis_restart") else { return };
    let mut settings = settings_for(&server.url(), "osprey-restart");
    settings.l2.command_timeout = Duration::from_millis(100);
    settings.l2.connect_timeout = Duration::from_millis(500);
    settings.l2.breaker_failures = 3;
    settings.l2.breaker_cooldown = Duration::from_millis(300);
    let cache = Cache::new(settings).await.expect("valid settings");
    assert!(common::wait_up(&cache, Duration::from_secs(5)).await, "{:?}", cache.l2_state());

    // Healthy: values reach Redis.
    let mut next = 0u128;
    for _ in 0..50 {
        call(&cache, next).await;
        next += 1;
    }
    cache.flush_writes().await;
    assert_eq!(cache.stats().l2.total.inserts, 50);

    // Killed mid-stream: every call still succeeds, and the breaker opens.
    server.kill();
    let mut saw_open = false;
    let mut slowest_while_open = Duration::ZERO;
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(2) {
        let open_before = cache.l2_state().is_open();
        let took = call(&cache, next).await;
        next += 1;
        if open_before && cache.l2_state().is_open() {
            slowest_while_open = slowest_while_open.max(took);
        }
        saw_open |= cache.l2_state().is_open();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(saw_open, "breaker never opened: {:?}", cache.l2_state());
    // Skipping L2 while open costs nothing; only a probe may wait out its deadline.
    assert!(slowest_while_open < Duration::from_millis(400), "a call took {slowest_while_open:?} while open");
    let degraded = cache.stats();
    assert!(degraded.l2.state.is_open(), "{:?}", degraded.l2.state);
    assert!(degraded.l2.total.skipped_open > 0, "{:?}", degraded.l2.total);
    assert!(degraded.l2.total.errors + degraded.l2.total.timeouts >= 3, "{:?}", degraded.l2.total);
    assert!(!degraded.l2.errors_by_op.is_empty());
    let recorder = Recorder::default();
    metrics::with_local_recorder(&recorder, || cache.publish_metrics());
    assert_eq!(recorder.gauge("osprey_cache_l2_breaker_open{}"), Some(1.0));
    assert_eq!(recorder.gauge("osprey_cache_l2_up{}"), Some(0.0));
    // Earlier values are still served from L1.
    assert!(cache.get_l1::<String>(Kind::Prediction, CacheKey(0)).is_some());

    // Restarted on the same port: a probe closes the breaker and writes flow again.
    server.restart();
    let inserts_before = cache.stats().l2.total.inserts;
    let deadline = Instant::now() + Duration::from_secs(20);
    let recovered_key = loop {
        assert!(Instant::now() < deadline, "L2 did not come back: {:?}", cache.l2_state());
        call(&cache, next).await;
        next += 1;
        cache.flush_writes().await;
        if cache.l2_state() == L2State::Up && cache.stats().l2.total.inserts > inserts_before {
            break next - 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let key = format!("osprey-restart:v{}:prediction:{}", osprey_cache::SCHEMA_VERSION, CacheKey(recovered_key).hex());
    assert!(raw_exists(&server.url(), &key).await, "a value written after recovery is in the new Redis");
    let fresh = Arc::new("after restart".to_string());
    cache.put(Kind::Metadata, CacheKey(1), Arc::clone(&fresh));
    cache.flush_writes().await;
    let replica = Cache::new(settings_for(&server.url(), "osprey-restart")).await.expect("valid settings");
    assert!(common::wait_up(&replica, Duration::from_secs(5)).await);
    assert_eq!(replica.get::<String>(Kind::Metadata, CacheKey(1)).await, Some(fresh));
    let recorder = Recorder::default();
    metrics::with_local_recorder(&recorder, || cache.publish_metrics());
    assert_eq!(recorder.gauge("osprey_cache_l2_up{}"), Some(1.0));
    assert_eq!(recorder.gauge("osprey_cache_l2_breaker_open{}"), Some(0.0));
}

#[tokio::test]
async fn start_up_does_not_wait_for_an_unreachable_redis() {
    let Some(mut server) = PrivateRedis::start("redis_late_start") else { return };
    server.kill();
    let mut settings = settings_for(&server.url(), "osprey-late");
    settings.l2.breaker_cooldown = Duration::from_millis(200);
    let started = Instant::now();
    let cache = Cache::new(settings).await.expect("an unreachable Redis is not a start-up error");
    assert!(started.elapsed() < Duration::from_millis(100));
    assert!(matches!(cache.l2_state(), L2State::Connecting { .. }), "{:?}", cache.l2_state());
    // Served without L2 meanwhile, at once.
    let t = Instant::now();
    let v = cache.memoize(Kind::Metadata, CacheKey(5), || async { Ok::<_, Never>("computed".to_string()) }).await;
    assert!(v.is_ok() && t.elapsed() < Duration::from_millis(50));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !matches!(cache.l2_state(), L2State::Connecting { last_error: Some(_) }) {
        assert!(Instant::now() < deadline, "should report why it is not up: {:?}", cache.l2_state());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(cache.stats().l2.total.skipped_connecting >= 2, "the look-up and the write were skipped");

    // Redis appears later: the background task connects.
    server.restart();
    assert!(common::wait_up(&cache, Duration::from_secs(10)).await, "{:?}", cache.l2_state());
    cache.put(Kind::Metadata, CacheKey(6), Arc::new("late".to_string()));
    cache.flush_writes().await;
    assert_eq!(cache.stats().l2.total.inserts, 1);
}
