//! `[[watch]]` definitions: sources, topics, analyses, alert targets, the
//! digest and trend rules.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use osprey_types::analysis::{EmotionOptions, SmoothingSpec, SummaryMethod, Task, TopicSpec};
use osprey_watch::SourceConfig;
use serde::{Deserialize, Serialize};

/// One watch: where posts come from and what happens to them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchDefinition {
    /// 1 to 64 of `A-Z a-z 0-9 - _ .`; the key of its saved state.
    pub name: String,
    /// Polled sources (reddit, listing_files, jsonl, rss).
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// Accept posts pushed to `POST /v1/ingest/{name}`.
    #[serde(default)]
    pub push: bool,
    /// A stored topic set (`PUT /v1/topics/{name}`) to keep posts by.
    #[serde(default)]
    pub topic_set: Option<String>,
    /// Or topics given here. With neither, every post is kept.
    #[serde(default)]
    pub topics: Vec<TopicSpec>,
    /// Keep posts scoring at least this against a topic (default: the set's).
    #[serde(default)]
    pub threshold: Option<f32>,
    /// Analyses of kept posts: any of sentiment, emotion, trajectory, summary.
    #[serde(default = "default_analyses")]
    pub analyses: Vec<Task>,
    #[serde(default)]
    pub emotion: EmotionOptions,
    #[serde(default)]
    pub summary_k: Option<usize>,
    /// `tfidf` (default: no model), `centroid`, `lexrank` or `textrank`.
    #[serde(default = "default_summary_method")]
    pub summary_method: SummaryMethod,
    #[serde(default)]
    pub smoothing: SmoothingSpec,
    /// Posts per pipeline batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Cosine similarity at or above which a post is a near-duplicate of a
    /// recent one; 0 turns the check off.
    #[serde(default = "default_near_duplicate")]
    pub near_duplicate: f32,
    /// How many recent posts a new one is compared with.
    #[serde(default = "default_near_duplicate_window")]
    pub near_duplicate_window: usize,
    /// When either post is longer than `head_chars`, its vector saw only its
    /// head: a near-duplicate is then confirmed only if the word overlap of
    /// the two whole texts (Jaccard over word triples) is at least this.
    /// 0 trusts the vectors alone.
    #[serde(default = "default_near_duplicate_overlap")]
    pub near_duplicate_overlap: f32,
    /// Characters of title and body embedded per post (for near-duplicates
    /// and topics).
    #[serde(default = "default_head_chars")]
    pub head_chars: usize,
    /// Stored with every post of this watch.
    #[serde(default)]
    pub persona_id: Option<String>,
    /// Where alerts go.
    #[serde(default)]
    pub alerts: Vec<AlertTarget>,
    /// A per-topic digest of kept posts, every `every`.
    #[serde(default)]
    pub digest: Option<DigestSettings>,
    /// Emotion-trend rules.
    #[serde(default)]
    pub rules: Vec<TrendRule>,
    /// Contents seen longer ago than this are forgotten (and would be
    /// processed again if a source returned them).
    #[serde(default = "default_seen_retention", with = "humantime_serde")]
    pub seen_retention: Duration,
}

fn default_analyses() -> Vec<Task> {
    vec![Task::Summary, Task::Sentiment, Task::Emotion, Task::Trajectory]
}
fn default_summary_method() -> SummaryMethod {
    SummaryMethod::Tfidf
}
fn default_batch_size() -> usize {
    256
}
fn default_near_duplicate() -> f32 {
    0.95
}
fn default_near_duplicate_window() -> usize {
    2048
}
fn default_near_duplicate_overlap() -> f32 {
    0.5
}
fn default_head_chars() -> usize {
    512
}
fn default_seen_retention() -> Duration {
    Duration::from_secs(30 * 86_400)
}

/// What an alert target receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The posts a batch kept.
    Posts,
    Digest,
    Trend,
}

