//! The HTTP machinery the Reddit and feed sources share: bounded conditional
//! GETs, rate-limit headers, and the throttle that turns outcomes into waits.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::error::SourceError;

/// The longest wait a server can impose through `Retry-After` or `x-ratelimit-reset`.
const MAX_SERVER_WAIT: Duration = Duration::from_secs(24 * 3600);

/// How one source talks HTTP.
#[derive(Debug, Clone)]
pub(crate) struct HttpSettings {
    pub(crate) user_agent: String,
    pub(crate) timeout: Duration,
    pub(crate) max_body_bytes: u64,
}

/// The validators of the last full response, sent back as `If-None-Match` / `If-Modified-Since`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Validators {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_modified: Option<String>,
}

impl Validators {
    fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Validators { etag: text(ETAG), last_modified: text(LAST_MODIFIED) }
    }
}

/// What the server said about its limits, from any response.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct RateLimit {
    /// `x-ratelimit-remaining`: requests left in the window.
    pub(crate) remaining: Option<f64>,
    /// `x-ratelimit-reset`: time until the window resets.
    pub(crate) reset: Option<Duration>,
    /// `Retry-After` (seconds or an HTTP date), as sent with 429 and 503.
    pub(crate) retry_after: Option<Duration>,
}

impl RateLimit {
    fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let number = |name: &str| text(name).and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite());
        RateLimit {
            remaining: number("x-ratelimit-remaining"),
            reset: number("x-ratelimit-reset").map(clamped_secs),
            retry_after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, Utc::now())),
        }
    }

    /// The wait the quota imposes: the time to the reset once fewer than one request remains.
    pub(crate) fn exhausted_wait(&self) -> Option<Duration> {
        match self.remaining {
            Some(remaining) if remaining < 1.0 => Some(self.reset.unwrap_or(Duration::ZERO)),
            _ => None,
        }
    }

    /// Every wait the server asked for, the longest of them.
    fn server_wait(&self) -> Option<Duration> {
        self.retry_after.max(self.exhausted_wait())
    }
}

fn clamped_secs(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(MAX_SERVER_WAIT).min(MAX_SERVER_WAIT)
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3), relative to `now`.
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return secs.is_finite().then(|| clamped_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    let secs = (at - now).num_milliseconds() as f64 / 1000.0;
    Some(clamped_secs(secs))
}

/// A fresh response body and its validators, or "not modified".
#[derive(Debug)]
pub(crate) enum Fetched {
    NotModified,
    Fresh { body: Vec<u8>, validators: Validators },
}

/// The outcome of one GET together with the limits its headers announced.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub(crate) result: Result<Fetched, SourceError>,
    pub(crate) limits: RateLimit,
}

/// A `reqwest` client with the source's User-Agent, per-request timeout and body limit.
#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    client: reqwest::Client,
    timeout: Duration,
    max_body_bytes: u64,
}

impl HttpClient {
    pub(crate) fn new(settings: &HttpSettings) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .user_agent(settings.user_agent.as_str())
            .connect_timeout(settings.timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(HttpClient { client, timeout: settings.timeout, max_body_bytes: settings.max_body_bytes })
    }

    /// GET `url`, conditional on `validators` when they hold anything.
    pub(crate) async fn get(&self, url: &Url, validators: &Validators) -> Exchange {
        let mut request = self.client.get(url.clone()).timeout(self.timeout);
        if let Some(etag) = &validators.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(modified) = &validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, modified);
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Exchange { result: Err(self.transport_error(url, &e)), limits: RateLimit::default() },
        };
        let limits = RateLimit::from_headers(response.headers());
        let status = response.status();
        let result = if status == StatusCode::NOT_MODIFIED {
            Ok(Fetched::NotModified)
        } else if status == StatusCode::TOO_MANY_REQUESTS {
            Err(SourceError::RateLimited { url: url.to_string(), retry_after: limits.retry_after })
        } else if !status.is_success() {
            Err(SourceError::Status { url: url.to_string(), status: status.as_u16() })
        } else {
            let validators = Validators::from_headers(response.headers());
            self.read_body(url, &mut response).await.map(|body| Fetched::Fresh { body, validators })
        };
        Exchange { result, limits }
    }

    async fn read_body(&self, url: &Url, response: &mut reqwest::Response) -> Result<Vec<u8>, SourceError> {
        let too_large = || SourceError::TooLarge { origin: url.to_string(), limit: self.max_body_bytes };
        if response.content_length().is_some_and(|len| len > self.max_body_bytes) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(url, &e))? {
            if (body.len() + chunk.len()) as u64 > self.max_body_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, url: &Url, error: &reqwest::Error) -> SourceError {
        if error.is_timeout() {
            return SourceError::Timeout { url: url.to_string(), timeout: self.timeout };
        }
        // The chain says more than the top ("error sending request"): connection refused, reset, …
        let mut message = error.to_string();
        let mut cause = std::error::Error::source(error);
        while let Some(inner) = cause {
            message.push_str(": ");
            message.push_str(&inner.to_string());
            cause = inner.source();
        }
        SourceError::Transport { url: url.to_string(), message }
    }
}

