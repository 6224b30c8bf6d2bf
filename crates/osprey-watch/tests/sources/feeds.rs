//! The RSS/Atom source, from files and over HTTP.

use std::path::PathBuf;

use osprey_watch::SourceError;
use serde_json::json;

use crate::fixture::{FeedEntry, Fixture, Scripted};
use crate::{build, ids, let_time_pass, secs};

fn feed_file(name: &str) -> PathBuf {
    PathBuf::from(format!("{}/tests/fixtures/feeds/{name}", env!("CARGO_MANIFEST_DIR")))
}

fn rfc3339(post: &osprey_watch::SourcePost) -> Option<String> {
    post.created.map(|t| t.to_rfc3339())
}

#[tokio::test]
async fn rss_items_become_plain_text_posts_oldest_first() {
    let mut source = build(json!({"type": "rss", "path": feed_file("this-week.rss.xml")}));
    let batch = source.poll().await;
    assert_eq!(batch.error, None);
    assert!(batch.is_done(), "a file without tail is read once");
    let [cfp, twir550, twir551] = &batch.posts[..] else { panic!("three items: {:?}", ids(&batch)) };

    assert_eq!(cfp.external_id, "https://this-week-in-rust.org/cfp/");
    assert_eq!(cfp.title, "Call for Participation: RustConf & RustNL");
    assert_eq!(rfc3339(cfp).as_deref(), Some("2024-06-04T10:30:00+00:00"));

    assert_eq!(
        twir550.body,
        "Quote of the week: “the borrow checker is a friend” — someone\nCall for Testing: 2 items"
    );
    assert_eq!(twir550.author.as_deref(), Some("TWiR Editors"));

    assert_eq!(twir551.external_id, "tag:this-week-in-rust.org,2024-06-12:/blog/2024/06/12/this-week-in-rust-551/");
    assert_eq!(
        twir551.body,
        "Hello and welcome to another issue of This Week in Rust!\nUpdates from Rust Community\n\
         Announcing Rust 1.79.0\nCrate of the week: cargo-wizard — thanks & congrats!"
    );
    assert_eq!(twir551.author.as_deref(), Some("TWiR Contributors"));
    assert_eq!(twir551.url.as_deref(), Some("https://this-week-in-rust.org/blog/2024/06/12/this-week-in-rust-551/"));
    let post = twir551.clone().into_post();
    assert_eq!(post.source.as_deref(), Some("rss"));
    assert_eq!(post.created, Some(json!("2024-06-12T00:00:00Z")));
}

#[tokio::test]
async fn atom_entries_become_plain_text_posts() {
    let mut source = build(json!({"type": "rss", "path": feed_file("inside-rust.atom.xml")}));
    let batch = source.poll().await;
    let [style, cargo] = &batch.posts[..] else { panic!("two entries: {:?}", ids(&batch)) };
    assert_eq!(style.title, "Announcing the Rust Style Team");
    assert_eq!(style.body, "Past, present & future of rustfmt style.");
    assert_eq!(rfc3339(style).as_deref(), Some("2022-09-29T00:00:00+00:00"), "updated stands in for published");
    assert_eq!(cargo.title, "This Development-cycle in Cargo: 1.80");
    assert_eq!(
        cargo.body,
        "This is a summary of what has been happening around Cargo development for the last 6 weeks.\n\
         Plugin of the cycle\nCargo can't be everything to everyone & that’s fine."
    );
    assert_eq!(cargo.author.as_deref(), Some("Ed Page"));
    assert_eq!(
        cargo.url.as_deref(),
        Some("https://blog.rust-lang.org/inside-rust/2024/06/11/this-development-cycle-in-cargo-1.80.html")
    );
}

fn entry(n: i64) -> FeedEntry {
    FeedEntry {
        id: format!("item-{n}"),
        title: format!("Item {n}"),
        html: format!("<p>Item <b>{n}</b> says &quot;hi&quot; &amp; bye</p>"),
        at: 1_718_000_000 + 3600 * n,
    }
}

