//! New posts of one or more subreddits, from the public `new.json` listing over HTTP.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::bodies::parse_off_runtime;
use crate::config::{http_url, secs, user_agent};
use crate::error::{ConfigError, SourceError};
use crate::http::{Fetched, HttpClient, HttpSettings, RateLimit, Throttle, Validators};
use crate::listing::{parse_listing, RedditPost};
use crate::recent::RecentIds;
use crate::{decode_cursor, encode_cursor, Batch, PollFuture, Source};

/// How many fullnames a cursor remembers.
const RECENT_CAP: usize = 500;

/// Settings of a `type = "reddit"` source.
///
/// ```toml
/// [[watch.sources]]
/// type = "reddit"
/// subreddits = ["rust", "programming"]   # read together: /r/rust+programming/new.json
/// user_agent = "osprey-watch/0.1 (by u/someone)"   # required; Reddit throttles generic agents
/// base_url = "http://127.0.0.1:8080"     # required: an http:// proxy or mirror of www.reddit.com (no TLS in this build)
/// interval_secs = 60
/// limit = 100            # posts per page, 1..=100
/// backfill_pages = 1     # pages taken on the first start (0: start from now)
/// max_pages = 10         # pages walked back per poll to reach posts already seen
/// timeout_secs = 10
/// max_body_bytes = 4194304
/// backoff_base_secs = 5
/// backoff_cap_secs = 900
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedditConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub subreddits: Vec<String>,
    pub user_agent: String,
    /// Required (the build refuses a config without it): this build has no
    /// TLS client, so `https://www.reddit.com` is reached through an
    /// `http://` URL, such as a local caching proxy or a mirror.
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default = "default_interval_secs")]
    pub interval_secs: f64,
    #[serde(default = "default_limit")]
    pub limit: u32,
    #[serde(default = "default_backfill_pages")]
    pub backfill_pages: u32,
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: f64,
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    #[serde(default = "default_backoff_base_secs")]
    pub backoff_base_secs: f64,
    #[serde(default = "default_backoff_cap_secs")]
    pub backoff_cap_secs: f64,
}

fn default_interval_secs() -> f64 {
    60.0
}
fn default_limit() -> u32 {
    100
}
fn default_backfill_pages() -> u32 {
    1
}
fn default_max_pages() -> u32 {
    10
}
pub(crate) fn default_timeout_secs() -> f64 {
    10.0
}
pub(crate) fn default_max_body_bytes() -> u64 {
    4 * 1024 * 1024
}
pub(crate) fn default_backoff_base_secs() -> f64 {
    5.0
}
pub(crate) fn default_backoff_cap_secs() -> f64 {
    900.0
}

impl RedditConfig {
    /// `name`, or `reddit:r/<a>+<b>`.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let subs: Vec<&str> = self.subreddits.iter().map(|s| bare_subreddit(s)).collect();
            format!("reddit:r/{}", subs.join("+"))
        })
    }
}

/// `rust` from `rust`, `r/rust` or `/r/rust/`.
fn bare_subreddit(name: &str) -> &str {
    name.trim().trim_start_matches('/').trim_start_matches("r/").trim_end_matches('/')
}

/// The newest post seen: listings are newest first, so anything older is old.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Newest {
    name: String,
    created_utc: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "reddit")]
struct RedditCursor {
    #[serde(default)]
    newest: Option<Newest>,
    /// Fullnames returned lately, for posts created in the same second as `newest`.
    #[serde(default)]
    recent: RecentIds,
    /// Validators of the last full first page.
    #[serde(default)]
    http: Validators,
}

impl RedditCursor {
    fn has_seen(&self, post: &RedditPost) -> bool {
        self.newest.as_ref().is_some_and(|n| post.created_utc < n.created_utc) || self.recent.contains(&post.fullname())
    }

    /// Remember `fresh` (newest first) as returned.
    fn advance(&mut self, fresh: &[RedditPost]) {
        if let Some(newest) = fresh.first() {
            if self.newest.as_ref().is_none_or(|n| newest.created_utc >= n.created_utc) {
                self.newest = Some(Newest { name: newest.fullname(), created_utc: newest.created_utc });
            }
        }
        self.recent.remember(fresh.iter().map(RedditPost::fullname), RECENT_CAP);
    }
}

/// The Reddit listing source. See the [crate docs](crate) for its behaviour.
#[derive(Debug)]
pub struct RedditSource {
    name: String,
    listing: Url,
    limit: u32,
    backfill_pages: u32,
    max_pages: u32,
    http: HttpClient,
    throttle: Throttle,
    cursor: RedditCursor,
}

