//! A local HTTP server playing Reddit and a feed host: it serves the recorded
//! r/rust pages (paged with `limit`/`after`, conditional on ETag), a feed
//! window, and scripted misbehaviour, and records every request it sees.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::header::{
    CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, RETRY_AFTER, USER_AGENT,
};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

/// What the next request gets instead of (or on top of) the normal answer.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// That status, with a small body.
    Status(u16),
    /// 429 with this `Retry-After`.
    TooMany(&'static str),
    /// The normal answer, after this long.
    Slow(Duration),
    /// 200 with a body cut off mid-JSON.
    Malformed,
    /// The normal answer with these `x-ratelimit-remaining` / `x-ratelimit-reset` values.
    RateLimit { remaining: &'static str, reset: &'static str },
}

/// One request as the fixture saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub query: HashMap<String, String>,
    pub user_agent: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
}

/// A feed item the fixture serves: id, title, HTML description, seconds since the epoch.
#[derive(Debug, Clone)]
pub struct FeedEntry {
    pub id: String,
    pub title: String,
    pub html: String,
    pub at: i64,
}

#[derive(Default)]
struct FixtureState {
    /// Listing children (`{"kind":"t3","data":…}`), newest first.
    posts: Vec<Value>,
    /// Feed entries, newest first; the feed shows the first `feed_window`.
    feed: Vec<FeedEntry>,
    feed_window: usize,
    /// Bumped on every change: the ETag.
    version: u64,
    script: VecDeque<Scripted>,
    seen: Vec<Seen>,
}

pub struct Fixture {
    pub base: String,
    state: Arc<Mutex<FixtureState>>,
}

/// The recorded pages' posts, newest first.
pub fn recorded_posts() -> Vec<Value> {
    (1..=3)
        .flat_map(|page| {
            let path = format!("{}/tests/fixtures/reddit/page-{page:03}.json", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).expect("fixture page");
            let listing: Value = serde_json::from_str(&text).expect("fixture JSON");
            listing["data"]["children"].as_array().cloned().expect("children")
        })
        .collect()
}

pub fn fullname(post: &Value) -> String {
    post["data"]["name"].as_str().expect("name").to_owned()
}

