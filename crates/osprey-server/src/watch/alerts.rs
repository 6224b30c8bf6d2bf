//! Alert delivery: each webhook target has its own bounded queue and one
//! task that POSTs in order, retrying with capped, jittered exponential
//! backoff; an alert that fails `max_attempts` times (or finds the queue
//! full, or is still queued when shutdown's deadline passes) is kept as a
//! dead letter in the store. Log targets write a line at once.
//!
//! Every alert carries an `id` (also sent as `Idempotency-Key`) that stays
//! the same across retries, so a receiver can drop repeats.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use osprey_types::metrics as m;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::settings::{AlertKind, AlertTarget};

/// One alert on its way to targets.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub id: String,
    pub kind: AlertKind,
    pub watch: String,
    /// Epoch ms.
    pub sent_at: i64,
    #[serde(flatten)]
    pub body: Value,
}

impl Alert {
    pub fn new(kind: AlertKind, watch: &str, body: Value) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            kind,
            watch: watch.to_string(),
            sent_at: chrono::Utc::now().timestamp_millis(),
            body,
        }
    }
}

/// Delivery counts of one target.
#[derive(Debug, Default, Serialize)]
pub struct TargetStats {
    pub sent: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
}

struct Target {
    name: String,
    kinds: Vec<AlertKind>,
    queue: Option<mpsc::Sender<Alert>>,
    stats: Arc<TargetStats>,
}

/// A watch's alert targets.
pub struct Alerter {
    watch: String,
    targets: Vec<Target>,
    store: Option<osprey_store::Store>,
}

/// What a webhook task needs.
struct Webhook {
    watch: String,
    name: String,
    url: String,
    headers: Vec<(String, String)>,
    max_attempts: u32,
    backoff: osprey_watch::Backoff,
    client: reqwest::Client,
    store: Option<osprey_store::Store>,
    stats: Arc<TargetStats>,
}

impl Alerter {
    /// Starts a delivery task per webhook on `tracker`; they drain their
    /// queues when `stop` is cancelled, within `drain`.
    pub fn start(
        watch: &str,
        targets: &[AlertTarget],
        store: Option<osprey_store::Store>,
        stop: tokio_util::sync::CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
        drain: Duration,
    ) -> Self {
        let mut out = Vec::new();
        for t in targets {
            let stats = Arc::new(TargetStats::default());
            let queue = match t {
                AlertTarget::Log { .. } => None,
                AlertTarget::Webhook {
                    name, url, headers, timeout, max_attempts, backoff, max_backoff, queue, ..
                } => {
                    let (tx, rx) = mpsc::channel(*queue);
                    let client = reqwest::Client::builder().timeout(*timeout).build().unwrap_or_default();
                    let hook = Webhook {
                        watch: watch.to_string(),
                        name: name.clone(),
                        url: url.clone(),
                        headers: headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                        max_attempts: *max_attempts,
                        backoff: osprey_watch::Backoff::new(*backoff, *max_backoff),
                        client,
                        store: store.clone(),
                        stats: Arc::clone(&stats),
                    };
                    tracker.spawn(hook.run(rx, stop.clone(), drain));
                    Some(tx)
                }
            };
            out.push(Target { name: t.name().to_string(), kinds: t.kinds().to_vec(), queue, stats });
        }
        Self { watch: watch.to_string(), targets: out, store }
    }

    /// Whether any target takes alerts of `kind`.
    pub fn wants(&self, kind: AlertKind) -> bool {
        self.targets.iter().any(|t| t.kinds.contains(&kind))
    }