fn all_kinds() -> Vec<AlertKind> {
    vec![AlertKind::Posts, AlertKind::Digest, AlertKind::Trend]
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertTarget {
    /// JSON `POST`s, retried with backoff, dead-lettered after `max_attempts`.
    Webhook {
        name: String,
        /// `http://` (this build has no TLS client).
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default = "all_kinds")]
        kinds: Vec<AlertKind>,
        #[serde(default = "default_webhook_timeout", with = "humantime_serde")]
        timeout: Duration,
        #[serde(default = "default_max_attempts")]
        max_attempts: u32,
        /// First retry delay; doubles (with jitter) up to `max_backoff`.
        #[serde(default = "default_backoff", with = "humantime_serde")]
        backoff: Duration,
        #[serde(default = "default_max_backoff", with = "humantime_serde")]
        max_backoff: Duration,
        /// Alerts waiting for delivery; past it they are dead-lettered at once.
        #[serde(default = "default_queue")]
        queue: usize,
    },
    /// A line in the server log per alert.
    Log {
        name: String,
        #[serde(default = "all_kinds")]
        kinds: Vec<AlertKind>,
    },
}

fn default_webhook_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_attempts() -> u32 {
    5
}
fn default_backoff() -> Duration {
    Duration::from_millis(500)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}
fn default_queue() -> usize {
    1024
}

impl AlertTarget {
    pub fn name(&self) -> &str {
        match self {
            AlertTarget::Webhook { name, .. } | AlertTarget::Log { name, .. } => name,
        }
    }

    pub fn kinds(&self) -> &[AlertKind] {
        match self {
            AlertTarget::Webhook { kinds, .. } | AlertTarget::Log { kinds, .. } => kinds,
        }
    }
}

/// A per-topic summary of the posts kept since the last one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSettings {
    #[serde(with = "humantime_serde")]
    pub every: Duration,
    /// Posts listed per topic, best topic score first.
    #[serde(default = "default_digest_top")]
    pub top: usize,
    /// Sentences in each topic's summary.
    #[serde(default = "default_digest_sentences")]
    pub sentences: usize,
}

fn default_digest_top() -> usize {
    5
}
fn default_digest_sentences() -> usize {
    3
}

/// Fires when the mean share of `emotion` among a topic's posts over the
/// last `window` exceeds `factor` times its mean over the `baseline`
/// before it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendRule {
    pub name: String,
    /// One of anger, disgust, fear, joy, neutral, sadness, surprise.
    pub emotion: String,
    /// A topic label; `None`: all kept posts.
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
    #[serde(default = "default_baseline", with = "humantime_serde")]
    pub baseline: Duration,
    #[serde(default = "default_factor")]
    pub factor: f64,
    /// Posts needed in the window and in the baseline before the rule can fire.
    #[serde(default = "default_min_posts")]
    pub min_posts: u64,
    /// After firing, quiet for this long (default: the window).
    #[serde(default, with = "humantime_serde")]
    pub cooldown: Option<Duration>,
}

fn default_window() -> Duration {
    Duration::from_secs(3_600)
}
fn default_baseline() -> Duration {
    Duration::from_secs(86_400)
}
fn default_factor() -> f64 {
    2.0
}
fn default_min_posts() -> u64 {
    10
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' or '.', not starting with '.'"
        ))
    }
}

