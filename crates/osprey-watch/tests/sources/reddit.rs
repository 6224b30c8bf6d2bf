//! The Reddit source against the fixture server.

use std::time::Duration;

use osprey_watch::{Source, SourceError};
use serde_json::json;

use crate::fixture::{fullname, recorded_posts, Fixture, Scripted};
use crate::{build, ids, let_time_pass, secs};

const AGENT: &str = "osprey-watch-tests/1.0 (by u/osprey)";

fn reddit(fixture: &Fixture, extra: serde_json::Value) -> Box<dyn Source> {
    let mut settings = json!({
        "type": "reddit",
        "subreddits": ["rust"],
        "base_url": fixture.base,
        "user_agent": AGENT,
        "interval_secs": 60,
        "limit": 5,
        "timeout_secs": 5,
        "backoff_base_secs": 2,
        "backoff_cap_secs": 30
    });
    if let (Some(map), Some(extra)) = (settings.as_object_mut(), extra.as_object()) {
        map.extend(extra.clone());
    }
    build(settings)
}

/// The recorded posts' fullnames `from..to` (newest first) as a batch lists them: oldest first.
fn recorded_oldest_first(from: usize, to: usize) -> Vec<String> {
    recorded_posts()[from..to].iter().rev().map(fullname).collect()
}

#[tokio::test]
async fn first_poll_takes_the_first_page_and_later_polls_only_new_posts() {
    let fixture = Fixture::start().await;
    let mut source = reddit(&fixture, json!({}));
    assert_eq!(source.name(), "reddit:r/rust");

    let first = source.poll().await;
    assert_eq!(first.error, None);
    assert_eq!(ids(&first), recorded_oldest_first(0, 5));
    assert_eq!(first.next_poll, Some(secs(60)));
    let post = &first.posts[4];
    assert_eq!(post.title, "What's everyone working on this week (24/2024)?");
    assert_eq!(post.author.as_deref(), Some("llogiq"));
    assert_eq!(post.subreddit.as_deref(), Some("rust"));
    assert_eq!((post.score, post.num_comments), (Some(12), Some(31)));
    assert_eq!(post.permalink.as_deref(), Some("/r/rust/comments/1dcw9k2/what_s_everyone_working_on_this_week_24_/"));
    let analysed = post.clone().into_post();
    assert_eq!(analysed.id, "reddit:t3_1dcw9k2");
    assert_eq!(analysed.created, Some(json!("2024-06-10T10:00:00Z")));
    assert_eq!(first.posts.iter().map(|p| p.created).collect::<Vec<_>>().windows(2).filter(|w| w[0] > w[1]).count(), 0);

    let added = fixture.add_posts(3);
    let second = source.poll().await;
    assert_eq!(ids(&second), added, "only the new posts, oldest first");
    assert_eq!(second.posts[0].body, format!("Body of {} & more", &added[0][3..]));

    // Nothing changed: the conditional request gets a 304 and the batch is empty.
    let third = source.poll().await;
    assert!(third.posts.is_empty() && third.error.is_none());
    assert_eq!(third.next_poll, Some(secs(60)));

    let seen = fixture.seen();
    assert_eq!(seen.len(), 3, "one page per poll: {seen:#?}");
    for request in &seen {
        assert_eq!(request.path, "/r/rust/new.json");
        assert_eq!(request.user_agent.as_deref(), Some(AGENT));
        assert_eq!(request.query.get("limit").map(String::as_str), Some("5"));
        assert_eq!(request.query.get("raw_json").map(String::as_str), Some("1"));
        assert_eq!(request.query.get("after"), None);
    }
    assert_eq!((seen[0].if_none_match.as_deref(), seen[0].if_modified_since.as_deref()), (None, None));
    assert_eq!(seen[1].if_none_match.as_deref(), Some("\"v1\""));
    assert_eq!(seen[2].if_none_match.as_deref(), Some("\"v2\""));
    assert_eq!(seen[2].if_modified_since.as_deref(), Some("Mon, 10 Jun 2024 10:02:00 GMT"));
}

#[tokio::test]
async fn pages_back_with_after_until_it_reaches_posts_already_seen() {
    let fixture = Fixture::start().await;
    let mut source = reddit(&fixture, json!({}));
    let first = source.poll().await;
    assert_eq!(first.posts.len(), 5);

    let added = fixture.add_posts(12);
    let batch = source.poll().await;
    assert_eq!(batch.error, None);
    assert_eq!(ids(&batch), added);

    let afters: Vec<Option<String>> = fixture.seen()[1..].iter().map(|r| r.query.get("after").cloned()).collect();
    assert_eq!(afters, [None, Some(added[7].clone()), Some(added[2].clone())], "three pages: 5 + 5 + 2 new");
    // Only the first page is conditional.
    assert!(fixture.seen()[2..].iter().all(|r| r.if_none_match.is_none()));
}