    /// Hands `alert` to every target that takes its kind. Never waits: a
    /// full queue dead-letters the alert for that target.
    pub async fn send(&self, alert: Alert) {
        for t in self.targets.iter().filter(|t| t.kinds.contains(&alert.kind)) {
            match &t.queue {
                None => {
                    tracing::info!(target: "osprey::watch::alert", watch = %self.watch, alert = %t.name,
                        kind = ?alert.kind, body = %alert.body, "watch alert");
                    t.stats.sent.fetch_add(1, Ordering::Relaxed);
                    count(&self.watch, &t.name, "sent");
                }
                Some(tx) => {
                    if let Err(e) = tx.try_send(alert.clone()) {
                        let (mpsc::error::TrySendError::Full(a) | mpsc::error::TrySendError::Closed(a)) = e;
                        dead_letter(&self.store, &self.watch, &t.name, &a, "delivery queue full or closed", 0).await;
                        t.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Per target: name, queued, sent, retried, dead-lettered.
    pub fn status(&self) -> Vec<Value> {
        self.targets
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name,
                    "queued": t.queue.as_ref().map_or(0, |q| q.max_capacity() - q.capacity()),
                    "sent": t.stats.sent.load(Ordering::Relaxed),
                    "retried": t.stats.retried.load(Ordering::Relaxed),
                    "dead_lettered": t.stats.dead_lettered.load(Ordering::Relaxed),
                })
            })
            .collect()
    }
}

fn count(watch: &str, target: &str, outcome: &'static str) {
    metrics::counter!(m::WATCH_ALERTS_TOTAL, "watch" => watch.to_string(), "target" => target.to_string(), "outcome" => outcome)
        .increment(1);
}

/// Keeps `alert` in the store's dead letters (or, without a store, logs it
/// whole so it is not lost silently).
async fn dead_letter(
    store: &Option<osprey_store::Store>,
    watch: &str,
    target: &str,
    alert: &Alert,
    error: &str,
    attempts: u32,
) {
    count(watch, target, "dead_letter");
    let payload = serde_json::to_value(alert).unwrap_or(Value::Null);
    tracing::warn!(watch, target, alert = %alert.id, attempts, error, "alert dead-lettered");
    let Some(store) = store else {
        tracing::error!(watch, target, %payload, "no store to keep the dead letter in");
        return;
    };
    let letter = osprey_store::DeadLetter {
        id: format!("{}:{target}", alert.id),
        watch: watch.to_string(),
        target: target.to_string(),
        payload: payload.clone(),
        error: error.to_string(),
        attempts: i64::from(attempts),
        created_at: chrono::Utc::now().timestamp_millis(),
    };
    if let Err(e) = store.put_dead_letter(&letter).await {
        tracing::error!(watch, target, error = %e, %payload, "could not store the dead letter");
    }
}

impl Webhook {
    async fn run(mut self, mut rx: mpsc::Receiver<Alert>, stop: tokio_util::sync::CancellationToken, drain: Duration) {
        loop {
            let alert = tokio::select! {
                a = rx.recv() => match a { Some(a) => a, None => return },
                () = stop.cancelled() => break,
            };
            self.deliver(alert, None).await;
        }
        // Shutdown: deliver what is queued within `drain` (one attempt
        // each, no backoff), dead-letter the rest.
        rx.close();
        let deadline = tokio::time::Instant::now() + drain;
        while let Some(alert) = rx.recv().await {
            if tokio::time::Instant::now() >= deadline {
                dead_letter(&self.store, &self.watch, &self.name, &alert, "shutdown before delivery", 0).await;
                self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.deliver(alert, Some(deadline)).await;
        }
    }

    /// Tries until delivered or `max_attempts` (or, when shutting down,
    /// `deadline`) is reached.
    async fn deliver(&mut self, alert: Alert, deadline: Option<tokio::time::Instant>) {
        let body = match serde_json::to_vec(&alert) {
            Ok(b) => b,
            Err(e) => {
                dead_letter(&self.store, &self.watch, &self.name, &alert, &e.to_string(), 0).await;
                return;
            }
        };
        self.backoff.reset();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.post(&alert.id, body.clone()).await {
                Ok(()) => {
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    count(&self.watch, &self.name, "sent");
                    return;
                }
                Err(e) => e,
            };
            let wait = self.backoff.next_delay();
            let out_of_time = deadline.is_some_and(|d| tokio::time::Instant::now() + wait >= d);
            if attempt >= self.max_attempts || out_of_time {
                dead_letter(&self.store, &self.watch, &self.name, &alert, &error, attempt).await;
                self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            tracing::debug!(watch = %self.watch, target = %self.name, attempt, %error, ?wait, "webhook failed; retrying");
            self.stats.retried.fetch_add(1, Ordering::Relaxed);
            count(&self.watch, &self.name, "retried");
            tokio::time::sleep(wait).await;
        }
    }

    async fn post(&self, id: &str, body: Vec<u8>) -> Result<(), String> {
        let mut req = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", id);
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.body(body).send().await.map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("webhook answered {status}"))
        }
    }
}
