//! Emotion statistics (live, and PostgreSQL's daily view after a refresh)
//! and versioned topic sets.

use osprey_store::{Backend, Bucket, EmotionBucket, EmotionStatsQuery, TopicSetRow, EMOTIONS};
use serde_json::json;

use crate::common::{emotional, TestDb};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const DAY0: i64 = 20_400 * DAY;

fn mean(b: &EmotionBucket, name: &str) -> f64 {
    b.means[name]
}

fn key(b: &EmotionBucket) -> (i64, Option<&str>, Option<&str>, u64) {
    (b.start_at, b.persona_id.as_deref(), b.topic.as_deref(), b.posts)
}

async fn emotion_stats_bucket_by_day_and_hour(db: TestDb) {
    let store = db.open().await;
    let records = [
        emotional("e1", "p1", Some("rust"), DAY0 + 10 * HOUR, &[("joy", 0.8), ("neutral", 0.2)]),
        emotional("e2", "p1", Some("rust"), DAY0 + 11 * HOUR, &[("joy", 0.6), ("sadness", 0.4)]),
        emotional("e3", "p1", None, DAY0 + 11 * HOUR, &[("anger", 1.0)]),
        emotional("e4", "p2", Some("rust"), DAY0 + DAY + HOUR, &[("fear", 0.5), ("surprise", 0.5)]),
        emotional("e5", "p1", Some("rust"), DAY0 + DAY + 23 * HOUR, &[("disgust", 0.9), ("neutral", 0.1)]),
    ];
    for r in records {
        store.submit(r).await.expect("submit");
    }
    store.flush().await.expect("flush");

    let by_day = |persona: Option<&str>, topic: Option<&str>| EmotionStatsQuery {
        persona_id: persona.map(str::to_string),
        topic: topic.map(str::to_string),
        ..Default::default()
    };
    if db.settings.backend() == Backend::Postgres {
        // The view holds what it held at its last refresh: nothing yet.
        assert!(store.emotion_stats(&by_day(Some("p1"), None)).await.expect("stats").is_empty());
        store.refresh_aggregates().await.expect("refresh");
    }
    let p1 = store.emotion_stats(&by_day(Some("p1"), None)).await.expect("stats");
    let keys: Vec<_> = p1.iter().map(key).collect();
    assert_eq!(
        keys,
        vec![
            (DAY0, Some("p1"), None, 1),
            (DAY0, Some("p1"), Some("rust"), 2),
            (DAY0 + DAY, Some("p1"), Some("rust"), 1)
        ]
    );
    let rust0 = &p1[1];
    for (name, want) in [("joy", 0.7), ("neutral", 0.1), ("sadness", 0.2), ("anger", 0.0), ("surprise", 0.0)] {
        assert!((mean(rust0, name) - want).abs() < 1e-9, "{name}: {rust0:?}");
    }
    assert_eq!(rust0.means.len(), EMOTIONS.len());
    assert_eq!(rust0.start, "2025-11-08T00:00:00.000Z");
    assert_eq!(mean(&p1[0], "anger"), 1.0);

    let rust = store.emotion_stats(&by_day(None, Some("rust"))).await.expect("stats");
    let keys: Vec<_> = rust.iter().map(key).collect();
    assert_eq!(
        keys,
        vec![
            (DAY0, Some("p1"), Some("rust"), 2),
            (DAY0 + DAY, Some("p1"), Some("rust"), 1),
            (DAY0 + DAY, Some("p2"), Some("rust"), 1)
        ]
    );
    // Ranges widen to whole buckets, the same on both paths.
    let later = EmotionStatsQuery { since: Some(DAY0 + DAY + 12 * HOUR), ..by_day(None, None) };
    let later = store.emotion_stats(&later).await.expect("stats");
    assert_eq!(later.iter().map(|b| b.posts).sum::<u64>(), 2);

    let hourly = EmotionStatsQuery { bucket: Bucket::Hour, ..by_day(Some("p1"), Some("rust")) };
    let hourly = store.emotion_stats(&hourly).await.expect("stats");
    let starts: Vec<_> = hourly.iter().map(|b| (b.start_at, b.posts)).collect();
    assert_eq!(starts, vec![(DAY0 + 10 * HOUR, 1), (DAY0 + 11 * HOUR, 1), (DAY0 + DAY + 23 * HOUR, 1)]);
    assert!((mean(&hourly[1], "sadness") - 0.4).abs() < 1e-9);

    // A post moving to another persona without a new emotion takes its
    // aggregates row along.
    let mut moved = emotional("e4", "p3", None, DAY0 + DAY + HOUR, &[]);
    moved.emotion = None;
    moved.analyses.clear();
    store.submit(moved).await.expect("submit");
    store.flush().await.expect("flush");
    store.refresh_aggregates().await.expect("refresh");
    let rust = store.emotion_stats(&by_day(None, Some("rust"))).await.expect("stats");
    assert!(rust.iter().any(|b| b.persona_id.as_deref() == Some("p3") && mean(b, "fear") == 0.5), "{rust:?}");
    assert!(rust.iter().all(|b| b.persona_id.as_deref() != Some("p2")));
    store.close().await.expect("close");
}
on_both!(emotion_stats_bucket_by_day_and_hour);

async fn topic_set_versions_crud(db: TestDb) {
    let store = db.open().await;
    let set = |name: &str, version: i64, threshold: f64, at: i64| TopicSetRow {
        name: name.into(),
        version,
        topics: json!([{ "label": "Rust", "examples": ["cargo", "borrow checker"] }]),
        threshold,
        description: Some(format!("{name} v{version}")),
        model: "all-MiniLM-L6-v2".into(),
        created_at: at,
        updated_at: at,
    };
    store.put_topic_set(&set("tech", 1, 0.35, 100)).await.expect("put");
    store.put_topic_set(&set("tech", 2, 0.4, 200)).await.expect("put");
    store.put_topic_set(&set("news", 1, 0.3, 300)).await.expect("put");

    let latest = store.get_topic_set("tech", None).await.expect("get").expect("tech");
    assert_eq!(latest, set("tech", 2, 0.4, 200));
    assert_eq!(store.get_topic_set("tech", Some(1)).await.expect("get"), Some(set("tech", 1, 0.35, 100)));
    assert_eq!(store.get_topic_set("tech", Some(9)).await.expect("get"), None);
    let names: Vec<_> = store.list_topic_sets().await.expect("list").into_iter().map(|s| (s.name, s.version)).collect();
    assert_eq!(names, vec![("news".to_string(), 1), ("tech".to_string(), 2)]);

    // Rewriting a version keeps when it was created.
    store.put_topic_set(&set("tech", 2, 0.5, 999)).await.expect("rewrite");
    let rewritten = store.get_topic_set("tech", Some(2)).await.expect("get").expect("tech v2");
    assert_eq!((rewritten.threshold, rewritten.created_at, rewritten.updated_at), (0.5, 200, 999));
    assert!(store.put_topic_set(&set("tech", 0, 0.5, 1)).await.is_err(), "versions start at 1");

    assert_eq!(store.delete_topic_set("tech").await.expect("delete"), 2);
    assert_eq!(store.get_topic_set("tech", None).await.expect("get"), None);
    assert_eq!(store.delete_topic_set("tech").await.expect("delete again"), 0);
    assert_eq!(store.list_topic_sets().await.expect("list").len(), 1);
    store.close().await.expect("close");
}
on_both!(topic_set_versions_crud);
