//! Cache settings: what the operator writes under `[cache]`.
//!
//! Every field has a default, unknown fields are rejected (a typo must not
//! silently leave a default in force), durations are humantime strings
//! (`"5m"`, `"100ms"`), and [`CacheSettings::validate`] checks ranges before
//! anything is built. A Redis URL may carry a password, so these types never
//! print it: `Debug` and [`L2Settings::redacted_url`] mask it.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{CacheError, Kind};

/// Longest TTL accepted; moka refuses durations past 1000 years and nothing
/// cached here should outlive a deployment by that much anyway.
const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Redis refuses string values over 512 MiB.
const REDIS_MAX_VALUE_BYTES: usize = 512 * 1024 * 1024;

/// Both tiers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    pub l1: L1Settings,
    pub l2: L2Settings,
}

impl CacheSettings {
    /// Checks every range; the error names the offending field.
    pub fn validate(&self) -> Result<(), CacheError> {
        self.l1.validate()?;
        self.l2.validate()
    }
}

/// Time-to-live per [`Kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KindTtls {
    #[serde(with = "humantime_serde")]
    pub prediction: Duration,
    #[serde(with = "humantime_serde")]
    pub metadata: Duration,
    #[serde(with = "humantime_serde")]
    pub response: Duration,
}

impl Default for KindTtls {
    /// Predictions are stable for a model revision, metadata changes rarely,
    /// whole responses embed request details and go stale first.
    fn default() -> Self {
        Self {
            prediction: Duration::from_secs(5 * 60),
            metadata: Duration::from_secs(15 * 60),
            response: Duration::from_secs(2 * 60),
        }
    }
}

impl KindTtls {
    pub fn get(&self, kind: Kind) -> Duration {
        match kind {
            Kind::Prediction => self.prediction,
            Kind::Metadata => self.metadata,
            Kind::Response => self.response,
        }
    }

    fn validate(&self, field: &str) -> Result<(), CacheError> {
        for kind in Kind::ALL {
            let ttl = self.get(kind);
            if ttl < Duration::from_millis(1) || ttl > MAX_TTL {
                return Err(invalid(format!("{field}.{kind} must be between 1ms and 365 days, got {ttl:?}")));
            }
        }
        Ok(())
    }
}

/// The in-process tier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct L1Settings {
    pub enabled: bool,
    /// Upper bound on the summed `approx_bytes` of held values.
    pub max_bytes: u64,
    /// Upper bound on the number of held values.
    pub max_entries: u64,
    pub ttl: KindTtls,
    /// Optional time-to-idle: entries not read for this long go early.
    #[serde(with = "humantime_serde")]
    pub tti: Option<Duration>,
}

impl Default for L1Settings {
    fn default() -> Self {
        Self { enabled: true, max_bytes: 256 * 1024 * 1024, max_entries: 100_000, ttl: KindTtls::default(), tti: None }
    }
}

impl L1Settings {
    pub fn validate(&self) -> Result<(), CacheError> {
        if !self.enabled {
            return Ok(());
        }
        if self.max_bytes == 0 || self.max_entries == 0 {
            return Err(invalid("l1.max_bytes and l1.max_entries must be positive (or set l1.enabled = false)"));
        }
        if self.max_bytes / self.max_entries > u64::from(u32::MAX) {
            // The weigher's per-entry floor is a u32; past it the entry bound would not hold.
            return Err(invalid("l1.max_bytes / l1.max_entries must be under 4 GiB"));
        }
        self.ttl.validate("l1.ttl")?;
        if let Some(tti) = self.tti {
            if tti < Duration::from_millis(1) || tti > MAX_TTL {
                return Err(invalid(format!("l1.tti must be between 1ms and 365 days, got {tti:?}")));
            }
        }
        Ok(())
    }
}

/// The shared Redis tier.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct L2Settings {
    /// `redis://[user:password@]host:port[/db]`; `None` runs L1 only.
    /// Serialised redacted: settings are dumped for operators, never the secret.
    #[serde(serialize_with = "serialize_redacted")]
    pub url: Option<String>,
    /// First segment of every Redis key, so several deployments can share one
    /// Redis and `clear` never touches keys it does not own.
    pub prefix: String,
    /// Encoded values longer than this are zstd-compressed.
    pub compress_min_bytes: usize,
    pub zstd_level: i32,
    pub ttl: KindTtls,
    /// Per-command deadline; a slower answer counts as a failure.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Deadline for one connection attempt.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker skips L2 before one probe is let through.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    /// Values whose JSON encoding is longer than this are not written.
    pub max_value_bytes: usize,
    /// Background writes allowed in flight; more are dropped, not queued.
    pub max_pending_writes: usize,
}

impl Default for L2Settings {
    fn default() -> Self {
        Self {
            url: None,
            prefix: "osprey".to_string(),
            compress_min_bytes: 1024,
            zstd_level: 3,
            ttl: KindTtls::default(),
            command_timeout: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(1),
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(5),
            max_value_bytes: 4 * 1024 * 1024,
            max_pending_writes: 1024,
        }
    }
}

impl fmt::Debug for L2Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("L2Settings")
            .field("url", &self.redacted_url())
            .field("prefix", &self.prefix)
            .field("compress_min_bytes", &self.compress_min_bytes)
            .field("zstd_level", &self.zstd_level)
            .field("ttl", &self.ttl)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("breaker_failures", &self.breaker_failures)
            .field("breaker_cooldown", &self.breaker_cooldown)
            .field("max_value_bytes", &self.max_value_bytes)
            .field("max_pending_writes", &self.max_pending_writes)
            .finish()
    }
}

