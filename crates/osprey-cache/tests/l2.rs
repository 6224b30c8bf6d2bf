//! L2 against a real Redis: the stored bytes, compression, TTLs, and replicas
//! sharing values through L2.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{wait_up, TestRedis};
use osprey_cache::{Cache, CacheKey, Cacheable, KeyBuilder, Kind, SCHEMA_VERSION};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Doc {
    label: String,
    scores: Vec<f32>,
}

impl Cacheable for Doc {
    fn approx_bytes(&self) -> usize {
        self.label.len() + self.scores.len() * 4 + 48
    }
}

async fn up(redis: &TestRedis) -> Cache {
    let cache = Cache::new(redis.settings()).await.expect("valid settings");
    assert!(wait_up(&cache, Duration::from_secs(5)).await, "L2 did not come up: {:?}", cache.l2_state());
    cache
}

#[tokio::test]
async fn values_round_trip_plain_below_and_compressed_above_the_threshold() {
    let Some(redis) = TestRedis::new("roundtrip").await else { return };
    let cache = up(&redis).await;
    let small = Arc::new(Doc { label: "joy".into(), scores: vec![0.5, 0.25] });
    let large = Arc::new(Doc { label: "a long and repetitive label ".repeat(100), scores: vec![0.125; 200] });
    let (k_small, k_large) =
        (KeyBuilder::new("doc").str("small").finish(), KeyBuilder::new("doc").str("large").finish());
    cache.put(Kind::Prediction, k_small, Arc::clone(&small));
    cache.put(Kind::Prediction, k_large, Arc::clone(&large));
    cache.flush_writes().await;

    let mut conn = redis.conn().await;
    let raw = |k: CacheKey| format!("{}:v{SCHEMA_VERSION}:prediction:{}", redis.prefix, k.hex());
    let small_bytes: Vec<u8> = redis::cmd("GET").arg(raw(k_small)).query_async(&mut conn).await.expect("GET small");
    let large_bytes: Vec<u8> = redis::cmd("GET").arg(raw(k_large)).query_async(&mut conn).await.expect("GET large");
    let small_json = serde_json::to_vec(&*small).expect("json");
    let large_json = serde_json::to_vec(&*large).expect("json");
    assert_eq!(small_bytes[0], 0x01, "header: JSON, uncompressed");
    assert_eq!(&small_bytes[1..], &small_json[..]);
    assert!(large_json.len() > 1024, "the large value is above compress_min_bytes");
    assert_eq!(large_bytes[0], 0x81, "header: JSON, zstd");
    assert_eq!(&large_bytes[1..5], &[0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
    assert!(large_bytes.len() * 4 < large_json.len(), "{} vs {} bytes", large_bytes.len(), large_json.len());
    assert_eq!(zstd::decode_all(&large_bytes[1..]).expect("valid zstd"), large_json);

    // A replica with an empty L1 decodes both from L2.
    let replica = up(&redis).await;
    assert_eq!(replica.get::<Doc>(Kind::Prediction, k_small).await.as_deref(), Some(&*small));
    assert_eq!(replica.get::<Doc>(Kind::Prediction, k_large).await.as_deref(), Some(&*large));

    let written = cache.stats().l2.kinds.prediction;
    assert_eq!((written.inserts, written.compressed_writes), (2, 1));
    assert_eq!(written.bytes_written, (small_bytes.len() + large_bytes.len()) as u64);
    let read = replica.stats().l2.kinds.prediction;
    assert_eq!((read.hits, read.misses), (2, 0));
    assert_eq!(read.bytes_read, written.bytes_written);
}

#[tokio::test]
async fn entries_expire_in_redis_after_their_kinds_ttl() {
    let Some(redis) = TestRedis::new("ttl").await else { return };
    let mut settings = redis.settings();
    settings.l2.ttl.response = Duration::from_secs(1);
    let cache = Cache::new(settings.clone()).await.expect("valid settings");
    assert!(wait_up(&cache, Duration::from_secs(5)).await);
    let key = CacheKey(42);
    cache.put(Kind::Response, key, Arc::new("short-lived".to_string()));
    cache.put(Kind::Metadata, key, Arc::new("long-lived".to_string()));
    cache.flush_writes().await;

    let mut conn = redis.conn().await;
    let response_key = format!("{}:v{SCHEMA_VERSION}:response:{}", redis.prefix, key.hex());
    let metadata_key = format!("{}:v{SCHEMA_VERSION}:metadata:{}", redis.prefix, key.hex());
    let pttl: i64 = redis::cmd("PTTL").arg(&response_key).query_async(&mut conn).await.expect("PTTL");
    assert!(pttl > 0 && pttl <= 1000, "response PTTL {pttl}");
    let pttl: i64 = redis::cmd("PTTL").arg(&metadata_key).query_async(&mut conn).await.expect("PTTL");
    assert!(pttl > 14 * 60 * 1000 && pttl <= 15 * 60 * 1000, "metadata keeps its 15 min default: {pttl}");

    tokio::time::sleep(Duration::from_millis(1300)).await;
    let exists: u64 = redis::cmd("EXISTS").arg(&response_key).query_async(&mut conn).await.expect("EXISTS");
    assert_eq!(exists, 0, "Redis expired the response");
    let replica = Cache::new(settings).await.expect("valid settings");
    assert!(wait_up(&replica, Duration::from_secs(5)).await);
    assert!(replica.get::<String>(Kind::Response, key).await.is_none());
    assert_eq!(replica.get::<String>(Kind::Metadata, key).await.as_deref().map(String::as_str), Some("long-lived"));
}

#[tokio::test]
async fn replicas_share_l2_and_promote_hits_into_l1() {
    let Some(redis) = TestRedis::new("promote").await else { return };
    let writer = up(&redis).await;
    let reader = up(&redis).await;
    let keys: Vec<CacheKey> = (0..4).map(|i| KeyBuilder::new("promote").str(&i.to_string()).finish()).collect();
    for (i, &k) in keys.iter().enumerate().take(3) {
        writer.put(Kind::Metadata, k, Arc::new(format!("value {i}")));
    }
    writer.flush_writes().await;

    assert!(reader.get_l1::<String>(Kind::Metadata, keys[0]).is_none(), "not in the reader's L1 yet");
    assert_eq!(reader.get::<String>(Kind::Metadata, keys[0]).await.as_deref().map(String::as_str), Some("value 0"));
    assert_eq!(
        reader.get_l1::<String>(Kind::Metadata, keys[0]).as_deref().map(String::as_str),
        Some("value 0"),
        "promoted into the reader's L1"
    );
    // get_many: one L1 hit, two from L2 in one MGET, one miss everywhere.
    let many = reader.get_many::<String>(Kind::Metadata, &keys).await;
    let many: Vec<Option<&str>> = many.iter().map(|v| v.as_deref().map(String::as_str)).collect();
    assert_eq!(many, [Some("value 0"), Some("value 1"), Some("value 2"), None]);
    assert!(reader.get_l1::<String>(Kind::Metadata, keys[2]).is_some(), "get_many promotes too");
    assert!(reader.get::<String>(Kind::Prediction, keys[0]).await.is_none(), "kinds are separate key spaces");

    reader.run_pending_tasks();
    let s = reader.stats();
    assert_eq!((s.l2.kinds.metadata.hits, s.l2.kinds.metadata.misses), (3, 1));
    assert_eq!(s.l2.kinds.prediction.misses, 1);
    assert_eq!((s.l1.kinds.metadata.inserts, s.l1.kinds.metadata.entries), (3, 3));
    assert_eq!(s.l2.kinds.metadata.inserts, 0, "reading writes nothing back");
    assert_eq!(redis.keys().await.len(), 3);
}

#[tokio::test]
async fn oversized_values_stay_out_of_redis_but_in_l1() {
    let Some(redis) = TestRedis::new("oversize").await else { return };
    let mut settings = redis.settings();
    settings.l2.max_value_bytes = 100;
    let cache = Cache::new(settings).await.expect("valid settings");
    assert!(wait_up(&cache, Duration::from_secs(5)).await);
    cache.put(Kind::Prediction, CacheKey(1), Arc::new("x".repeat(200)));
    cache.put(Kind::Prediction, CacheKey(2), Arc::new("x".repeat(50)));
    cache.flush_writes().await;
    assert!(cache.get_l1::<String>(Kind::Prediction, CacheKey(1)).is_some());
    let s = cache.stats().l2.kinds.prediction;
    assert_eq!((s.too_large, s.inserts), (1, 1));
    assert_eq!(redis.keys().await.len(), 1);
}

#[tokio::test]
async fn put_l1_keeps_values_in_process() {
    let Some(redis) = TestRedis::new("put-l1").await else { return };
    let cache = up(&redis).await;
    cache.put_l1(Kind::Metadata, CacheKey(1), Arc::new("local".to_string()));
    cache.flush_writes().await;
    assert_eq!(cache.get_l1::<String>(Kind::Metadata, CacheKey(1)).as_deref().map(String::as_str), Some("local"));
    assert!(redis.keys().await.is_empty(), "nothing sent to Redis");
    let replica = up(&redis).await;
    assert!(replica.get::<String>(Kind::Metadata, CacheKey(1)).await.is_none());
}
