//! Round trips, deduplication and keyset pagination.

use std::collections::HashSet;
use std::time::Duration;

use osprey_store::{ContentHash, NewSegment, NewTrajectory, PostQuery, StoreError};
use serde_json::json;

use crate::common::{analysis, record, TestDb};

async fn submit_flush_and_read_back(db: TestDb) {
    let store = db.open().await;
    let mut r = record("rt-1", "Cargo builds", "Every build takes minutes.");
    r.post.persona_id = Some("dev".into());
    r.post.external_id = Some("t3_x".into());
    r.post.created_at = Some(1_763_632_800_000);
    let emotion = analysis("emotion", json!({ "label": "anger", "scores": { "anger": 0.7 } }));
    let trajectory = analysis("trajectory", json!({ "shape": "fall" }));
    r.analyses.extend([emotion.clone(), trajectory.clone()]);
    r.trajectory = Some(NewTrajectory {
        analysis_id: trajectory.id.clone(),
        smoothing: r#"{"method":"dct"}"#.into(),
        shape: "fall".into(),
        dominant: "anger".into(),
        mean_valence: -0.25,
        volatility: 0.5,
        segments: (0..3)
            .map(|i| NewSegment {
                idx: i,
                start: i * 10,
                end: i * 10 + 9,
                valence: -0.1 * i as f64,
                smoothed_valence: -0.05 * i as f64,
                label: "anger".into(),
                scores: json!({ "anger": 0.5 }),
            })
            .collect(),
    });
    let submitted = r.clone();
    store.submit(r).await.expect("submit");
    store.flush().await.expect("flush");

    let got = store.get_post("rt-1").await.expect("get").expect("stored");
    let p = &got.post;
    assert_eq!((p.title.as_str(), p.body.as_str()), ("Cargo builds", "Every build takes minutes."));
    assert_eq!((p.persona_id.as_deref(), p.external_id.as_deref()), (Some("dev"), Some("t3_x")));
    assert_eq!(p.content_hash, ContentHash::of("Cargo builds", "Every build takes minutes."));
    assert_eq!((p.created_at, p.created.as_str()), (1_763_632_800_000, "2025-11-20T10:00:00.000Z"));
    assert_eq!(got.analyses.len(), 3);
    for a in &submitted.analyses {
        let stored = got.analyses.iter().find(|s| s.id == a.id).expect("analysis stored");
        assert_eq!((&stored.result, &stored.options, &stored.task), (&a.result, &a.options, &a.task));
        assert_eq!(stored.duration_ms, a.duration_ms);
        assert_eq!(store.get_analysis(&a.id).await.expect("get analysis").as_ref(), Some(stored));
    }
    let t = store.get_trajectory(&trajectory.id).await.expect("trajectory").expect("stored");
    assert_eq!((t.post_id.as_str(), t.n_segments, t.segments.len()), ("rt-1", 3, 3));
    assert_eq!(t.segments[2].end, 29);
    assert_eq!(t.segments[1].scores, json!({ "anger": 0.5 }));
    assert!(store.get_post("nope").await.expect("get").is_none());
    assert!(store.get_analysis("nope").await.expect("get").is_none());
    assert!(store.get_trajectory("nope").await.expect("get").is_none());

    // The same id with new content: the post follows, analyses accumulate,
    // fields the resubmission leaves out keep their values.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let mut again = record("rt-1", "Cargo builds", "Builds are fast now.");
    again.post.external_id = None;
    store.submit(again.clone()).await.expect("resubmit");
    store.flush().await.expect("flush");
    let got = store.get_post("rt-1").await.expect("get").expect("stored");
    assert_eq!(got.post.body, "Builds are fast now.");
    assert_eq!(got.post.content_hash, again.post.content_hash);
    assert_eq!((got.post.created_at, got.post.persona_id.as_deref()), (1_763_632_800_000, Some("dev")));
    assert_eq!(got.post.external_id.as_deref(), Some("t3_x"));
    assert_eq!(got.analyses.len(), 4, "analyses are history");
    assert_eq!(got.analyses[0].id, again.analyses[0].id, "newest first");
    store.close().await.expect("close");
}
on_both!(submit_flush_and_read_back);