impl L2Settings {
    /// The URL with any password replaced by `***`, safe to log.
    pub fn redacted_url(&self) -> Option<String> {
        self.url.as_deref().map(redact_url)
    }

    fn validate(&self) -> Result<(), CacheError> {
        let Some(url) = &self.url else { return Ok(()) };
        redis::Client::open(url.as_str())
            .map_err(|e| invalid(format!("l2.url {} is not a Redis URL: {e}", redact_url(url))))?;
        if self.prefix.is_empty() || self.prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("l2.prefix must be non-empty, without whitespace or control characters"));
        }
        if !zstd::compression_level_range().contains(&self.zstd_level) {
            return Err(invalid(format!(
                "l2.zstd_level must be in {:?}, got {}",
                zstd::compression_level_range(),
                self.zstd_level
            )));
        }
        self.ttl.validate("l2.ttl")?;
        for (name, d) in [
            ("command_timeout", self.command_timeout),
            ("connect_timeout", self.connect_timeout),
            ("breaker_cooldown", self.breaker_cooldown),
        ] {
            if d.is_zero() || d > Duration::from_secs(3600) {
                return Err(invalid(format!("l2.{name} must be between 1ns and 1h, got {d:?}")));
            }
        }
        if self.breaker_failures == 0 {
            return Err(invalid("l2.breaker_failures must be at least 1"));
        }
        if self.max_value_bytes == 0 || self.max_value_bytes > REDIS_MAX_VALUE_BYTES {
            return Err(invalid(format!("l2.max_value_bytes must be between 1 and {REDIS_MAX_VALUE_BYTES}")));
        }
        if self.max_pending_writes == 0 || self.max_pending_writes > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(invalid("l2.max_pending_writes must be positive"));
        }
        Ok(())
    }
}

fn serialize_redacted<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    url.as_deref().map(redact_url).serialize(s)
}

fn invalid(msg: impl Into<String>) -> CacheError {
    CacheError::InvalidSettings(msg.into())
}

pub use osprey_types::redact::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(redact_url("redis://:s3cret@host:6379/0"), "redis://:***@host:6379/0");
        assert_eq!(redact_url("rediss://user:s3cret@host"), "rediss://user:***@host");
        assert_eq!(redact_url("redis://s3cret@host"), "redis://***@host");
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact_url("redis+unix:///tmp/r.sock?db=1&pass=s3cret"), "redis+unix:///tmp/r.sock?db=1&pass=***");
        let settings = L2Settings { url: Some("redis://u:s3cret@h:1".into()), ..L2Settings::default() };
        assert!(!format!("{settings:?}").contains("s3cret"));
        assert!(format!("{settings:?}").contains("u:***@h:1"));
        let dumped = serde_json::to_string(&settings).unwrap_or_default();
        assert!(dumped.contains(r#""url":"redis://u:***@h:1""#), "{dumped}");
    }

    #[test]
    fn defaults_validate_and_parse_from_partial_json() -> Result<(), Box<dyn std::error::Error>> {
        CacheSettings::default().validate()?;
        let s: CacheSettings = serde_json::from_str(
            r#"{"l1": {"ttl": {"prediction": "1m"}, "tti": "30s"},
                "l2": {"url": "redis://127.0.0.1:6379", "command_timeout": "50ms"}}"#,
        )?;
        s.validate()?;
        assert_eq!(s.l1.ttl.prediction, Duration::from_secs(60));
        assert_eq!(s.l1.ttl.metadata, Duration::from_secs(15 * 60), "unspecified kinds keep defaults");
        assert_eq!(s.l1.tti, Some(Duration::from_secs(30)));
        assert_eq!(s.l2.command_timeout, Duration::from_millis(50));
        assert_eq!(s.l2.ttl.response, Duration::from_secs(120));
        assert_eq!(s.l1.max_bytes, 256 * 1024 * 1024);
        Ok(())
    }

    #[test]
    fn rejects_typos_and_out_of_range_values() {
        assert!(serde_json::from_str::<CacheSettings>(r#"{"l2": {"urll": "redis://x"}}"#).is_err());
        let with = |f: &dyn Fn(&mut CacheSettings)| {
            let mut s = CacheSettings::default();
            s.l2.url = Some("redis://127.0.0.1:6379".into());
            f(&mut s);
            s.validate()
        };
        assert!(with(&|_| {}).is_ok());
        assert!(with(&|s| s.l2.url = Some("http://nope".into())).is_err());
        assert!(with(&|s| s.l2.prefix = "has space".into()).is_err());
        assert!(with(&|s| s.l2.zstd_level = 99).is_err());
        assert!(with(&|s| s.l2.breaker_failures = 0).is_err());
        assert!(with(&|s| s.l2.command_timeout = Duration::ZERO).is_err());
        assert!(with(&|s| s.l2.ttl.metadata = Duration::ZERO).is_err());
        assert!(with(&|s| s.l2.max_pending_writes = 0).is_err());
        assert!(with(&|s| s.l1.max_entries = 0).is_err());
        assert!(with(&|s| s.l1.max_entries = 1).is_ok());
        assert!(with(&|s| {
            s.l1.max_bytes = 1 << 40;
            s.l1.max_entries = 1;
        })
        .is_err());
        assert!(with(&|s| s.l1.tti = Some(Duration::ZERO)).is_err());
        assert!(with(&|s| {
            s.l1.enabled = false;
            s.l1.max_entries = 0;
        })
        .is_ok());
    }
}