/// Entries numbered `ns`, in the order given (feeds list newest first).
fn entries(ns: &[i64]) -> Vec<FeedEntry> {
    ns.iter().copied().map(entry).collect()
}

#[tokio::test]
async fn a_moving_window_yields_each_item_once_across_polls_and_restarts() {
    let fixture = Fixture::start().await;
    let settings = json!({"type": "rss", "url": format!("{}/feed.xml", fixture.base), "interval_secs": 600});
    let mut source = build(settings.clone());
    fixture.set_feed(entries(&[3, 2, 1]), 3);

    let first = source.poll().await;
    assert_eq!(first.error, None);
    assert_eq!(ids(&first), ["item-1", "item-2", "item-3"]);
    assert_eq!(first.posts[0].body, "Item 1 says \"hi\" & bye");
    assert_eq!(first.next_poll, Some(secs(600)));
    let committed = first.cursor;

    // Two new items push two old ones out of the window.
    fixture.set_feed(entries(&[5, 4, 3, 2, 1]), 3);
    assert_eq!(ids(&source.poll().await), ["item-4", "item-5"]);
    // Unchanged: 304.
    assert!(source.poll().await.posts.is_empty());

    // A restart from the cursor committed after the first batch gets exactly the two again.
    let mut restarted = build(settings);
    restarted.restore(&committed).expect("restore");
    let again = restarted.poll().await;
    assert_eq!(ids(&again), ["item-4", "item-5"]);

    // An old item that reappears is not new; nor is an unseen one older than the window.
    fixture.set_feed(entries(&[6, 5, 2, -5]), 4);
    assert_eq!(ids(&restarted.poll().await), ["item-6"]);

    let seen = fixture.seen();
    assert!(seen.iter().all(|r| r.user_agent.as_deref() == Some(concat!("osprey-watch/", env!("CARGO_PKG_VERSION")))));
    assert_eq!(seen[1].if_none_match.as_deref(), Some("\"v2\""));
    assert_eq!(seen[3].if_none_match.as_deref(), Some("\"v2\""), "the restored cursor's validators");
}

#[tokio::test]
async fn feed_errors_use_the_shared_backoff_and_malformed_feeds_are_reported() {
    let fixture = Fixture::start().await;
    let mut source = build(json!({
        "type": "rss", "url": format!("{}/feed.xml", fixture.base), "backoff_base_secs": 4, "user_agent": "feeds/2"
    }));
    fixture.set_feed(entries(&[1]), 3);
    fixture.script([Scripted::Status(503), Scripted::Malformed]);

    let unavailable = source.poll().await;
    assert!(matches!(unavailable.error, Some(SourceError::Status { status: 503, .. })));
    assert_eq!(unavailable.next_poll, Some(secs(4)));
    assert!(source.poll().await.next_poll.is_some_and(|d| d <= secs(4)), "held back: no request");
    assert_eq!(fixture.requests(), 1);

    let_time_pass(secs(4)).await;
    let malformed = source.poll().await;
    let error = malformed.error.expect("malformed");
    assert!(matches!(error, SourceError::Malformed { format: "feed", .. }), "{error:?}");
    assert!(!error.is_transient());
    let wait = malformed.next_poll.expect("keeps polling");
    assert!(wait >= secs(4) && wait <= secs(8), "{wait:?}");

    let_time_pass(wait).await;
    assert_eq!(ids(&source.poll().await), ["item-1"]);
    assert!(fixture.seen().iter().all(|r| r.user_agent.as_deref() == Some("feeds/2")));
}

#[tokio::test]
async fn a_tailed_feed_file_is_read_again_each_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("feed.xml");
    std::fs::copy(feed_file("this-week.rss.xml"), &path).expect("copy");
    let mut source = build(json!({"type": "rss", "path": path, "tail": true, "interval_secs": 120}));
    let first = source.poll().await;
    assert_eq!((first.posts.len(), first.next_poll), (3, Some(secs(120))));
    let again = source.poll().await;
    assert!(again.posts.is_empty());
    assert_eq!(again.next_poll, Some(secs(120)));
}
