//! The JSONL source following a file as it is appended to, truncated and rotated.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use osprey_watch::{Source, SourceError};
use serde_json::json;

use crate::{build, ids, secs};

fn jsonl(path: &Path, extra: serde_json::Value) -> Box<dyn Source> {
    let mut settings = json!({"type": "jsonl", "path": path, "interval_secs": 2});
    if let (Some(map), Some(extra)) = (settings.as_object_mut(), extra.as_object()) {
        map.extend(extra.clone());
    }
    build(settings)
}

fn line(id: &str) -> String {
    format!("{}\n", json!({"id": id, "title": format!("Post {id}"), "body": "text", "created": 1_718_000_000}))
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open");
    file.write_all(text.as_bytes()).expect("append");
}

#[tokio::test]
async fn tails_appends_waits_for_partial_lines_and_skips_bad_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.jsonl");
    let third = line("3");
    let (head, rest) = third.split_at(10);
    append(&path, &format!("{}{}{head}", line("1"), line("2")));
    let mut source = jsonl(&path, json!({}));

    let first = source.poll().await;
    assert_eq!(ids(&first), ["1", "2"], "the partial third line waits");
    assert_eq!(first.next_poll, Some(secs(2)));
    assert_eq!(first.cursor["offset"], json!(2 * line("1").len()));

    let at_end = source.poll().await;
    assert!(at_end.posts.is_empty() && at_end.error.is_none());
    assert_eq!(at_end.next_poll, Some(secs(2)));

    append(&path, &format!("{rest}{{\"id\": broken\n[1, 2]\n\n{}", line("4")));
    let second = source.poll().await;
    assert_eq!(ids(&second), ["3", "4"]);
    assert_eq!(second.skipped, 2, "the broken line and the array");
    assert_eq!(second.error, None);
    assert_eq!(second.posts[0].source, "jsonl");
    assert_eq!(second.posts[0].clone().into_post().id, "jsonl:3");
}

#[tokio::test]
async fn restores_from_the_committed_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.jsonl");
    append(&path, &format!("{}{}", line("a"), line("b")));
    let mut source = jsonl(&path, json!({}));
    let committed = source.poll().await.cursor;

    append(&path, &line("c"));
    let lost = source.poll().await;
    assert_eq!(ids(&lost), ["c"]);

    let mut restarted = jsonl(&path, json!({}));
    restarted.restore(&committed).expect("restore");
    assert_eq!(ids(&restarted.poll().await), ["c"]);
    assert!(restarted.poll().await.posts.is_empty());
}

#[tokio::test]
async fn a_truncated_file_is_read_from_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.jsonl");
    append(&path, &format!("{}{}{}", line("1"), line("2"), line("3")));
    let mut source = jsonl(&path, json!({}));
    assert_eq!(source.poll().await.posts.len(), 3);

    std::fs::write(&path, line("9")).expect("truncate");
    assert_eq!(ids(&source.poll().await), ["9"]);
}

#[tokio::test]
async fn a_rewritten_file_as_long_as_before_is_noticed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.jsonl");
    append(&path, &line("1"));
    let mut source = jsonl(&path, json!({}));
    assert_eq!(ids(&source.poll().await), ["1"]);

    // Copy-truncate rotation, and the new content already longer than the old offset.
    let file = std::fs::OpenOptions::new().write(true).truncate(true).open(&path).expect("open");
    drop(file);
    append(&path, &format!("{}{}", line("7"), line("8")));
    assert_eq!(ids(&source.poll().await), ["7", "8"]);
}

#[tokio::test]
async fn a_rotated_file_is_followed_to_the_new_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.jsonl");
    append(&path, &line("old"));
    let mut source = jsonl(&path, json!({}));
    assert_eq!(ids(&source.poll().await), ["old"]);

    std::fs::rename(&path, dir.path().join("inbox.jsonl.1")).expect("rotate");
    let missing = source.poll().await;
    assert!(matches!(missing.error, Some(SourceError::Io { .. })), "{:?}", missing.error);
    assert!(missing.error.as_ref().is_some_and(SourceError::is_transient));
    assert_eq!(missing.next_poll, Some(secs(2)));

    // The new file is as long as the old one: only its identity tells them apart.
    append(&path, &line("new"));
    assert_eq!(line("new").len(), line("old").len());
    assert_eq!(ids(&source.poll().await), ["new"]);
}

#[tokio::test]
async fn without_tail_the_last_line_counts_and_the_source_finishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("export.jsonl");
    let reddit_line = json!({"name": "t3_1dcw9k2", "id": "1dcw9k2", "title": "Reddit-shaped", "selftext": "self",
                             "created_utc": 1_718_013_600.0, "subreddit": "rust", "score": 12});
    append(&path, &format!("{}{}{reddit_line}", line("1"), line("2")));
    let mut source = jsonl(&path, json!({"tail": false, "max_batch": 2}));

    let first = source.poll().await;
    assert_eq!(ids(&first), ["1", "2"]);
    assert_eq!(first.next_poll, Some(Duration::ZERO), "max_batch reached, more to read");
    let last = source.poll().await;
    assert_eq!(ids(&last), ["t3_1dcw9k2"]);
    assert_eq!(last.posts[0].subreddit.as_deref(), Some("rust"));
    assert!(last.is_done());
}

#[tokio::test]
async fn over_long_lines_are_skipped_once_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inbox.jsonl");
    let long = format!("{{\"id\": \"long\", \"title\": \"{}", "x".repeat(500));
    append(&path, &format!("{}{long}", line("1")));
    let mut source = jsonl(&path, json!({"max_line_bytes": 100}));

    let first = source.poll().await;
    assert_eq!((ids(&first), first.skipped), (vec!["1".to_owned()], 0), "the long line is not finished yet");

    append(&path, &format!("\"}}\n{}", line("2")));
    let second = source.poll().await;
    assert_eq!((ids(&second), second.skipped), (vec!["2".to_owned()], 1));
}

#[tokio::test]
async fn a_missing_file_is_reported_and_waited_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("later.jsonl");
    let mut source = jsonl(&path, json!({}));
    let batch = source.poll().await;
    assert!(matches!(batch.error, Some(SourceError::Io { kind: std::io::ErrorKind::NotFound, .. })));
    assert_eq!(batch.next_poll, Some(secs(2)));

    append(&path, &line("1"));
    assert_eq!(ids(&source.poll().await), ["1"]);
}
