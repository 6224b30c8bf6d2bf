//! `osprey watch`: each `[[watch]]` definition polls its sources, runs the
//! pipeline ([`pipeline`]) over what they return, commits their cursors
//! and alerts; a push watch also takes posts from `POST /v1/ingest/{name}`.
//!
//! # Layout
//! - [`settings`]: `[[watch]]` definitions.
//! - [`pipeline`]: one watch's stages over one batch.
//! - [`alerts`]: webhook and log targets, retries and dead letters.
//! - `digest`: the per-topic digest.
//! - `trend`: emotion-trend rules.
//!
//! # A source's loop
//! Restore the saved cursor; poll; run the batch through the pipeline in
//! pieces of `batch_size` (each piece commits its hashes, the last one the
//! new cursor); wait what the source says; repeat. When the pipeline fails
//! (the store or the model unavailable), the source is restored to the last
//! committed cursor and polled again after a backoff, so nothing is
//! skipped. A source that reports it is finished (a file read to its end
//! outside tail mode) ends its loop.

pub mod alerts;
mod digest;
pub mod pipeline;
pub mod settings;
mod trend;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use osprey_watch::Source;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::analysis::Analyzer;
pub use pipeline::{BatchReport, Watch};
pub use settings::{WatchDefinition, PUSH_SOURCE};

/// Every running watch, by name.
pub struct Watches {
    watches: BTreeMap<String, Arc<Watch>>,
    tracker: TaskTracker,
    sources_running: Arc<std::sync::atomic::AtomicUsize>,
}

/// How long delivery tasks get to drain their queues at shutdown.
const ALERT_DRAIN: Duration = Duration::from_secs(10);

