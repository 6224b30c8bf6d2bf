//! `osprey watch`'s state: cursors committed with hashes, seen contents,
//! forgetting old ones, dead letters.

use osprey_store::{ContentHash, DeadLetter};
use serde_json::json;

use crate::common::TestDb;

async fn watch_state_round_trips(db: TestDb) {
    let store = db.open().await;
    let (a, b, c) = (ContentHash::of("a", "1"), ContentHash::of("b", "2"), ContentHash::of("c", "3"));
    assert!(store.watch_cursor("w", "src").await.expect("cursor").is_none());
    // A batch whose duplicates repeat a hash commits it once.
    store.watch_commit("w", "src", &json!({"offset": 10}), 2, &[a, b, a]).await.expect("commit");
    store.watch_commit("w", "src", &json!({"offset": 20}), 1, &[c]).await.expect("commit");
    let cursor = store.watch_cursor("w", "src").await.expect("cursor").expect("saved");
    assert_eq!((cursor.cursor.clone(), cursor.posts), (json!({"offset": 20}), 3));
    assert_eq!(store.watch_cursors("w").await.expect("cursors"), vec![cursor]);
    let seen = store.watch_seen("w", &[a, b, c, ContentHash::of("d", "4")]).await.expect("seen");
    assert_eq!(seen.len(), 3);
    // Another watch has seen nothing.
    assert!(store.watch_seen("other", &[a]).await.expect("seen").is_empty());
    // Everything was seen before the far future.
    assert_eq!(store.watch_forget_seen("w", i64::MAX).await.expect("forget"), 3);
    assert!(store.watch_seen("w", &[a, b, c]).await.expect("seen").is_empty());

    let letter = DeadLetter {
        id: "alert-1:hook".into(),
        watch: "w".into(),
        target: "hook".into(),
        payload: json!({"posts": [{"id": "p1"}]}),
        error: "webhook answered 500".into(),
        attempts: 5,
        created_at: 1_000,
    };
    store.put_dead_letter(&letter).await.expect("dead letter");
    store.put_dead_letter(&letter).await.expect("the same one again is a no-op");
    assert_eq!(store.dead_letters("w", 10).await.expect("list"), vec![letter]);
    store.close().await.expect("close");
}
on_both!(watch_state_round_trips);