/// When an HTTP source may poll again.
///
/// After a success the next poll is due after the interval; after a failure
/// after the backoff's delay. Whatever the server imposed (`Retry-After`, a
/// spent `x-ratelimit-remaining`) lengthens either. Waits after failures and
/// imposed by the server are also enforced: a poll before they end makes no
/// request and returns the time left.
#[derive(Debug)]
pub(crate) struct Throttle {
    interval: Duration,
    backoff: Backoff,
    not_before: Option<Instant>,
}

impl Throttle {
    pub(crate) fn new(interval: Duration, backoff: Backoff) -> Self {
        Throttle { interval, backoff, not_before: None }
    }

    /// Time left before a request is allowed, if a wait is in force.
    pub(crate) fn blocked_for(&self) -> Option<Duration> {
        let left = self.not_before?.checked_duration_since(Instant::now())?;
        (!left.is_zero()).then_some(left)
    }

    /// Settle a successful poll; returns the delay to the next one.
    pub(crate) fn succeeded(&mut self, limits: &RateLimit) -> Duration {
        self.backoff.reset();
        let imposed = limits.server_wait();
        self.not_before = imposed.map(|wait| Instant::now() + wait);
        imposed.map_or(self.interval, |wait| wait.max(self.interval))
    }

    /// Settle a failed poll; returns the delay to the next one.
    pub(crate) fn failed(&mut self, limits: &RateLimit) -> Duration {
        let delay = self.backoff.next_delay().max(limits.server_wait().unwrap_or_default());
        self.not_before = Some(Instant::now() + delay);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, reqwest::header::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z").map(|t| t.with_timezone(&Utc));
        let now = now.unwrap_or_default();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 1.5 ", now), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-5", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("999999999999", now), Some(MAX_SERVER_WAIT));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn rate_limit_headers_impose_a_wait_only_when_spent() {
        let spent = RateLimit::from_headers(&headers(&[
            ("x-ratelimit-remaining", "0.0"),
            ("x-ratelimit-reset", "42"),
            ("x-ratelimit-used", "600"),
        ]));
        assert_eq!(spent.exhausted_wait(), Some(Duration::from_secs(42)));
        let fine = RateLimit::from_headers(&headers(&[("x-ratelimit-remaining", "12"), ("x-ratelimit-reset", "42")]));
        assert_eq!(fine.exhausted_wait(), None);
        assert_eq!(RateLimit::from_headers(&HeaderMap::new()), RateLimit::default());
        let both = RateLimit { retry_after: Some(Duration::from_secs(50)), ..spent };
        assert_eq!(both.server_wait(), Some(Duration::from_secs(50)));
    }

    #[tokio::test(start_paused = true)]
    async fn throttle_waits_after_failures_but_not_after_plain_successes() {
        let interval = Duration::from_secs(30);
        let mut throttle =
            Throttle::new(interval, Backoff::with_seed(Duration::from_secs(5), Duration::from_secs(40), 9));
        assert_eq!(throttle.succeeded(&RateLimit::default()), interval);
        assert_eq!(throttle.blocked_for(), None);

        assert_eq!(throttle.failed(&RateLimit::default()), Duration::from_secs(5));
        assert_eq!(throttle.blocked_for(), Some(Duration::from_secs(5)));
        let second = throttle.failed(&RateLimit::default());
        assert!(second >= Duration::from_secs(5) && second <= Duration::from_secs(10), "{second:?}");
        tokio::time::advance(second).await;
        assert_eq!(throttle.blocked_for(), None);

        let told = RateLimit { retry_after: Some(Duration::from_secs(300)), ..RateLimit::default() };
        assert_eq!(throttle.failed(&told), Duration::from_secs(300));

        let spent = RateLimit { remaining: Some(0.0), reset: Some(Duration::from_secs(90)), retry_after: None };
        assert_eq!(throttle.succeeded(&spent), Duration::from_secs(90));
        assert_eq!(throttle.blocked_for(), Some(Duration::from_secs(90)));
        // Success reset the backoff: the next failure waits the base again.
        assert_eq!(throttle.failed(&RateLimit::default()), Duration::from_secs(5));
    }
}
