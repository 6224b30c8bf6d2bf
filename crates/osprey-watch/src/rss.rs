//! RSS and Atom feeds, over HTTP or from a file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::bodies::{parse_off_runtime, read_capped};
use crate::config::{default_user_agent, http_url, secs, user_agent};
use crate::error::{ConfigError, SourceError};
use crate::feed::{parse_feed, Feed, FeedItem};
use crate::http::{Fetched, HttpClient, HttpSettings, Throttle, Validators};
use crate::recent::RecentIds;
use crate::reddit::{
    default_backoff_base_secs, default_backoff_cap_secs, default_max_body_bytes, default_timeout_secs,
};
use crate::{decode_cursor, encode_cursor, Batch, PollFuture, Source};

/// Settings of a `type = "rss"` source (RSS 2.0, RSS 1.0 or Atom). Give `url` or `path`.
///
/// ```toml
/// [[watch.sources]]
/// type = "rss"
/// url = "http://blog.example.com/feed.xml"   # or: path = "feeds/blog.xml"
/// interval_secs = 300
/// tail = false             # files only: true re-reads the file every interval
/// user_agent = "osprey-watch/0.1.0"
/// timeout_secs = 10
/// max_body_bytes = 4194304 # also the limit for a file
/// backoff_base_secs = 5
/// backoff_cap_secs = 900
/// max_seen = 1000          # item ids remembered across windows (the last window's always)
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RssConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub tail: bool,
    #[serde(default = "default_interval_secs")]
    pub interval_secs: f64,
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: f64,
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    #[serde(default = "default_backoff_base_secs")]
    pub backoff_base_secs: f64,
    #[serde(default = "default_backoff_cap_secs")]
    pub backoff_cap_secs: f64,
    #[serde(default = "default_max_seen")]
    pub max_seen: usize,
}

fn default_interval_secs() -> f64 {
    300.0
}
fn default_max_seen() -> usize {
    1000
}

impl RssConfig {
    /// `name`, or `rss:<url>` / `rss:<path>`.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| match (&self.url, &self.path) {
            (Some(url), _) => format!("rss:{url}"),
            (None, Some(path)) => format!("rss:{}", path.display()),
            (None, None) => "rss".to_owned(),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "rss")]
struct RssCursor {
    /// Ids of the last window first, then older ones, up to `max_seen` or the window's length if longer.
    #[serde(default)]
    seen: RecentIds,
    /// The oldest date in the last window: an unseen item older than it fell
    /// out of the window and came back, or is ancient; either way not new.
    #[serde(default)]
    window_oldest: Option<DateTime<Utc>>,
    #[serde(default)]
    http: Validators,
}

impl RssCursor {
    /// The items of `window` not returned before, oldest first; remembers the window.
    fn take_new(&mut self, window: Vec<FeedItem>, max_seen: usize) -> Vec<FeedItem> {
        let mut fresh: Vec<FeedItem> = Vec::new();
        for item in &window {
            let old = self.seen.contains(&item.id)
                || matches!((item.created, self.window_oldest), (Some(at), Some(oldest)) if at < oldest);
            if !old && !fresh.iter().any(|f| f.id == item.id) {
                fresh.push(item.clone());
            }
        }
        // Feeds list newest first: reverse, then order by date where there is one.
        fresh.reverse();
        fresh.sort_by_key(|item| item.created);
        // Remember the whole window, however long: an id forgotten while its
        // item is still listed would be returned again by the next poll.
        self.seen.remember(window.iter().map(|item| item.id.clone()), max_seen.max(window.len()));
        if let Some(oldest) = window.iter().filter_map(|item| item.created).min() {
            self.window_oldest = Some(oldest);
        }
        fresh
    }
}

#[derive(Debug)]
enum Origin {
    Http { url: Url, client: HttpClient, throttle: Throttle },
    File { path: PathBuf, tail: bool },
}

