//! Source settings: one table per source in the watch section, tagged by `type`.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::jsonl::{JsonlConfig, JsonlSource};
use crate::listing_files::{ListingFilesConfig, ListingFilesSource};
use crate::reddit::{RedditConfig, RedditSource};
use crate::rss::{RssConfig, RssSource};
use crate::Source;

/// The settings of one source.
///
/// ```toml
/// [[watch.sources]]
/// type = "reddit"
/// subreddits = ["rust"]
/// user_agent = "osprey-watch/0.1 (by u/someone)"
/// base_url = "http://127.0.0.1:8080"   # an http:// proxy or mirror of Reddit: no TLS in this build
///
/// [[watch.sources]]
/// type = "jsonl"
/// path = "/var/lib/osprey/inbox.jsonl"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    Reddit(RedditConfig),
    ListingFiles(ListingFilesConfig),
    Jsonl(JsonlConfig),
    Rss(RssConfig),
}

impl SourceConfig {
    /// The configured `name`, or one derived from what the source reads
    /// (`reddit:r/rust+programming`, `jsonl:/path`, `rss:http://…`).
    pub fn name(&self) -> String {
        match self {
            SourceConfig::Reddit(c) => c.name(),
            SourceConfig::ListingFiles(c) => c.name(),
            SourceConfig::Jsonl(c) => c.name(),
            SourceConfig::Rss(c) => c.name(),
        }
    }

    /// Check the settings and make the source.
    pub fn build(&self) -> Result<Box<dyn Source>, ConfigError> {
        Ok(match self {
            SourceConfig::Reddit(c) => Box::new(RedditSource::new(c)?),
            SourceConfig::ListingFiles(c) => Box::new(ListingFilesSource::new(c)?),
            SourceConfig::Jsonl(c) => Box::new(JsonlSource::new(c)?),
            SourceConfig::Rss(c) => Box::new(RssSource::new(c)?),
        })
    }
}

/// Build every source, refusing two with the same name (their cursors would collide).
pub fn build_all(configs: &[SourceConfig]) -> Result<Vec<Box<dyn Source>>, ConfigError> {
    let mut names = BTreeSet::new();
    configs
        .iter()
        .map(|config| {
            let name = config.name();
            if !names.insert(name.clone()) {
                return Err(ConfigError::new(&name, "another source has the same name; give one a distinct `name`"));
            }
            config.build()
        })
        .collect()
}

/// The longest duration a setting may hold (a year): bounds arithmetic and catches unit slips.
const MAX_SETTING: Duration = Duration::from_secs(365 * 24 * 3600);

/// A `*_secs` setting as a duration: finite, not negative, at most a year, and above zero when `positive`.
pub(crate) fn secs(source: &str, field: &str, value: f64, positive: bool) -> Result<Duration, ConfigError> {
    let duration = Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| *d <= MAX_SETTING && (!positive || !d.is_zero()))
        .ok_or_else(|| {
            let range = if positive { "above 0" } else { "0 or more" };
            ConfigError::new(source, format!("{field} = {value} must be {range} seconds and at most a year"))
        })?;
    Ok(duration)
}

/// An `http://` URL. This build of osprey has no TLS client, so `https://` is
/// refused here rather than failing on every poll.
pub(crate) fn http_url(source: &str, field: &str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| ConfigError::new(source, format!("{field} = {value:?}: {e}")))?;
    match url.scheme() {
        "http" => Ok(url),
        "https" => Err(ConfigError::new(
            source,
            format!("{field} = {value:?}: https is not supported by this build (no TLS client); use an http:// URL, such as a local caching proxy"),
        )),
        other => Err(ConfigError::new(source, format!("{field} = {value:?}: unsupported scheme {other:?}"))),
    }
}

pub(crate) fn default_user_agent() -> String {
    concat!("osprey-watch/", env!("CARGO_PKG_VERSION")).to_owned()
}

pub(crate) fn user_agent(source: &str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    if value.is_empty() || reqwest::header::HeaderValue::from_str(value).is_err() {
        return Err(ConfigError::new(source, "user_agent must be a non-empty, printable ASCII header value"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_each_type_and_refuses_unknown_keys() {
        let configs: Vec<SourceConfig> = serde_json::from_value(json!([
            {"type": "reddit", "subreddits": ["rust"], "user_agent": "test/1", "base_url": "http://127.0.0.1:9"},
            {"type": "listing_files", "path": "/tmp/pages"},
            {"type": "jsonl", "path": "/tmp/in.jsonl", "tail": false},
            {"type": "rss", "url": "http://127.0.0.1:9/feed.xml", "name": "blog"}
        ]))
        .expect("configs");
        let names: Vec<String> = configs.iter().map(SourceConfig::name).collect();
        assert_eq!(names, ["reddit:r/rust", "listing_files:/tmp/pages", "jsonl:/tmp/in.jsonl", "blog"]);
        let built = build_all(&configs).expect("sources");
        assert_eq!(built.iter().map(|s| s.name()).collect::<Vec<_>>(), names);

        let unknown = serde_json::from_value::<SourceConfig>(json!({"type": "jsonl", "path": "x", "tial": true}));
        assert!(unknown.expect_err("unknown key").to_string().contains("tial"));
        let untyped = serde_json::from_value::<SourceConfig>(json!({"type": "mastodon", "path": "x"}));
        assert!(untyped.is_err());
        let missing_agent = serde_json::from_value::<SourceConfig>(json!({"type": "reddit", "subreddits": ["rust"]}));
        assert!(missing_agent.expect_err("user_agent").to_string().contains("user_agent"));
    }

    #[test]
    fn refuses_duplicate_names_and_bad_values() {
        let twice: Vec<SourceConfig> = serde_json::from_value(json!([
            {"type": "jsonl", "path": "/tmp/a.jsonl", "name": "inbox"},
            {"type": "jsonl", "path": "/tmp/b.jsonl", "name": "inbox"}
        ]))
        .expect("configs");
        let error = build_all(&twice).err().expect("duplicate");
        assert_eq!(error.source_name, "inbox");

        assert!(secs("s", "interval_secs", 0.0, true).is_err());
        assert!(secs("s", "interval_secs", -1.0, false).is_err());
        assert!(secs("s", "interval_secs", f64::NAN, false).is_err());
        assert!(secs("s", "interval_secs", 1e12, false).is_err());
        assert_eq!(secs("s", "interval_secs", 0.25, true), Ok(Duration::from_millis(250)));
        assert!(http_url("s", "url", "https://www.reddit.com").expect_err("tls").message.contains("TLS"));
        assert!(http_url("s", "url", "ftp://example.com").is_err());
        assert!(http_url("s", "url", "not a url").is_err());
        assert!(user_agent("s", "  ").is_err());
        assert!(user_agent("s", "bad\nagent").is_err());
    }
}