async fn find_by_hashes_sees_stored_and_pending_content(db: TestDb) {
    // A long batching delay: records stay queued until a flush.
    let store = db.open_with(|s| s.writer.max_delay = Duration::from_secs(30)).await;
    let a = record("d-a", "same", "content");
    store.submit(a.clone()).await.expect("submit");
    store.flush().await.expect("flush");

    let b = record("d-b", "other", "content");
    store.submit(b.clone()).await.expect("submit");
    let unknown = ContentHash::of("never", "seen");
    let found = store
        .find_by_hashes(&[a.post.content_hash, b.post.content_hash, unknown, a.post.content_hash])
        .await
        .expect("find");
    assert_eq!(found.len(), 2);
    assert_eq!(found[&a.post.content_hash].post.id, "d-a");
    assert_eq!(found[&a.post.content_hash].analyses[0].id, a.analyses[0].id);
    let pending = &found[&b.post.content_hash];
    assert_eq!((pending.post.id.as_str(), pending.analyses.len()), ("d-b", 1), "still queued, already visible");
    // Not committed yet, but a client reading its post right after being
    // told it was stored sees it.
    let queued = store.get_post("d-b").await.expect("get").expect("queued post is readable");
    assert_eq!((queued.post.body.as_str(), queued.analyses.len()), ("content", 1));
    assert_eq!(queued.analyses[0].id, b.analyses[0].id);
    let one = store.get_analysis(&b.analyses[0].id).await.expect("get").expect("queued analysis is readable");
    assert_eq!(one.post_id, "d-b");

    // The same content under another id stores nothing new.
    store.submit(record("d-c", "same", "content")).await.expect("submit duplicate");
    // A second analysis of a stored post, still queued, joins its history.
    let mut more = record("d-a", "same", "content");
    more.analyses = vec![analysis("summary", json!({ "text": "same" }))];
    store.submit(more.clone()).await.expect("submit");
    let found = store.find_by_hashes(&[a.post.content_hash]).await.expect("find");
    let ids: Vec<&str> = found[&a.post.content_hash].analyses.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(ids, vec![more.analyses[0].id.as_str(), a.analyses[0].id.as_str()]);
    let read = store.get_post("d-a").await.expect("get").expect("a");
    assert_eq!(read.analyses.len(), 2, "committed and queued analyses together");

    store.flush().await.expect("flush");
    assert!(store.get_post("d-c").await.expect("get").is_none(), "duplicate content not stored");
    assert!(store.get_post("d-b").await.expect("get").is_some());
    assert_eq!(store.get_post("d-a").await.expect("get").expect("a").analyses.len(), 2);
    let stats = store.query_stats();
    assert_eq!((stats.writer.written, stats.writer.duplicates), (3, 1));
    assert!(store.find_by_hashes(&[]).await.expect("empty").is_empty());
    store.close().await.expect("close");
}
on_both!(find_by_hashes_sees_stored_and_pending_content);

async fn list_posts_pages_without_gaps_or_repeats(db: TestDb) {
    let store = db.open().await;
    let base = 1_763_600_000_000;
    // 60 posts; every third pair shares a timestamp, so ids break ties.
    let mut all = Vec::new();
    for i in 0..60i64 {
        let mut r = record(&format!("l-{i:02}"), "list", &format!("body {i}"));
        r.post.persona_id = Some(if i % 2 == 0 { "even" } else { "odd" }.into());
        r.post.topic = Some(if i % 3 == 0 { "rust" } else { "sql" }.into());
        r.post.created_at = Some(base + (i / 3) * 60_000);
        all.push(r.post.clone());
        store.submit(r).await.expect("submit");
    }
    store.flush().await.expect("flush");
    let expect = |f: &dyn Fn(&osprey_store::NewPost) -> bool| {
        let mut v: Vec<_> = all.iter().filter(|p| f(p)).map(|p| (p.created_at.unwrap_or(0), p.id.clone())).collect();
        v.sort_by(|a, b| b.cmp(a));
        v.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
    };

    let pages = |q: PostQuery| {
        let store = store.clone();
        async move {
            let mut seen = Vec::new();
            let mut q = q;
            loop {
                let page = store.list_posts(&q).await.expect("page");
                assert!(page.posts.len() <= q.limit as usize);
                seen.extend(page.posts.iter().map(|p| p.id.clone()));
                match page.next_cursor {
                    Some(c) => q.cursor = Some(c),
                    None => return seen,
                }
                assert!(seen.len() <= 60, "runaway pagination");
            }
        }
    };
    let even = pages(PostQuery { persona_id: Some("even".into()), limit: 7, ..Default::default() }).await;
    assert_eq!(even, expect(&|p| p.persona_id.as_deref() == Some("even")));
    let both = PostQuery { persona_id: Some("odd".into()), topic: Some("rust".into()), limit: 2, ..Default::default() };
    assert_eq!(
        pages(both).await,
        expect(&|p| p.persona_id.as_deref() == Some("odd") && p.topic.as_deref() == Some("rust"))
    );
    let (since, until) = (base + 5 * 60_000, base + 12 * 60_000);
    let window = PostQuery { since: Some(since), until: Some(until), limit: 4, ..Default::default() };
    assert_eq!(pages(window).await, expect(&|p| (since..until).contains(&p.created_at.unwrap_or(0))));
    let everything = pages(PostQuery { limit: 500, ..Default::default() }).await;
    assert_eq!(everything.len(), 60);
    assert_eq!(everything.iter().collect::<HashSet<_>>().len(), 60);

    // New posts arriving mid-pagination do not shift later pages.
    let first = store.list_posts(&PostQuery { limit: 10, ..Default::default() }).await.expect("page");
    let mut newer = record("l-new", "list", "newest");
    newer.post.created_at = Some(base + 3_600_000);
    store.submit(newer).await.expect("submit");
    store.flush().await.expect("flush");
    let mut rest = pages(PostQuery { limit: 10, cursor: first.next_cursor, ..Default::default() }).await;
    let mut ids: Vec<String> = first.posts.iter().map(|p| p.id.clone()).collect();
    ids.append(&mut rest);
    assert_eq!(ids, expect(&|_| true));

    let bad = store.list_posts(&PostQuery { cursor: Some("not-a-cursor".into()), ..Default::default() }).await;
    assert!(matches!(bad, Err(StoreError::BadCursor(_))), "{bad:?}");
    let zero = store.list_posts(&PostQuery { limit: 0, ..Default::default() }).await;
    assert!(matches!(zero, Err(StoreError::InvalidQuery(_))), "{zero:?}");
    store.close().await.expect("close");
}
on_both!(list_posts_pages_without_gaps_or_repeats);