impl Fixture {
    pub async fn start() -> Fixture {
        let state = Arc::new(Mutex::new(FixtureState {
            posts: recorded_posts(),
            feed_window: 3,
            version: 1,
            ..FixtureState::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let app = Router::new().fallback(handle).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fixture { base, state }
    }

    fn lock(&self) -> MutexGuard<'_, FixtureState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publish `count` new posts, newer than any so far; returns their fullnames, oldest first.
    pub fn add_posts(&self, count: usize) -> Vec<String> {
        let mut state = self.lock();
        let newest = state.posts.first().and_then(|p| p["data"]["created_utc"].as_f64()).unwrap_or(1.7e9);
        let base = state.posts.len();
        let mut names = Vec::new();
        for k in 0..count {
            let id = format!("1dd{:04}", base + k);
            let created = newest + 60.0 * (k + 1) as f64;
            let post = json!({"kind": "t3", "data": {
                "id": id, "name": format!("t3_{id}"), "subreddit": "rust",
                "title": format!("New post {id}"), "selftext": format!("Body of {id} & more"),
                "author": "newcomer", "created_utc": created, "created": created,
                "permalink": format!("/r/rust/comments/{id}/new_post/"),
                "url": format!("https://www.reddit.com/r/rust/comments/{id}/new_post/"),
                "score": 1, "num_comments": 0, "is_self": true, "over_18": false
            }});
            names.push(fullname(&post));
            state.posts.insert(0, post);
        }
        state.version += 1;
        names
    }

    /// Replace the feed's entries (newest first) and its window size.
    pub fn set_feed(&self, entries: Vec<FeedEntry>, window: usize) {
        let mut state = self.lock();
        state.feed = entries;
        state.feed_window = window;
        state.version += 1;
    }

    pub fn script(&self, behaviours: impl IntoIterator<Item = Scripted>) {
        self.lock().script.extend(behaviours);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    pub fn requests(&self) -> usize {
        self.lock().seen.len()
    }
}

async fn handle(
    State(state): State<Arc<Mutex<FixtureState>>>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let text = |name| headers.get(name).and_then(|v: &axum::http::HeaderValue| v.to_str().ok()).map(str::to_owned);
    let scripted = {
        let mut state = state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.seen.push(Seen {
            path: uri.path().to_owned(),
            query: query.clone(),
            user_agent: text(USER_AGENT),
            if_none_match: text(IF_NONE_MATCH),
            if_modified_since: text(IF_MODIFIED_SINCE),
        });
        state.script.pop_front()
    };
    let mut limits = ("599.0", "300");
    match scripted {
        Some(Scripted::Status(status)) => {
            let status = StatusCode::from_u16(status).expect("status");
            return (status, "scripted failure").into_response();
        }
        Some(Scripted::TooMany(retry_after)) => {
            return (StatusCode::TOO_MANY_REQUESTS, [(RETRY_AFTER, retry_after)], "slow down").into_response();
        }
        Some(Scripted::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Scripted::Malformed) => {
            return ([(CONTENT_TYPE, "application/json")], r#"{"kind": "Listing", "data": {"after": "t3_"#)
                .into_response();
        }
        Some(Scripted::RateLimit { remaining, reset }) => limits = (remaining, reset),
        None => {}
    }

    let state = state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let etag = format!("\"v{}\"", state.version);
    let modified = format!("Mon, 10 Jun 2024 10:{:02}:00 GMT", state.version % 60);
    let common = [
        (ETAG.as_str().to_owned(), etag.clone()),
        (LAST_MODIFIED.as_str().to_owned(), modified),
        ("x-ratelimit-remaining".to_owned(), limits.0.to_owned()),
        ("x-ratelimit-reset".to_owned(), limits.1.to_owned()),
        ("x-ratelimit-used".to_owned(), "1".to_owned()),
    ];
    let mut response = match uri.path() {
        "/r/rust/new.json" if text(IF_NONE_MATCH).as_deref() == Some(etag.as_str()) => {
            StatusCode::NOT_MODIFIED.into_response()
        }
        "/r/rust/new.json" => listing_page(&state.posts, &query).into_response(),
        "/feed.xml" if text(IF_NONE_MATCH).as_deref() == Some(etag.as_str()) => {
            StatusCode::NOT_MODIFIED.into_response()
        }
        "/feed.xml" => {
            ([(CONTENT_TYPE, "application/rss+xml")], rss(&state.feed[..state.feed_window.min(state.feed.len())]))
                .into_response()
        }
        _ => (StatusCode::NOT_FOUND, r#"{"message": "Not Found", "error": 404}"#).into_response(),
    };
    for (name, value) in common {
        if let (Ok(name), Ok(value)) =
            (axum::http::HeaderName::try_from(name), axum::http::HeaderValue::try_from(value))
        {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// A page of the listing, as Reddit pages `new`: `limit` posts after the fullname `after`.
fn listing_page(posts: &[Value], query: &HashMap<String, String>) -> axum::Json<Value> {
    let limit = query.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(25);
    let start = match query.get("after") {
        Some(after) => posts.iter().position(|p| fullname(p) == *after).map_or(posts.len(), |i| i + 1),
        None => 0,
    };
    let page: Vec<Value> = posts.iter().skip(start).take(limit).cloned().collect();
    let after = if start + limit < posts.len() { page.last().map(fullname) } else { None };
    axum::Json(json!({"kind": "Listing", "data": {
        "after": after, "dist": page.len(), "modhash": "", "geo_filter": "", "children": page, "before": null
    }}))
}

fn rss(entries: &[FeedEntry]) -> String {
    let items: String = entries
        .iter()
        .map(|e| {
            let date = chrono::DateTime::from_timestamp(e.at, 0).map(|t| t.to_rfc2822()).unwrap_or_default();
            let html = e.html.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            format!(
                "<item><title>{}</title><link>http://example.com/{}</link><guid isPermaLink=\"false\">{}</guid>\
                 <description>{html}</description><pubDate>{date}</pubDate></item>\n",
                e.title, e.id, e.id
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel><title>Fixture feed</title>\
         <link>http://example.com/</link><description>test</description>\n{items}</channel></rss>\n"
    )
}