/// The feed source. See the [crate docs](crate) for its behaviour.
#[derive(Debug)]
pub struct RssSource {
    name: String,
    origin: Origin,
    interval: Duration,
    max_bytes: u64,
    max_seen: usize,
    cursor: RssCursor,
}

impl RssSource {
    pub fn new(config: &RssConfig) -> Result<Self, ConfigError> {
        let name = config.name();
        let interval = secs(&name, "interval_secs", config.interval_secs, true)?;
        let origin = match (&config.url, &config.path) {
            (Some(_), None) if config.tail => {
                return Err(ConfigError::new(&name, "tail applies to a feed file (path); a url is polled anyway"));
            }
            (Some(url), None) => {
                let settings = HttpSettings {
                    user_agent: user_agent(&name, &config.user_agent)?,
                    timeout: secs(&name, "timeout_secs", config.timeout_secs, true)?,
                    max_body_bytes: config.max_body_bytes,
                };
                let backoff = Backoff::new(
                    secs(&name, "backoff_base_secs", config.backoff_base_secs, true)?,
                    secs(&name, "backoff_cap_secs", config.backoff_cap_secs, true)?,
                );
                Origin::Http {
                    url: http_url(&name, "url", url)?,
                    client: HttpClient::new(&settings).map_err(|m| ConfigError::new(&name, m))?,
                    throttle: Throttle::new(interval, backoff),
                }
            }
            (None, Some(path)) if !path.as_os_str().is_empty() => {
                Origin::File { path: path.clone(), tail: config.tail }
            }
            _ => return Err(ConfigError::new(&name, "give exactly one of url and path")),
        };
        if config.max_seen == 0 || config.max_body_bytes == 0 {
            return Err(ConfigError::new(&name, "max_seen and max_body_bytes must be at least 1"));
        }
        Ok(RssSource {
            origin,
            interval,
            max_bytes: config.max_body_bytes,
            max_seen: config.max_seen,
            cursor: RssCursor::default(),
            name,
        })
    }

    async fn poll_feed(&mut self) -> Batch {
        let cursor = &mut self.cursor;
        match &mut self.origin {
            Origin::Http { url, client, throttle } => {
                if let Some(wait) = throttle.blocked_for() {
                    return batch(cursor, Vec::new(), Some(wait), 0, None);
                }
                let exchange = client.get(url, &cursor.http).await;
                let fetched = match exchange.result {
                    Ok(Fetched::NotModified) => Ok(None),
                    Ok(Fetched::Fresh { body, validators }) => {
                        read_feed(url.as_str(), body).await.map(|f| Some((f, validators)))
                    }
                    Err(error) => Err(error),
                };
                match fetched {
                    Ok(None) => {
                        let next = throttle.succeeded(&exchange.limits);
                        batch(cursor, Vec::new(), Some(next), 0, None)
                    }
                    Ok(Some((feed, validators))) => {
                        let next = throttle.succeeded(&exchange.limits);
                        cursor.http = validators;
                        let fresh = cursor.take_new(feed.items, self.max_seen);
                        batch(cursor, fresh, Some(next), feed.skipped, None)
                    }
                    Err(error) => {
                        let next = throttle.failed(&exchange.limits);
                        batch(cursor, Vec::new(), Some(next), 0, Some(error))
                    }
                }
            }
            Origin::File { path, tail } => match read_file(path, self.max_bytes).await {
                Ok(feed) => {
                    let fresh = cursor.take_new(feed.items, self.max_seen);
                    batch(cursor, fresh, tail.then_some(self.interval), feed.skipped, None)
                }
                Err(error) => batch(cursor, Vec::new(), Some(self.interval), 0, Some(error)),
            },
        }
    }
}

fn batch(
    cursor: &RssCursor,
    items: Vec<FeedItem>,
    next_poll: Option<Duration>,
    skipped: usize,
    error: Option<SourceError>,
) -> Batch {
    Batch {
        posts: items.into_iter().map(FeedItem::into_source_post).collect(),
        cursor: encode_cursor(cursor),
        next_poll,
        skipped,
        error,
    }
}

