//! Alert settings: what the operator writes under `[alerts]`.
//!
//! Every field has a default, unknown fields are rejected, durations are
//! humantime strings. A webhook URL may carry a token in its query string or
//! credentials, so `Debug` and the serialised form show only its origin
//! (`scheme://host:port`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rule::{validate_rules, AlertRule};
use crate::AlertError;

/// The alert engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    /// When false, `observe` evaluates nothing and raises nothing.
    pub enabled: bool,
    /// How often the server samples signals and calls `observe`.
    #[serde(with = "humantime_serde")]
    pub eval_interval: Duration,
    /// Alert records kept (newest first), active ones included.
    pub history_capacity: usize,
    /// Replaces the default rules entirely when given.
    pub rules: Vec<AlertRule>,
    pub webhook: Option<WebhookSettings>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            eval_interval: Duration::from_secs(1),
            history_capacity: 500,
            rules: AlertRule::defaults(),
            webhook: None,
        }
    }
}

impl AlertSettings {
    /// Checks every range and every rule; the error names the offender.
    pub fn validate(&self) -> Result<(), AlertError> {
        if self.eval_interval < Duration::from_millis(100) || self.eval_interval > Duration::from_secs(3600) {
            return Err(invalid(format!(
                "alerts.eval_interval must be between 100ms and 1h, got {:?}",
                self.eval_interval
            )));
        }
        if self.history_capacity == 0 {
            return Err(invalid("alerts.history_capacity must be at least 1"));
        }
        validate_rules(&self.rules)?;
        if let Some(webhook) = &self.webhook {
            webhook.validate()?;
        }
        Ok(())
    }
}

/// Delivery of alert events to an HTTP endpoint (`POST`, JSON body).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// `http(s)://…`; may embed credentials or a token, never logged.
    #[serde(serialize_with = "serialize_origin")]
    pub url: String,
    /// Deadline of one attempt, connection included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts per event, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each retry, with jitter.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Cap on any delay, `Retry-After` included.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Events waiting for delivery; more are dropped (and counted).
    pub queue_capacity: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            timeout: Duration::from_secs(5),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            queue_capacity: 1000,
        }
    }
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &origin(&self.url))
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("queue_capacity", &self.queue_capacity)
            .finish()
    }
}

impl WebhookSettings {
    fn validate(&self) -> Result<(), AlertError> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| invalid(format!("alerts.webhook.url {} is not a URL: {e}", origin(&self.url))))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(format!("alerts.webhook.url must be an http(s) URL, got {}", origin(&self.url))));
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(300) {
            return Err(invalid(format!("alerts.webhook.timeout must be between 1ns and 5m, got {:?}", self.timeout)));
        }
        if self.max_attempts == 0 || self.max_attempts > 100 {
            return Err(invalid("alerts.webhook.max_attempts must be between 1 and 100"));
        }
        if self.initial_backoff > self.max_backoff || self.max_backoff > Duration::from_secs(3600) {
            return Err(invalid("alerts.webhook needs initial_backoff <= max_backoff <= 1h"));
        }
        if self.queue_capacity == 0 || self.queue_capacity > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(invalid("alerts.webhook.queue_capacity must be positive"));
        }
        Ok(())
    }
}

/// `scheme://host:port` of a URL, the only part of a webhook URL ever logged
/// or shown; `"<invalid url>"` when it does not parse.
pub fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", u.scheme()),
            (Some(host), None) => format!("{}://{host}", u.scheme()),
            (None, _) => format!("{}:", u.scheme()),
        },
        Err(_) => "<invalid url>".to_string(),
    }
}

fn serialize_origin<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    origin(url).serialize(s)
}

fn invalid(msg: impl Into<String>) -> AlertError {
    AlertError::InvalidSettings(msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_parse_from_partial_json() -> Result<(), Box<dyn std::error::Error>> {
        AlertSettings::default().validate()?;
        assert_eq!(AlertSettings::default().rules.len(), 9);
        let s: AlertSettings = serde_json::from_str(
            r#"{"eval_interval": "2s", "webhook": {"url": "http://127.0.0.1:9/hook", "initial_backoff": "10ms"}}"#,
        )?;
        s.validate()?;
        assert_eq!(s.eval_interval, Duration::from_secs(2));
        let webhook = s.webhook.expect("webhook given");
        assert_eq!(webhook.initial_backoff, Duration::from_millis(10));
        assert_eq!(webhook.max_attempts, 5);
        assert_eq!(webhook.queue_capacity, 1000);
        assert_eq!(s.rules.len(), 9, "rules default when not given");
        Ok(())
    }

    #[test]
    fn rejects_typos_and_out_of_range_values() {
        assert!(serde_json::from_str::<AlertSettings>(r#"{"history_capacty": 3}"#).is_err());
        assert!(serde_json::from_str::<AlertSettings>(r#"{"webhook": {"url": "http://x", "retries": 3}}"#).is_err());
        let with = |f: &dyn Fn(&mut AlertSettings)| {
            let mut s = AlertSettings {
                webhook: Some(WebhookSettings { url: "https://hooks.example.com/x".into(), ..Default::default() }),
                ..AlertSettings::default()
            };
            f(&mut s);
            s.validate()
        };
        assert!(with(&|_| {}).is_ok());
        assert!(with(&|s| s.history_capacity = 0).is_err());
        assert!(with(&|s| s.eval_interval = Duration::ZERO).is_err());
        let webhook = |f: &dyn Fn(&mut WebhookSettings)| {
            with(&|s| {
                if let Some(w) = s.webhook.as_mut() {
                    f(w)
                }
            })
        };
        assert!(webhook(&|w| w.url = "ftp://x/y".into()).is_err());
        assert!(webhook(&|w| w.url = "not a url".into()).is_err());
        assert!(webhook(&|w| w.max_attempts = 0).is_err());
        assert!(webhook(&|w| w.queue_capacity = 0).is_err());
        assert!(webhook(&|w| w.timeout = Duration::ZERO).is_err());
        assert!(webhook(&|w| w.initial_backoff = Duration::from_secs(60)).is_err());
        let mut dup = AlertSettings::default();
        dup.rules.push(dup.rules[0].clone());
        assert!(matches!(dup.validate(), Err(AlertError::DuplicateRule(_))));
    }

    #[test]
    fn webhook_secrets_never_reach_logs() {
        let w = WebhookSettings {
            url: "https://user:s3cret@hooks.example.com/a/b?token=s3cret".into(),
            ..Default::default()
        };
        assert_eq!(origin(&w.url), "https://hooks.example.com:443");
        assert!(!format!("{w:?}").contains("s3cret"));
        let dumped = serde_json::to_string(&w).unwrap_or_default();
        assert!(dumped.contains(r#""url":"https://hooks.example.com:443""#), "{dumped}");
        assert_eq!(origin("http://10.0.0.1:8080/x?k=v"), "http://10.0.0.1:8080");
        assert_eq!(origin("::"), "<invalid url>");
    }
}
