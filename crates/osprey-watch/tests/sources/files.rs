//! The listing-files source over a directory of recorded pages.

use std::path::{Path, PathBuf};
use std::time::Duration;

use osprey_watch::{Source, SourceError};
use serde_json::json;

use crate::fixture::{fullname, recorded_posts};
use crate::{build, ids, secs};

fn fixture_page(page: usize) -> PathBuf {
    PathBuf::from(format!("{}/tests/fixtures/reddit/page-{page:03}.json", env!("CARGO_MANIFEST_DIR")))
}

/// A directory holding the three recorded pages.
fn recorded_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for page in 1..=3 {
        std::fs::copy(fixture_page(page), dir.path().join(format!("page-{page:03}.json"))).expect("copy");
    }
    dir
}

fn files(path: &Path, tail: bool) -> Box<dyn Source> {
    build(json!({"type": "listing_files", "path": path, "tail": tail, "interval_secs": 30}))
}

fn oldest_first(from: usize, to: usize) -> Vec<String> {
    recorded_posts()[from..to].iter().rev().map(fullname).collect()
}

#[tokio::test]
async fn reads_each_file_once_in_name_order_then_finishes() {
    let dir = recorded_dir();
    std::fs::write(dir.path().join("notes.txt"), "not a page").expect("write");
    std::fs::write(dir.path().join(".page-004.json.tmp"), "{").expect("write");
    let mut source = files(dir.path(), false);

    let mut batches = Vec::new();
    loop {
        let batch = source.poll().await;
        assert_eq!(batch.error, None);
        let done = batch.is_done();
        batches.push(batch);
        if done {
            break;
        }
        assert_eq!(batches.last().and_then(|b| b.next_poll), Some(Duration::ZERO), "more files are ready");
    }
    assert_eq!(batches.len(), 3);
    for (k, batch) in batches.iter().enumerate() {
        assert_eq!(ids(batch), oldest_first(5 * k, 5 * k + 5));
        assert!(batch.posts.iter().all(|p| p.source == "reddit"));
    }
    assert_eq!(batches[2].cursor["last_file"], "page-003.json");
    assert!(source.poll().await.is_done(), "stays done");
}

#[tokio::test]
async fn tail_mode_picks_up_new_files_and_skips_repeated_posts() {
    let dir = recorded_dir();
    let mut source = files(dir.path(), true);
    for _ in 0..3 {
        let _ = source.poll().await;
    }
    let idle = source.poll().await;
    assert!(idle.posts.is_empty());
    assert_eq!(idle.next_poll, Some(secs(30)));

    // A new recording overlaps the last one: page 3's posts plus one newer post.
    let mut listing: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_page(3)).expect("read")).expect("json");
    let mut newer = listing["data"]["children"][0].clone();
    newer["data"]["id"] = json!("1ddzzzz");
    newer["data"]["name"] = json!("t3_1ddzzzz");
    newer["data"]["created_utc"] = json!(1_718_100_000.0);
    if let Some(children) = listing["data"]["children"].as_array_mut() {
        children.insert(0, newer);
    }
    std::fs::write(dir.path().join("page-004.json"), listing.to_string()).expect("write");

    let batch = source.poll().await;
    assert_eq!(ids(&batch), ["t3_1ddzzzz"]);
    assert_eq!(batch.next_poll, Some(secs(30)));
}

#[tokio::test]
async fn a_malformed_file_is_counted_reported_and_passed_over() {
    let dir = recorded_dir();
    std::fs::write(dir.path().join("page-001b.json"), "{\"kind\": \"Listing\", \"data\": {").expect("write");
    let mut source = files(dir.path(), false);
    let _ = source.poll().await;

    let bad = source.poll().await;
    assert!(bad.posts.is_empty());
    assert_eq!(bad.skipped, 1);
    assert!(matches!(bad.error, Some(SourceError::Malformed { .. })), "{:?}", bad.error);
    assert_eq!(bad.next_poll, Some(Duration::ZERO));

    assert_eq!(ids(&source.poll().await), oldest_first(5, 10));
}

#[tokio::test]
async fn restores_to_the_file_after_the_last_one_committed() {
    let dir = recorded_dir();
    let mut source = files(dir.path(), false);
    let committed = source.poll().await.cursor;

    let mut restarted = files(dir.path(), false);
    restarted.restore(&committed).expect("restore");
    assert_eq!(ids(&restarted.poll().await), oldest_first(5, 10));
}

#[tokio::test]
async fn a_single_file_is_read_once() {
    let mut source = files(&fixture_page(2), true);
    let batch = source.poll().await;
    assert_eq!(ids(&batch), oldest_first(5, 10));
    assert!(batch.is_done());

    let mut missing = files(Path::new("/nonexistent/osprey/pages"), false);
    let batch = missing.poll().await;
    assert!(matches!(batch.error, Some(SourceError::Io { kind: std::io::ErrorKind::NotFound, .. })));
    assert_eq!(batch.next_poll, Some(secs(30)), "keeps looking");
}

/// A listing page of `count` posts, each listed twice, newest first.
fn page_of(count: usize) -> String {
    let children: Vec<serde_json::Value> = (0..count)
        .rev()
        .flat_map(|n| {
            let post = json!({"kind": "t3", "data": {"id": format!("p{n}"), "name": format!("t3_p{n}"), "title": "T", "created_utc": n}});
            [post.clone(), post]
        })
        .collect();
    json!({"kind": "Listing", "data": {"after": null, "children": children}}).to_string()
}

/// Repeats within a file were found by a linear scan per post: O(n²) on a large page.
#[tokio::test]
async fn a_large_page_with_repeats_yields_each_post_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("page.json"), page_of(50_000)).expect("write");
    let batch = files(dir.path(), false).poll().await;
    assert_eq!(batch.error, None);
    let expected: Vec<String> = (0..50_000).map(|n| format!("t3_p{n}")).collect();
    assert_eq!(ids(&batch), expected);
}

#[tokio::test]
async fn a_file_over_the_limit_is_reported_and_passed_over() {
    let dir = recorded_dir();
    let mut source =
        build(json!({"type": "listing_files", "path": dir.path(), "max_file_bytes": 64, "interval_secs": 30}));
    let batch = source.poll().await;
    assert!(batch.posts.is_empty());
    assert_eq!(batch.skipped, 1);
    assert!(matches!(batch.error, Some(SourceError::TooLarge { limit: 64, .. })), "{:?}", batch.error);
    assert_eq!(batch.next_poll, Some(Duration::ZERO));
}
