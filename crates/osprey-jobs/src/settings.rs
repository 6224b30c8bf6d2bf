//! Job settings: what the operator writes under `[jobs]`.
//!
//! Every field has a default, unknown fields are rejected, durations are
//! humantime strings (`"30s"`, `"7days"`), and [`JobSettings::validate`]
//! checks every range before anything connects. The Redis URL may carry a
//! password: `Debug` masks it.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::JobError;

/// Where the queue and the job records live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// In this process: no Redis needed, nothing survives a restart, and only
    /// workers inside this process can take chunks.
    #[default]
    Memory,
    /// Redis Streams: durable (as durable as the Redis server is configured
    /// to be) and shared by every process pointing at the same prefix.
    Redis,
}

/// See the crate documentation for what each knob does to delivery.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobSettings {
    pub backend: Backend,
    /// `redis://[:password@]host:port[/db]`; required when `backend = "redis"`.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key (`<prefix>:stream`, `<prefix>:job:<id>`…).
    pub prefix: String,
    /// Posts per queue message (1..=10 000).
    pub chunk_size: usize,
    /// Visibility timeout: a delivered message not acknowledged within this
    /// is handed to another worker. Workers extend it for chunks they are
    /// still processing.
    #[serde(with = "humantime_serde")]
    pub ack_wait: Duration,
    /// A message delivered this many times without success is dead-lettered.
    pub max_deliveries: u32,
    /// Messages a worker fetches ahead of its free processing slots.
    pub prefetch: usize,
    /// Chunks one worker processes at once.
    pub concurrency: usize,
    /// Largest job, in posts.
    pub max_posts_per_job: usize,
    /// How long finished (completed, failed, cancelled) jobs stay queryable.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            backend: Backend::Memory,
            redis_url: None,
            prefix: "osprey:jobs".into(),
            chunk_size: 100,
            ack_wait: Duration::from_secs(30),
            max_deliveries: 5,
            prefetch: 4,
            concurrency: 2,
            max_posts_per_job: 1_000_000,
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl fmt::Debug for JobSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobSettings")
            .field("backend", &self.backend)
            .field("redis_url", &self.redacted_url())
            .field("prefix", &self.prefix)
            .field("chunk_size", &self.chunk_size)
            .field("ack_wait", &self.ack_wait)
            .field("max_deliveries", &self.max_deliveries)
            .field("prefetch", &self.prefetch)
            .field("concurrency", &self.concurrency)
            .field("max_posts_per_job", &self.max_posts_per_job)
            .field("retention", &self.retention)
            .finish()
    }
}

fn invalid(msg: impl Into<String>) -> JobError {
    JobError::Settings(msg.into())
}

impl JobSettings {
    /// Checks every range; the error names the offending field.
    pub fn validate(&self) -> Result<(), JobError> {
        if self.backend == Backend::Redis {
            let Some(url) = self.redis_url.as_deref().filter(|u| !u.trim().is_empty()) else {
                return Err(invalid("redis_url is required when backend = \"redis\""));
            };
            redis::Client::open(url).map_err(|e| invalid(format!("redis_url {}: {e}", redact_url(url))))?;
        }
        if self.prefix.is_empty() || self.prefix.len() > 128 || self.prefix.chars().any(|c| c.is_whitespace()) {
            return Err(invalid("prefix must be 1..=128 characters without whitespace"));
        }
        if !(1..=10_000).contains(&self.chunk_size) {
            return Err(invalid(format!("chunk_size must be 1..=10000, got {}", self.chunk_size)));
        }
        if self.ack_wait < Duration::from_millis(100) || self.ack_wait > Duration::from_secs(24 * 3600) {
            return Err(invalid(format!("ack_wait must be between 100ms and 24h, got {:?}", self.ack_wait)));
        }
        if !(1..=1000).contains(&self.max_deliveries) {
            return Err(invalid(format!("max_deliveries must be 1..=1000, got {}", self.max_deliveries)));
        }
        if !(1..=1000).contains(&self.prefetch) {
            return Err(invalid(format!("prefetch must be 1..=1000, got {}", self.prefetch)));
        }
        if !(1..=1024).contains(&self.concurrency) {
            return Err(invalid(format!("concurrency must be 1..=1024, got {}", self.concurrency)));
        }
        if !(1..=100_000_000).contains(&self.max_posts_per_job) {
            return Err(invalid(format!("max_posts_per_job must be 1..=100000000, got {}", self.max_posts_per_job)));
        }
        if self.retention < Duration::from_secs(1) || self.retention > Duration::from_secs(366 * 24 * 3600) {
            return Err(invalid(format!("retention must be between 1s and 366 days, got {:?}", self.retention)));
        }
        Ok(())
    }