#[tokio::test]
async fn max_pages_bounds_the_walk_back() {
    let fixture = Fixture::start().await;
    let mut source = reddit(&fixture, json!({"max_pages": 2}));
    let _ = source.poll().await;
    let added = fixture.add_posts(12);
    let batch = source.poll().await;
    assert_eq!(ids(&batch), added[2..], "two pages of the newest; the gap is logged");
    assert_eq!(fixture.requests(), 3);
}

#[tokio::test]
async fn backfill_pages_sets_how_much_the_first_start_takes() {
    let fixture = Fixture::start().await;
    let mut two_pages = reddit(&fixture, json!({"backfill_pages": 2}));
    assert_eq!(ids(&two_pages.poll().await), recorded_oldest_first(0, 10));

    let mut from_now = reddit(&fixture, json!({"backfill_pages": 0}));
    let first = from_now.poll().await;
    assert!(first.posts.is_empty() && first.error.is_none());
    let added = fixture.add_posts(2);
    assert_eq!(ids(&from_now.poll().await), added);
}

#[tokio::test]
async fn restoring_a_saved_cursor_yields_exactly_the_unseen_posts() {
    let fixture = Fixture::start().await;
    let mut source = reddit(&fixture, json!({}));
    let committed = source.poll().await.cursor;
    assert_eq!(committed["type"], "reddit");
    assert_eq!(committed["newest"]["name"], json!(recorded_posts()[0]["data"]["name"]));

    // Seven posts arrive; the source returns them, then the watcher dies before storing them.
    let added = fixture.add_posts(7);
    let lost = source.poll().await;
    assert_eq!(ids(&lost), added);
    drop(source);

    // After the restart: exactly the seven again, no more, none skipped.
    let mut restarted = reddit(&fixture, json!({}));
    restarted.restore(&committed).expect("restore");
    let again = restarted.poll().await;
    assert_eq!(ids(&again), added);

    // Committing that batch and restarting once more: nothing is returned twice.
    let mut third = reddit(&fixture, json!({}));
    third.restore(&again.cursor).expect("restore");
    let nothing = third.poll().await;
    assert!(nothing.posts.is_empty() && nothing.error.is_none(), "{:?}", ids(&nothing));
    let more = fixture.add_posts(1);
    assert_eq!(ids(&third.poll().await), more);

    // A cursor of another kind is refused and the source keeps its state.
    let refused = third.restore(&json!({"type": "jsonl", "offset": 10}));
    assert!(matches!(refused, Err(SourceError::InvalidCursor(_))), "{refused:?}");
    assert!(third.poll().await.posts.is_empty());
}

#[tokio::test]
async fn a_429_waits_for_retry_after_and_makes_no_request_before() {
    let fixture = Fixture::start().await;
    let mut source = reddit(&fixture, json!({}));
    fixture.script([Scripted::TooMany("120")]);

    let limited = source.poll().await;
    let error = limited.error.expect("rate limited");
    assert!(matches!(error, SourceError::RateLimited { retry_after: Some(d), .. } if d == secs(120)), "{error:?}");
    assert!(error.is_transient());
    assert_eq!(limited.next_poll, Some(secs(120)));
    assert!(limited.posts.is_empty());

    // Polling early asks nothing of the server and says how long is left.
    let early = source.poll().await;
    assert!(early.posts.is_empty() && early.error.is_none());
    let left = early.next_poll.expect("still polling");
    assert!(left <= secs(120) && left > secs(110), "{left:?}");
    assert_eq!(fixture.requests(), 1);

    let_time_pass(secs(121)).await;
    let after = source.poll().await;
    assert_eq!(after.error, None);
    assert_eq!(ids(&after), recorded_oldest_first(0, 5));
    assert_eq!(fixture.requests(), 2);
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let fixture = Fixture::start().await;
    let mut source = reddit(&fixture, json!({}));
    fixture.script([Scripted::TooMany("Thu, 01 Jan 1970 00:00:00 GMT")]);
    // A date in the past asks for no extra wait: the backoff's base applies.
    assert_eq!(source.poll().await.next_poll, Some(secs(2)));
}

#[tokio::test]
async fn server_errors_back_off_exponentially_then_reset_on_success() {
    let fixture = Fixture::start().await;
    let mut source = reddit(&fixture, json!({}));
    fixture.script([Scripted::Status(500), Scripted::Status(502), Scripted::Status(503), Scripted::Status(500)]);

    let mut waits = Vec::new();
    for ceiling in [2, 4, 8, 16] {
        let batch = source.poll().await;
        let error = batch.error.expect("server error");
        assert!(matches!(error, SourceError::Status { status, .. } if status >= 500), "{error:?}");
        assert!(error.is_transient());
        let wait = batch.next_poll.expect("keeps polling");
        assert!(wait >= secs(2) && wait <= secs(ceiling), "{wait:?} outside [2s, {ceiling}s]");
        waits.push(wait);
        let_time_pass(wait).await;
    }
    assert_eq!(waits[0], secs(2), "the first retry waits the base");

    let recovered = source.poll().await;
    assert_eq!(recovered.error, None);
    assert_eq!(recovered.posts.len(), 5);
    assert_eq!(recovered.next_poll, Some(secs(60)));

    // The success reset the backoff: the next failure waits the base again.
    fixture.script([Scripted::Status(500)]);
    assert_eq!(source.poll().await.next_poll, Some(secs(2)));
    assert_eq!(fixture.requests(), 6);
}