async fn read_file(path: &Path, max_bytes: u64) -> Result<Feed, SourceError> {
    let origin = path.display().to_string();
    match read_capped(path, max_bytes).await {
        Ok(Some(body)) => read_feed(&origin, body).await,
        Ok(None) => Err(SourceError::TooLarge { origin, limit: max_bytes }),
        Err(e) => Err(SourceError::io(path, &e)),
    }
}

async fn read_feed(origin: &str, body: Vec<u8>) -> Result<Feed, SourceError> {
    parse_off_runtime(body, |body| parse_feed(&String::from_utf8_lossy(&body)))
        .await
        .map_err(|message| SourceError::Malformed { origin: origin.to_owned(), format: "feed", message })
}

impl Source for RssSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn restore(&mut self, cursor: &serde_json::Value) -> Result<(), SourceError> {
        self.cursor = decode_cursor(cursor, "rss")?;
        Ok(())
    }

    fn poll(&mut self) -> PollFuture<'_> {
        Box::pin(self.poll_feed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::post::from_epoch_secs;

    fn item(id: &str, at: Option<f64>) -> FeedItem {
        FeedItem {
            id: id.into(),
            title: id.into(),
            body: String::new(),
            author: None,
            created: at.and_then(from_epoch_secs),
            link: None,
        }
    }

    fn ids(items: &[FeedItem]) -> Vec<&str> {
        items.iter().map(|i| i.id.as_str()).collect()
    }

    #[test]
    fn a_moving_window_yields_each_item_once() {
        let mut cursor = RssCursor::default();
        let first = cursor.take_new(vec![item("c", Some(30.0)), item("b", Some(20.0)), item("a", Some(10.0))], 100);
        assert_eq!(ids(&first), ["a", "b", "c"]);
        // d is new; a fell out of the window.
        let second = cursor.take_new(vec![item("d", Some(40.0)), item("c", Some(30.0)), item("b", Some(20.0))], 100);
        assert_eq!(ids(&second), ["d"]);
        // a comes back (and is old); e is new but undated; z is unseen but older than the window.
        let third = cursor
            .take_new(vec![item("e", None), item("d", Some(40.0)), item("a", Some(10.0)), item("z", Some(5.0))], 100);
        assert_eq!(ids(&third), ["e"]);
        assert_eq!(cursor.window_oldest, from_epoch_secs(5.0));
    }

    /// Only the first `max_seen` ids of a window were remembered, so the rest
    /// (here `a`, dated exactly at the window's oldest) came back every poll.
    #[test]
    fn a_window_longer_than_max_seen_is_remembered_whole() {
        let window = || vec![item("c", Some(30.0)), item("b", Some(20.0)), item("a", Some(10.0)), item("u", None)];
        let mut cursor = RssCursor::default();
        assert_eq!(ids(&cursor.take_new(window(), 2)), ["u", "a", "b", "c"]);
        assert_eq!(ids(&cursor.take_new(window(), 2)), Vec::<&str>::new());
        // The next window is remembered whole and pushes the older ids out beyond max_seen.
        assert_eq!(ids(&cursor.take_new(vec![item("e", Some(50.0)), item("d", Some(40.0))], 2)), ["d", "e"]);
        assert!(cursor.seen.contains("d") && !cursor.seen.contains("c"));
    }

    #[test]
    fn needs_exactly_one_origin() {
        let both = RssConfig {
            url: Some("http://127.0.0.1:9/feed".into()),
            path: Some("feed.xml".into()),
            ..serde_json::from_value(serde_json::json!({"path": "x"})).expect("config")
        };
        assert!(RssSource::new(&both).is_err());
        let neither: RssConfig = serde_json::from_value(serde_json::json!({})).expect("config");
        assert!(RssSource::new(&neither).is_err());
        let tailed_url: RssConfig =
            serde_json::from_value(serde_json::json!({"url": "http://127.0.0.1:9/feed", "tail": true}))
                .expect("config");
        assert!(RssSource::new(&tailed_url).is_err());
    }
}