    /// The Redis URL with any password replaced by `***`.
    pub fn redacted_url(&self) -> Option<String> {
        self.redis_url.as_deref().map(redact_url)
    }
}

/// Masks the password (and a username's secret part) of a URL.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map(|(u, _)| u).unwrap_or("");
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_round_trip() {
        let s = JobSettings::default();
        s.validate().expect("defaults are valid");
        let json = serde_json::to_string(&s).expect("serialises");
        assert!(json.contains("\"ack_wait\":\"30s\""), "{json}");
        let back: JobSettings = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, s);
    }

    #[test]
    fn humantime_and_unknown_fields() {
        let s: JobSettings = serde_json::from_str(
            r#"{"backend":"redis","redis_url":"redis://127.0.0.1/","ack_wait":"300ms","retention":"1day"}"#,
        )
        .expect("parses");
        assert_eq!(s.backend, Backend::Redis);
        assert_eq!(s.ack_wait, Duration::from_millis(300));
        assert_eq!(s.retention, Duration::from_secs(86_400));
        assert_eq!(s.chunk_size, 100);
        s.validate().expect("valid");
        let err = serde_json::from_str::<JobSettings>(r#"{"chunk_sise":5}"#).expect_err("typo rejected");
        assert!(err.to_string().contains("chunk_sise"), "{err}");
    }

    #[test]
    fn ranges_are_checked() {
        let bad: Vec<(&str, JobSettings)> = vec![
            ("chunk_size", JobSettings { chunk_size: 0, ..Default::default() }),
            ("chunk_size", JobSettings { chunk_size: 10_001, ..Default::default() }),
            ("ack_wait", JobSettings { ack_wait: Duration::from_millis(10), ..Default::default() }),
            ("max_deliveries", JobSettings { max_deliveries: 0, ..Default::default() }),
            ("prefetch", JobSettings { prefetch: 0, ..Default::default() }),
            ("concurrency", JobSettings { concurrency: 0, ..Default::default() }),
            ("max_posts_per_job", JobSettings { max_posts_per_job: 0, ..Default::default() }),
            ("retention", JobSettings { retention: Duration::ZERO, ..Default::default() }),
            ("prefix", JobSettings { prefix: "a b".into(), ..Default::default() }),
            ("redis_url", JobSettings { backend: Backend::Redis, ..Default::default() }),
            (
                "redis_url",
                JobSettings { backend: Backend::Redis, redis_url: Some("nope://x".into()), ..Default::default() },
            ),
        ];
        for (field, s) in bad {
            let err = s.validate().expect_err(field).to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
        JobSettings { chunk_size: 10_000, ..Default::default() }.validate().expect("upper bound inclusive");
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(redact_url("redis://:secret@h:6379/0"), "redis://:***@h:6379/0");
        assert_eq!(redact_url("redis://user:secret@h"), "redis://user:***@h");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        let s = JobSettings { redis_url: Some("redis://:pw@h/".into()), ..Default::default() };
        assert!(!format!("{s:?}").contains("pw@"));
    }
}