#[tokio::test]
async fn the_backoff_stops_growing_at_its_cap() {
    let fixture = Fixture::start().await;
    let mut source = reddit(&fixture, json!({"backoff_base_secs": 1, "backoff_cap_secs": 4}));
    fixture.script(std::iter::repeat_n(Scripted::Status(500), 8));
    for _ in 0..8 {
        let wait = source.poll().await.next_poll.expect("keeps polling");
        assert!(wait >= secs(1) && wait <= secs(4), "{wait:?}");
        let_time_pass(wait).await;
    }
    assert_eq!(fixture.requests(), 8);
}

#[tokio::test]
async fn a_slow_answer_times_out_as_a_transient_error() {
    let fixture = Fixture::start().await;
    let mut source = reddit(&fixture, json!({"timeout_secs": 0.2}));
    fixture.script([Scripted::Slow(Duration::from_secs(30))]);

    let batch = source.poll().await;
    let error = batch.error.expect("timeout");
    assert!(
        matches!(error, SourceError::Timeout { timeout, .. } if timeout == Duration::from_millis(200)),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_eq!(batch.next_poll, Some(secs(2)));

    let_time_pass(secs(2)).await;
    assert_eq!(source.poll().await.posts.len(), 5);
}

#[tokio::test]
async fn a_spent_quota_holds_the_next_request_until_the_reset() {
    let fixture = Fixture::start().await;
    let mut source = reddit(&fixture, json!({"interval_secs": 5}));
    fixture.script([Scripted::RateLimit { remaining: "0.0", reset: "42" }]);

    let batch = source.poll().await;
    assert_eq!(batch.posts.len(), 5, "the answer itself is used");
    assert_eq!(batch.next_poll, Some(secs(42)));
    let early = source.poll().await;
    assert!(early.posts.is_empty() && early.next_poll.is_some_and(|d| d <= secs(42) && d > secs(40)));
    assert_eq!(fixture.requests(), 1);

    let_time_pass(secs(42)).await;
    let added = fixture.add_posts(1);
    assert_eq!(ids(&source.poll().await), added);
}

#[tokio::test]
async fn a_quota_spent_half_way_back_refetches_everything_after_the_reset() {
    let fixture = Fixture::start().await;
    let mut source = reddit(&fixture, json!({}));
    let _ = source.poll().await;
    let added = fixture.add_posts(8);
    fixture.script([Scripted::RateLimit { remaining: "0", reset: "30" }]);

    let cut = source.poll().await;
    assert!(cut.posts.is_empty(), "no half batch that would leave a gap");
    assert!(matches!(cut.error, Some(SourceError::RateLimited { retry_after: Some(d), .. }) if d == secs(30)));
    assert_eq!(cut.next_poll, Some(secs(30)));
    assert_eq!(fixture.requests(), 2);

    let_time_pass(secs(30)).await;
    assert_eq!(ids(&source.poll().await), added);
}

#[tokio::test]
async fn malformed_json_is_reported_as_permanent_and_retried_with_backoff() {
    let fixture = Fixture::start().await;
    let mut source = reddit(&fixture, json!({}));
    fixture.script([Scripted::Malformed]);

    let batch = source.poll().await;
    let error = batch.error.expect("malformed");
    assert!(matches!(error, SourceError::Malformed { format: "listing", .. }), "{error:?}");
    assert!(!error.is_transient());
    assert_eq!(batch.next_poll, Some(secs(2)));

    let_time_pass(secs(2)).await;
    assert_eq!(source.poll().await.posts.len(), 5);
}

#[tokio::test]
async fn a_missing_subreddit_is_a_permanent_error_and_the_source_keeps_polling() {
    let fixture = Fixture::start().await;
    let mut source = reddit(&fixture, json!({"subreddits": ["rust_but_gone"]}));
    let batch = source.poll().await;
    let error = batch.error.expect("404");
    assert!(matches!(error, SourceError::Status { status: 404, .. }), "{error:?}");
    assert!(!error.is_transient());
    assert_eq!(batch.next_poll, Some(secs(2)));
    assert_eq!(fixture.seen()[0].path, "/r/rust_but_gone/new.json");
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let fixture = Fixture::start().await;
    let mut source = reddit(&fixture, json!({"max_body_bytes": 1000}));
    let error = source.poll().await.error.expect("too large");
    assert!(matches!(error, SourceError::TooLarge { limit: 1000, .. }), "{error:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let mut source = build(json!({
        "type": "reddit", "subreddits": ["rust"], "user_agent": AGENT,
        "base_url": format!("http://{address}"), "backoff_base_secs": 3
    }));
    let batch = source.poll().await;
    let error = batch.error.expect("refused");
    assert!(matches!(error, SourceError::Transport { .. }), "{error:?}");
    assert!(error.is_transient());
    assert_eq!(batch.next_poll, Some(secs(3)));
}