impl RedditSource {
    pub fn new(config: &RedditConfig) -> Result<Self, ConfigError> {
        let name = config.name();
        let invalid = |message: String| ConfigError::new(&name, message);
        if config.subreddits.is_empty() {
            return Err(invalid("subreddits is empty".into()));
        }
        let mut subreddits = Vec::with_capacity(config.subreddits.len());
        for sub in &config.subreddits {
            let sub = bare_subreddit(sub);
            let valid = (1..=21).contains(&sub.len()) && sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(invalid(format!("{sub:?} is not a subreddit name (letters, digits, _; up to 21)")));
            }
            subreddits.push(sub);
        }
        if !(1..=100).contains(&config.limit) {
            return Err(invalid(format!("limit = {} must be within 1..=100", config.limit)));
        }
        if config.max_pages == 0 {
            return Err(invalid("max_pages must be at least 1".into()));
        }
        if config.max_body_bytes == 0 {
            return Err(invalid("max_body_bytes must be at least 1".into()));
        }
        let Some(base_url) = &config.base_url else {
            return Err(invalid(
                "base_url is required: this build has no TLS client, so https://www.reddit.com cannot be read \
                 directly; only http:// URLs are supported, such as a local caching proxy or mirror of Reddit"
                    .into(),
            ));
        };
        let mut listing = http_url(&name, "base_url", base_url)?;
        listing
            .path_segments_mut()
            .map_err(|()| invalid(format!("base_url = {base_url:?} cannot take a path")))?
            .pop_if_empty()
            .extend(["r", &subreddits.join("+"), "new.json"]);
        let settings = HttpSettings {
            user_agent: user_agent(&name, &config.user_agent)?,
            timeout: secs(&name, "timeout_secs", config.timeout_secs, true)?,
            max_body_bytes: config.max_body_bytes,
        };
        let backoff = Backoff::new(
            secs(&name, "backoff_base_secs", config.backoff_base_secs, true)?,
            secs(&name, "backoff_cap_secs", config.backoff_cap_secs, true)?,
        );
        let interval = secs(&name, "interval_secs", config.interval_secs, true)?;
        Ok(RedditSource {
            listing,
            limit: config.limit,
            backfill_pages: config.backfill_pages,
            max_pages: config.max_pages,
            http: HttpClient::new(&settings).map_err(invalid)?,
            throttle: Throttle::new(interval, backoff),
            cursor: RedditCursor::default(),
            name,
        })
    }

    fn page_url(&self, after: Option<&str>) -> Url {
        let mut url = self.listing.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &self.limit.to_string()).append_pair("raw_json", "1");
            if let Some(after) = after {
                query.append_pair("after", after);
            }
        }
        url
    }

    fn batch(&self, posts: Vec<RedditPost>, next_poll: Duration, skipped: usize, error: Option<SourceError>) -> Batch {
        Batch {
            posts: posts.into_iter().map(RedditPost::into_source_post).collect(),
            cursor: encode_cursor(&self.cursor),
            next_poll: Some(next_poll),
            skipped,
            error,
        }
    }

    fn fail(&mut self, error: SourceError, limits: &RateLimit, skipped: usize) -> Batch {
        let next = self.throttle.failed(limits);
        self.batch(Vec::new(), next, skipped, Some(error))
    }

    async fn poll_listing(&mut self) -> Batch {
        if let Some(wait) = self.throttle.blocked_for() {
            return self.batch(Vec::new(), wait, 0, None);
        }
        let first_start = self.cursor.newest.is_none();
        let pages = if first_start { self.backfill_pages.max(1) } else { self.max_pages };
        // New posts, newest first, as the listing gives them.
        let mut fresh: Vec<RedditPost> = Vec::new();
        let mut fresh_names = HashSet::new();
        let mut validators = None;
        let mut limits = RateLimit::default();
        let mut skipped = 0;
        let mut after: Option<String> = None;
        let mut caught_up = false;
        for page in 0..pages {
            if let (true, Some(wait)) = (page > 0, limits.exhausted_wait()) {
                // The quota ran out half-way back: fetch it all again after the reset.
                let error = SourceError::RateLimited { url: self.listing.to_string(), retry_after: Some(wait) };
                return self.fail(error, &limits, skipped);
            }
            let url = self.page_url(after.as_deref());
            let conditional = if page == 0 { self.cursor.http.clone() } else { Validators::default() };
            let exchange = self.http.get(&url, &conditional).await;
            limits = exchange.limits;
            let body = match exchange.result {
                Ok(Fetched::NotModified) => {
                    caught_up = true;
                    break;
                }
                Ok(Fetched::Fresh { body, validators: page_validators }) => {
                    if page == 0 {
                        validators = Some(page_validators);
                    }
                    body
                }
                Err(error) => return self.fail(error, &limits, skipped),
            };
            let listing = match parse_off_runtime(body, |body| parse_listing(&body)).await {
                Ok(listing) => listing,
                Err(message) => {
                    let error = SourceError::Malformed { origin: url.to_string(), format: "listing", message };
                    return self.fail(error, &limits, skipped);
                }
            };
            skipped += listing.skipped;
            for post in listing.posts {
                if self.cursor.has_seen(&post) {
                    caught_up = true;
                } else if fresh_names.insert(post.fullname()) {
                    fresh.push(post);
                }
            }
            after = listing.after;
            if caught_up || after.is_none() {
                caught_up = true;
                break;
            }
        }
        if !caught_up && !first_start {
            tracing::warn!(
                source = %self.name,
                pages = self.max_pages,
                "more new posts than max_pages pages hold; the older of them were not fetched"
            );
        }
        // Newest first for the cursor, then oldest first for the batch.
        fresh.sort_by(|a, b| b.created_utc.total_cmp(&a.created_utc));
        if let Some(v) = validators {
            self.cursor.http = v;
        }
        self.cursor.advance(&fresh);
        if first_start && self.backfill_pages == 0 {
            fresh.clear();
        }
        fresh.reverse();
        let next = self.throttle.succeeded(&limits);
        self.batch(fresh, next, skipped, None)
    }
}

