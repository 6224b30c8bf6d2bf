//! The batching writer: drain on close, concurrent submitters,
//! back-pressure, a bad record among good ones, and statement timings.

use std::time::Duration;

use osprey_store::{PostQuery, Store, StoreError, SubmitError};

use crate::common::{record, TestDb};

/// Every post id in the store, through the public listing.
async fn all_ids(store: &Store) -> Vec<String> {
    let mut q = PostQuery { limit: 500, ..Default::default() };
    let mut ids = Vec::new();
    loop {
        let page = store.list_posts(&q).await.expect("list");
        ids.extend(page.posts.into_iter().map(|p| p.id));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return ids,
        }
    }
}

async fn close_drains_every_queued_record(db: TestDb) {
    // Nothing is written on its own before close: a long delay, big batches.
    let store = db
        .open_with(|s| {
            s.writer.max_delay = Duration::from_secs(60);
            s.writer.batch_size = 400;
        })
        .await;
    let n = 1000;
    for i in 0..n {
        store.submit(record(&format!("c-{i}"), "drain", &format!("record {i}"))).await.expect("submit");
    }
    let report = store.close().await.expect("close");
    assert_eq!((report.written, report.left, report.rejected), (n, 0, 0), "{report:?}");
    assert!(report.drained > 0 && report.drained <= n, "{report:?}");
    assert_eq!(store.close().await.expect("second close"), report, "close is idempotent");

    // Closed: nothing more is taken, and the record comes back.
    assert!(matches!(store.submit(record("late", "t", "b")).await, Err(StoreError::Closed)));
    match store.try_submit(record("late", "t", "b")) {
        Err(SubmitError::Closed(r)) => assert_eq!(r.post.id, "late"),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(matches!(store.flush().await, Err(StoreError::Closed)));

    let reopened = db.open().await;
    let mut ids = all_ids(&reopened).await;
    ids.sort();
    let mut want: Vec<String> = (0..n).map(|i| format!("c-{i}")).collect();
    want.sort();
    assert_eq!(ids, want);
    reopened.close().await.expect("close");
}
on_both!(close_drains_every_queued_record);

async fn concurrent_submitters_store_each_record_once(db: TestDb) {
    let store = db.open_with(|s| s.writer.batch_size = 64).await;
    let (tasks, per) = (8, 150);
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    // Every third record repeats an earlier task's content
                    // under its own id: stored once, under one id.
                    let body = if i % 3 == 0 { format!("shared {i}") } else { format!("task {t} record {i}") };
                    store.submit(record(&format!("w-{t}-{i}"), "concurrent", &body)).await.expect("submit");
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("submitter");
    }
    store.flush().await.expect("flush");
    let ids = all_ids(&store).await;
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no post stored twice");
    let shared = (0..per).filter(|i| i % 3 == 0).count();
    let expected = tasks * (per - shared) + shared;
    assert_eq!(ids.len(), expected);
    let stats = store.query_stats();
    assert_eq!(stats.writer.written as usize, expected);
    assert_eq!(stats.writer.duplicates as usize, tasks * per - expected);
    assert_eq!(stats.writer.queue_depth, 0);
    for id in ids.iter().take(50) {
        let post = store.get_post(id).await.expect("get").expect("post");
        assert_eq!(post.analyses.len(), 1, "{id}: exactly its one analysis");
    }
    store.close().await.expect("close");
}
on_both!(concurrent_submitters_store_each_record_once);

async fn full_queue_pushes_back_without_dropping(db: TestDb) {
    let store = db.open_with(|s| s.writer.queue_capacity = 3).await;
    // A single-threaded runtime: the writer cannot run until this yields.
    let mut accepted = 0;
    let refused = loop {
        match store.try_submit(record(&format!("q-{accepted}"), "queue", &format!("n {accepted}"))) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted <= 3, "the queue holds three");
    };
    assert_eq!(accepted, 3);
    let SubmitError::Full(back) = refused else { panic!("expected Full, got {refused:?}") };
    assert_eq!(back.post.id, "q-3", "the refused record comes back whole");
    // `submit` waits for room instead.
    store.submit(*back).await.expect("submit waits");
    store.flush().await.expect("flush");
    assert_eq!(all_ids(&store).await.len(), 4);
    store.close().await.expect("close");
}
on_both!(full_queue_pushes_back_without_dropping, flavor = "current_thread");

async fn a_refused_record_does_not_sink_its_batch(db: TestDb) {
    let store = db.open_with(|s| s.writer.max_delay = Duration::from_secs(30)).await;
    for i in 0..20 {
        let mut r = record(&format!("b-{i}"), "batch", &format!("row {i}"));
        if i == 7 {
            // The schema refuses negative durations.
            r.analyses[0].duration_ms = -1.0;
        }
        store.submit(r).await.expect("submit");
    }
    store.flush().await.expect("flush");
    let ids = all_ids(&store).await;
    assert_eq!(ids.len(), 19);
    assert!(!ids.contains(&"b-7".to_string()));
    let stats = store.query_stats();
    assert_eq!((stats.writer.written, stats.writer.rejected), (19, 1));
    let report = store.close().await.expect("close");
    assert_eq!((report.written, report.rejected, report.left), (19, 1, 0));
}
on_both!(a_refused_record_does_not_sink_its_batch);

async fn query_stats_time_statements_and_pool_waits_apart(db: TestDb) {
    let store = db
        .open_with(|s| {
            s.pool.pool_size = Some(2);
            s.pool.min_connections = 0;
            s.slow_query_threshold = Duration::ZERO;
        })
        .await;
    store.submit(record("s-1", "stats", "timed")).await.expect("submit");
    store.flush().await.expect("flush");
    let reads: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get_post("s-1").await.expect("get").expect("post") })
        })
        .collect();
    for r in reads {
        r.await.expect("read");
    }
    assert!(store.ping().await.expect("ping") > Duration::ZERO);

    let stats = store.query_stats();
    let get = &stats.statements["get_post"];
    assert_eq!((get.count, get.waits, get.errors), (6, 6, 0), "{get:?}");
    assert!(get.exec_max_ms >= get.exec_p50_ms && get.exec_p50_ms > 0.0, "{get:?}");
    // Statements inside the batch transaction share one acquisition.
    let insert = &stats.statements["insert_posts"];
    assert_eq!((insert.count, insert.waits), (1, 0), "{insert:?}");
    assert_eq!(stats.statements["write_batch"].waits, 1);
    assert_eq!(stats.statements["ping"].count, 1);
    // Everything is over a zero threshold: the ring has them, fingerprinted.
    assert!(stats.slow_queries.iter().any(|q| q.statement == "get_post" && q.fingerprint.len() == 16));
    let fps: std::collections::HashSet<_> =
        stats.slow_queries.iter().filter(|q| q.statement == "get_post").map(|q| &q.fingerprint).collect();
    assert_eq!(fps.len(), 1, "one statement, one fingerprint");
    assert_eq!(stats.pool.max, 2);
    assert!(stats.pool.size <= 2);
    assert_eq!((stats.writer.written, stats.writer.queue_capacity), (1, 10_000));
    store.close().await.expect("close");
}
on_both!(query_stats_time_statements_and_pool_waits_apart);