impl Watches {
    /// Builds the watches and starts their sources, alert deliveries and
    /// digests on a tracker of their own; everything stops when `stop` is
    /// cancelled ([`Watches::wait`] waits for it).
    pub fn start(
        defs: &[WatchDefinition],
        analyzer: Arc<Analyzer>,
        store: Option<osprey_store::Store>,
        stop: CancellationToken,
    ) -> Result<Self, String> {
        settings::validate_all(defs)?;
        if store.is_none() && !defs.is_empty() {
            tracing::warn!("watches run without a store: cursors and seen contents live in memory only");
        }
        let tracker = TaskTracker::new();
        let sources_running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut watches = BTreeMap::new();
        for def in defs {
            let alerter =
                alerts::Alerter::start(&def.name, &def.alerts, store.clone(), stop.clone(), &tracker, ALERT_DRAIN);
            let watch = Arc::new(Watch::new(def.clone(), Arc::clone(&analyzer), store.clone(), alerter));
            osprey_watch::build_all(&def.sources).map_err(|e| format!("watch {}: {e}", def.name))?;
            {
                let watch = Arc::clone(&watch);
                tracker.spawn(async move { watch.seed_trends().await });
            }
            for config in def.sources.iter().cloned() {
                sources_running.fetch_add(1, Ordering::SeqCst);
                let (watch, stop, running) = (Arc::clone(&watch), stop.clone(), Arc::clone(&sources_running));
                tracker.spawn(async move {
                    source_loop(&watch, config, stop).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                });
            }
            if let Some(every) = watch.digest_every() {
                let (watch, stop) = (Arc::clone(&watch), stop.clone());
                tracker.spawn(async move {
                    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                    loop {
                        tokio::select! {
                            _ = tick.tick() => watch.send_digest().await,
                            () = stop.cancelled() => break,
                        }
                    }
                });
            }
            watches.insert(def.name.clone(), watch);
        }
        tracker.close();
        Ok(Self { watches, tracker, sources_running })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Watch>> {
        self.watches.get(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.watches.keys().cloned().collect()
    }

    /// Sources still polling (finished ones, a file read to its end, are not).
    pub fn sources_running(&self) -> usize {
        self.sources_running.load(Ordering::SeqCst)
    }

    /// Waits until every source loop has ended (all finished, or stopped).
    pub async fn sources_done(&self) {
        while self.sources_running() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for every task (after the stop token was cancelled).
    pub async fn wait(&self) {
        self.tracker.wait().await;
    }

    /// What `GET /v1/watches` shows.
    pub async fn status(&self) -> Value {
        let mut out = Vec::new();
        for w in self.watches.values() {
            out.push(status_of(w).await);
        }
        json!({ "watches": out })
    }
}

/// One watch's counters, rate, saved cursors and alert targets.
pub async fn status_of(w: &Watch) -> Value {
    let c = &w.counters;
    let secs = w.started.elapsed().as_secs_f64();
    let received = c.received.load(Ordering::Relaxed);
    let cursors = match w.store() {
        Some(store) => match store.watch_cursors(w.name()).await {
            Ok(list) => json!(list),
            Err(e) => json!({ "error": e.to_string() }),
        },
        None => Value::Null,
    };
    json!({
        "name": w.name(),
        "push": w.def.push,
        "sources": w.def.sources.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "received": received,
        "kept": c.kept.load(Ordering::Relaxed),
        "duplicate": c.duplicate.load(Ordering::Relaxed),
        "near_duplicate": c.near_duplicate.load(Ordering::Relaxed),
        "filtered": c.filtered.load(Ordering::Relaxed),
        "invalid": c.invalid.load(Ordering::Relaxed),
        "batches": c.batches.load(Ordering::Relaxed),
        "errors": c.errors.load(Ordering::Relaxed),
        "last_error": w.last_error(),
        "posts_per_sec": if secs > 0.0 { received as f64 / secs } else { 0.0 },
        // Where the time went: seconds per pipeline stage, summed over batches.
        "stage_seconds": c
            .stage_seconds()
            .into_iter()
            .map(|(stage, secs)| (stage.to_string(), json!(secs)))
            .collect::<serde_json::Map<_, _>>(),
        "uptime_secs": secs,
        "cursors": cursors,
        "alerts": w.alerts.status(),
    })
}

/// Polls `source` until it is finished or `stop` is cancelled.
async fn source_loop(watch: &Watch, config: osprey_watch::SourceConfig, stop: CancellationToken) {
    // Checked by `start`.
    let Ok(mut source) = config.build() else { return };
    let name = source.name().to_string();
    let mut committed = Value::Null;
    if let Some(store) = watch.store() {
        // The saved cursor; without it the source starts from its beginning.
        let mut backoff = osprey_watch::Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        loop {
            match store.watch_cursor(watch.name(), &name).await {
                Ok(Some(saved)) => {
                    match source.restore(&saved.cursor) {
                        Ok(()) => {
                            tracing::info!(watch = %watch.name(), source = %name, posts = saved.posts, "resuming from the saved cursor");
                            committed = saved.cursor;
                        }
                        Err(e) => {
                            tracing::error!(watch = %watch.name(), source = %name, error = %e, "saved cursor refused; starting over");
                        }
                    }
                    break;
                }
                Ok(None) => break,
                Err(e) => {
                    watch.record_error(&format!("reading the cursor of {name}: {e}"));
                    let wait = backoff.next_delay();
                    tokio::select! { () = tokio::time::sleep(wait) => {}, () = stop.cancelled() => return }
                }
            }
        }
    }
    let mut backoff = osprey_watch::Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
    loop {
        let reading = std::time::Instant::now();
        let batch = tokio::select! {
            b = source.poll() => b,
            () = stop.cancelled() => return,
        };
        if let Some(e) = &batch.error {
            tracing::warn!(watch = %watch.name(), source = %name, error = %e, "source error");
            watch.record_error(&format!("{name}: {e}"));
            metrics::counter!(osprey_types::metrics::WATCH_ERRORS_TOTAL, "watch" => watch.name().to_string(), "kind" => "source")
                .increment(1);
        }
        let next = batch.next_poll;
        let posts: Vec<_> = batch.posts.into_iter().map(osprey_watch::SourcePost::into_post).collect();
        watch.stage(pipeline::Stage::Read, reading);
        let mut failed = None;
        if !posts.is_empty() || batch.cursor != committed {
            let size = watch.def.batch_size;
            let pieces = posts.len().div_ceil(size).max(1);
            let mut rest = posts;
            for piece in 0..pieces {
                let tail = rest.split_off(rest.len().min(size));
                let chunk = std::mem::replace(&mut rest, tail);
                // Only the last piece moves the cursor: a crash in between
                // replays the batch, and the pieces already committed are
                // recognised as seen.
                let cursor = if piece + 1 == pieces { &batch.cursor } else { &committed };
                if let Err(e) = watch.process(&name, chunk, cursor).await {
                    failed = Some(e);
                    break;
                }
            }
        }
        match failed {
            None => {
                committed = batch.cursor;
                backoff.reset();
                match next {
                    None => {
                        tracing::info!(watch = %watch.name(), source = %name, "source finished");
                        return;
                    }
                    Some(wait) if !wait.is_zero() => {
                        tokio::select! { () = tokio::time::sleep(wait) => {}, () = stop.cancelled() => return }
                    }
                    Some(_) => {}
                }
            }
            Some(e) => {
                let wait = backoff.next_delay();
                tracing::error!(watch = %watch.name(), source = %name, error = %e.message, ?wait,
                    "pipeline failed; the batch will be read again");
                watch.record_error(&e.message);
                metrics::counter!(osprey_types::metrics::WATCH_ERRORS_TOTAL, "watch" => watch.name().to_string(), "kind" => "pipeline")
                    .increment(1);
                if let Err(e) = rewind(&mut source, &config, &committed) {
                    tracing::error!(watch = %watch.name(), source = %name, error = %e, "could not rewind the source");
                }
                tokio::select! { () = tokio::time::sleep(wait) => {}, () = stop.cancelled() => return }
            }
        }
    }
}

/// Puts `source` back at `committed`: restored from it, or built afresh
/// when nothing was committed yet.
fn rewind(source: &mut Box<dyn Source>, config: &osprey_watch::SourceConfig, committed: &Value) -> Result<(), String> {
    if committed.is_null() {
        *source = config.build().map_err(|e| e.to_string())?;
        Ok(())
    } else {
        source.restore(committed).map_err(|e| e.to_string())
    }
}