impl Source for RedditSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn restore(&mut self, cursor: &serde_json::Value) -> Result<(), SourceError> {
        self.cursor = decode_cursor(cursor, "reddit")?;
        Ok(())
    }

    fn poll(&mut self) -> PollFuture<'_> {
        Box::pin(self.poll_listing())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(extra: serde_json::Value) -> RedditConfig {
        let mut value = json!({"subreddits": ["rust"], "user_agent": "test/1", "base_url": "http://127.0.0.1:9/"});
        if let (Some(map), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
            map.extend(extra.clone());
        }
        serde_json::from_value(value).expect("config")
    }

    #[test]
    fn builds_the_listing_url() {
        let source = RedditSource::new(&config(json!({"subreddits": ["r/rust", "/r/programming/"], "limit": 25})))
            .expect("source");
        assert_eq!(source.name, "reddit:r/rust+programming");
        assert_eq!(
            source.page_url(Some("t3_abc")).as_str(),
            "http://127.0.0.1:9/r/rust+programming/new.json?limit=25&raw_json=1&after=t3_abc"
        );
        let proxied =
            RedditSource::new(&config(json!({"base_url": "http://127.0.0.1:9/reddit", "name": "r"}))).expect("source");
        assert_eq!(proxied.page_url(None).as_str(), "http://127.0.0.1:9/reddit/r/rust/new.json?limit=100&raw_json=1");
    }

    #[test]
    fn refuses_bad_settings() {
        for bad in [
            json!({"subreddits": []}),
            json!({"subreddits": ["rust/comments"]}),
            json!({"limit": 0}),
            json!({"limit": 101}),
            json!({"max_pages": 0}),
            json!({"max_body_bytes": 0}),
            json!({"interval_secs": 0}),
            json!({"user_agent": ""}),
            json!({"base_url": "https://www.reddit.com"}),
        ] {
            assert!(RedditSource::new(&config(bad.clone())).is_err(), "{bad} was accepted");
        }
    }

    /// `base_url` once defaulted to `https://www.reddit.com`, which this build
    /// refuses: the minimal config failed with a message about a URL it never gave.
    #[test]
    fn base_url_is_required_and_must_be_http() {
        let minimal: RedditConfig =
            serde_json::from_value(json!({"subreddits": ["rust"], "user_agent": "test/1"})).expect("config");
        assert_eq!(minimal.base_url, None);
        let error = RedditSource::new(&minimal).expect_err("no base_url");
        assert!(error.message.starts_with("base_url is required"), "{error}");
        assert!(error.message.contains("only http:// URLs"), "{error}");
        let tls = RedditSource::new(&config(json!({"base_url": "https://www.reddit.com"}))).expect_err("https");
        assert!(tls.message.contains("http://"), "{tls}");
    }

    #[test]
    fn cursor_round_trips_and_refuses_other_kinds() {
        let mut cursor = RedditCursor::default();
        let page = parse_listing(
            br#"{"kind":"Listing","data":{"after":null,"children":[
                {"kind":"t3","data":{"id":"b","name":"t3_b","title":"B","created_utc":20.0}},
                {"kind":"t3","data":{"id":"a","name":"t3_a","title":"A","created_utc":10.0}}]}}"#,
        )
        .expect("listing");
        cursor.advance(&page.posts);
        let value = encode_cursor(&cursor);
        assert_eq!(value["type"], "reddit");
        assert_eq!(value["newest"], json!({"name": "t3_b", "created_utc": 20.0}));
        assert_eq!(decode_cursor::<RedditCursor>(&value, "reddit"), Ok(cursor));
        assert!(decode_cursor::<RedditCursor>(&json!({"type": "jsonl", "offset": 3}), "reddit").is_err());
        assert!(decode_cursor::<RedditCursor>(&serde_json::Value::Null, "reddit").is_err());
    }
}