impl WatchDefinition {
    pub fn validate(&self) -> Result<(), String> {
        check_name("watch name", &self.name)?;
        let w = &self.name;
        if self.sources.is_empty() && !self.push {
            return Err(format!("watch {w}: give it `sources` or `push = true`"));
        }
        osprey_watch::build_all(&self.sources).map_err(|e| format!("watch {w}: {e}"))?;
        if self.sources.iter().any(|s| s.name() == PUSH_SOURCE) {
            return Err(format!("watch {w}: the source name {PUSH_SOURCE:?} is reserved for pushed posts"));
        }
        if self.topic_set.is_some() && !self.topics.is_empty() {
            return Err(format!("watch {w}: give `topic_set` or `topics`, not both"));
        }
        if self.threshold.is_some_and(|t| !t.is_finite() || !(-1.0..=1.0).contains(&t)) {
            return Err(format!("watch {w}: `threshold` must be within [-1, 1]"));
        }
        if self.analyses.contains(&Task::Topics) {
            return Err(format!(
                "watch {w}: `analyses` may not hold `topics`: the watch matches topics itself (`topic_set` or `topics`)"
            ));
        }
        if !(1..=10_000).contains(&self.batch_size) {
            return Err(format!("watch {w}: `batch_size` must be 1 to 10000"));
        }
        if !(0.0..=1.0).contains(&self.near_duplicate) {
            return Err(format!("watch {w}: `near_duplicate` must be within [0, 1] (0: off)"));
        }
        if self.near_duplicate > 0.0 && !(1..=100_000).contains(&self.near_duplicate_window) {
            return Err(format!("watch {w}: `near_duplicate_window` must be 1 to 100000"));
        }
        if !(0.0..=1.0).contains(&self.near_duplicate_overlap) {
            return Err(format!("watch {w}: `near_duplicate_overlap` must be within [0, 1] (0: vectors alone)"));
        }
        if !(16..=100_000).contains(&self.head_chars) {
            return Err(format!("watch {w}: `head_chars` must be 16 to 100000"));
        }
        if self.seen_retention < Duration::from_secs(60) {
            return Err(format!("watch {w}: `seen_retention` must be at least 1m"));
        }
        let mut names = HashSet::new();
        for t in &self.alerts {
            check_name("alert target name", t.name())?;
            if !names.insert(t.name()) {
                return Err(format!("watch {w}: alert target {:?} appears twice", t.name()));
            }
            if let AlertTarget::Webhook { url, max_attempts, queue, timeout, .. } = t {
                if !url.starts_with("http://") {
                    return Err(format!(
                        "watch {w}: webhook {url:?} must be an http:// URL (this build has no TLS client; put a TLS proxy in front)"
                    ));
                }
                reqwest::Url::parse(url).map_err(|e| format!("watch {w}: webhook {url:?}: {e}"))?;
                if *max_attempts == 0 || *queue == 0 || timeout.is_zero() {
                    return Err(format!("watch {w}: webhook `max_attempts`, `queue` and `timeout` must be above 0"));
                }
            }
        }
        if let Some(d) = &self.digest {
            if d.every < Duration::from_secs(1) || d.top == 0 || d.sentences == 0 {
                return Err(format!("watch {w}: `digest.every` must be at least 1s, `top` and `sentences` at least 1"));
            }
        }
        let mut rules = HashSet::new();
        for r in &self.rules {
            check_name("rule name", &r.name)?;
            if !rules.insert(r.name.as_str()) {
                return Err(format!("watch {w}: rule {:?} appears twice", r.name));
            }
            if !osprey_store::EMOTIONS.contains(&r.emotion.as_str()) {
                return Err(format!(
                    "watch {w}: rule {}: `emotion` must be one of {}",
                    r.name,
                    osprey_store::EMOTIONS.join(", ")
                ));
            }
            if r.window.is_zero()
                || r.baseline <= r.window
                || r.factor.is_nan()
                || r.factor <= 0.0
                || r.factor.is_infinite()
            {
                return Err(format!(
                    "watch {w}: rule {}: `window` must be above 0, `baseline` longer than `window`, `factor` positive",
                    r.name
                ));
            }
            if !self.analyses.contains(&Task::Emotion) {
                return Err(format!("watch {w}: rule {} needs `emotion` among `analyses`", r.name));
            }
        }
        Ok(())
    }
}

/// The source name pushed posts are committed under.
pub const PUSH_SOURCE: &str = "push";

/// Checks every definition, and that names are unique.
pub fn validate_all(defs: &[WatchDefinition]) -> Result<(), String> {
    let mut names = HashSet::new();
    for d in defs {
        d.validate()?;
        if !names.insert(d.name.as_str()) {
            return Err(format!("watch {:?} is defined twice", d.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(extra: serde_json::Value) -> WatchDefinition {
        let mut v = serde_json::json!({"name": "w", "push": true});
        if let (Some(base), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(v).expect("watch definition")
    }

    #[test]
    fn near_duplicate_settings_are_checked() {
        let d = def(serde_json::json!({}));
        assert!(d.validate().is_ok());
        assert_eq!((d.near_duplicate, d.near_duplicate_overlap, d.head_chars), (0.95, 0.5, 512));
        assert!(def(serde_json::json!({"near_duplicate_overlap": 0.0})).validate().is_ok());
        for bad in [
            serde_json::json!({"near_duplicate_overlap": 1.5}),
            serde_json::json!({"near_duplicate_overlap": -0.1}),
            serde_json::json!({"near_duplicate": 1.2}),
            serde_json::json!({"head_chars": 8}),
        ] {
            let err = def(bad.clone()).validate().expect_err("refused");
            let key = bad.as_object().and_then(|m| m.keys().next().cloned()).unwrap_or_default();
            assert!(err.contains(&format!("`{key}`")), "{bad}: {err}");
        }
    }
}
