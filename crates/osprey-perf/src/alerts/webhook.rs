//! Webhook delivery: a bounded queue and one task that POSTs each event.
//!
//! The queue is the engine's own `mpsc`, not the lossy broadcast, so a slow
//! endpoint never makes the task skip events silently: when the queue is full
//! the new event is dropped, counted and logged at WARN. Each event is
//! attempted up to `max_attempts` times:
//!
//! - 2xx: delivered;
//! - connection errors, timeouts and other transport failures, 408, 429 and
//!   5xx: retried after `initial_backoff`, doubled each retry up to
//!   `max_backoff`, with "equal jitter" (half the delay fixed, half random)
//!   so that replicas do not retry in lockstep; a `Retry-After: <seconds>`
//!   header replaces the computed delay (capped at `max_backoff`);
//! - any other status: the endpoint rejected the event; not retried.
//!
//! Logs name the endpoint by `scheme://host:port` only, and reqwest errors
//! are stripped of their URL: the path or query string may hold a token.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::event::AlertEvent;
use super::settings::{origin, WebhookSettings};
use crate::AlertError;

/// Delivery counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookStats {
    /// Events the endpoint accepted (2xx).
    pub delivered: u64,
    /// Events given up on: attempts exhausted or rejected with a 4xx.
    pub failed: u64,
    /// Retries (attempts after the first), over all events.
    pub retried: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dropped: AtomicU64,
}

/// The engine's side: the queue's sender, and what the task needs to start.
pub(crate) struct Webhook {
    tx: mpsc::Sender<AlertEvent>,
    /// Taken by the first `spawn`.
    pending: Mutex<Option<Delivery>>,
    counters: Arc<Counters>,
    origin: String,
}

/// The task's side.
struct Delivery {
    rx: mpsc::Receiver<AlertEvent>,
    client: reqwest::Client,
    settings: WebhookSettings,
    counters: Arc<Counters>,
    origin: String,
}

/// The JSON body: the event plus where it came from.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(flatten)]
    event: &'a AlertEvent,
    source: &'static str,
}

enum Outcome {
    Delivered,
    Rejected(StatusCode),
    Retry { why: String, retry_after: Option<Duration> },
    Fatal(String),
}

impl Webhook {
    pub(crate) fn new(settings: WebhookSettings) -> Result<Self, AlertError> {
        let client = reqwest::Client::builder().build().map_err(AlertError::WebhookClient)?;
        let (tx, rx) = mpsc::channel(settings.queue_capacity);
        let counters = Arc::new(Counters::default());
        let origin = origin(&settings.url);
        let delivery = Delivery { rx, client, settings, counters: counters.clone(), origin: origin.clone() };
        Ok(Self { tx, pending: Mutex::new(Some(delivery)), counters, origin })
    }

    pub(crate) fn spawn(&self) -> Option<tokio::task::JoinHandle<()>> {
        let delivery = self.pending.lock().unwrap_or_else(PoisonError::into_inner).take()?;
        tracing::info!(webhook = %self.origin, "alert webhook delivery started");
        Some(tokio::spawn(delivery.run()))
    }

    pub(crate) fn enqueue(&self, event: AlertEvent) {
        if let Err(e) = self.tx.try_send(event) {
            let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            let event = match &e {
                mpsc::error::TrySendError::Full(ev) | mpsc::error::TrySendError::Closed(ev) => ev,
            };
            tracing::warn!(
                webhook = %self.origin,
                rule = %event.rule,
                alert_id = event.alert_id,
                dropped,
                closed = matches!(e, mpsc::error::TrySendError::Closed(_)),
                "alert webhook queue full (or delivery stopped); event dropped"
            );
        }
    }

    pub(crate) fn stats(&self) -> WebhookStats {
        let c = &self.counters;
        WebhookStats {
            delivered: c.delivered.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }
}

impl Delivery {
    /// Delivers events in order until the engine (the sender) is gone.
    async fn run(mut self) {
        while let Some(event) = self.rx.recv().await {
            self.deliver(&event).await;
        }
        tracing::info!(webhook = %self.origin, "alert webhook delivery stopped");
    }

    async fn deliver(&self, event: &AlertEvent) {
        let max_attempts = self.settings.max_attempts.max(1);
        let mut backoff = self.settings.initial_backoff;
        for attempt in 1..=max_attempts {
            let (why, retry_after) = match self.attempt(event).await {
                Outcome::Delivered => {
                    self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(webhook = %self.origin, rule = %event.rule, alert_id = event.alert_id, attempt, "alert delivered");
                    return;
                }
                Outcome::Rejected(status) => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        webhook = %self.origin, rule = %event.rule, alert_id = event.alert_id, %status,
                        "alert webhook rejected the event; not retrying"
                    );
                    return;
                }
                Outcome::Fatal(why) => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        webhook = %self.origin, rule = %event.rule, alert_id = event.alert_id, error = %why,
                        "alert webhook request cannot be sent; not retrying"
                    );
                    return;
                }
                Outcome::Retry { why, retry_after } => (why, retry_after),
            };
            if attempt == max_attempts {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    webhook = %self.origin, rule = %event.rule, alert_id = event.alert_id, attempts = attempt, error = %why,
                    "alert webhook delivery failed; giving up"
                );
                return;
            }
            let delay = match retry_after {
                Some(d) => d.min(self.settings.max_backoff),
                None => jittered(backoff),
            };
            backoff = backoff.saturating_mul(2).min(self.settings.max_backoff);
            self.counters.retried.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                webhook = %self.origin, rule = %event.rule, alert_id = event.alert_id, attempt, error = %why,
                retry_in = ?delay, "alert webhook delivery failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, event: &AlertEvent) -> Outcome {
        let sent = self
            .client
            .post(&self.settings.url)
            .timeout(self.settings.timeout)
            .json(&Payload { event, source: "osprey" })
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) if e.is_builder() => return Outcome::Fatal(describe(e)),
            Err(e) => return Outcome::Retry { why: describe(e), retry_after: None },
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Delivered;
        }
        if status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
        {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Outcome::Retry { why: format!("status {status}"), retry_after };
        }
        Outcome::Rejected(status)
    }
}

/// A reqwest error and its causes, without the URL.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `delay / 2` plus a random part of up to `delay / 2`.
fn jittered(delay: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
    delay / 2 + (delay / 2).mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_to_full_delay() {
        let d = Duration::from_millis(800);
        for _ in 0..100 {
            let j = jittered(d);
            assert!(j >= d / 2 && j <= d, "{j:?}");
        }
    }
}
