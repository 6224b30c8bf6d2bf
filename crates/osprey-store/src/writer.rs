//! The batching writer: one task owns a bounded queue of records and
//! commits them in batches of up to `batch_size`, or whatever arrived
//! within `max_delay` of a batch's first record.
//!
//! Accepted records are never dropped: a batch the database cannot take
//! (connection lost, server restarting) is retried with exponential
//! backoff for as long as the store is open, and until `shutdown_deadline`
//! once it is closing; a batch refused for its data is split and written
//! record by record, so only the bad record is lost (and logged). Records
//! waiting in the queue stay visible to `find_by_hashes` through the
//! pending map, so content resubmitted before its batch commits is still
//! recognised.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::db::Pool;
use crate::metrics::{STORE_BATCHES_TOTAL, STORE_QUEUE_DEPTH, STORE_RECORDS_TOTAL};
use crate::model::now_ms;
use crate::plan::Queued;
use crate::settings::WriterSettings;
use crate::timing::Timings;
use crate::write::write_batch;
use crate::{AnalysisRecord, ContentHash, StoreError, SubmitError};

/// First pause after a failed batch; doubled per failure up to
/// `retry_backoff_max`.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

pub(crate) enum Msg {
    Record(Arc<Queued>),
    /// Answered once every record queued before it is committed.
    Flush(oneshot::Sender<()>),
}

/// Counters and the pending map, shared by the handle and the task.
#[derive(Default)]
pub(crate) struct Shared {
    pending: Mutex<HashMap<ContentHash, Vec<Arc<Queued>>>>,
    /// Records accepted and not yet committed, rejected or given up on.
    depth: AtomicI64,
    pub written: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub batches: AtomicU64,
    pub retries: AtomicU64,
    /// Written after `close` began.
    pub drained: AtomicU64,
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<ContentHash, Vec<Arc<Queued>>>> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn add_pending(&self, q: &Arc<Queued>) {
        self.pending().entry(q.record.post.content_hash).or_default().push(q.clone());
    }

    fn remove_pending(&self, q: &Queued) {
        let mut pending = self.pending();
        let hash = q.record.post.content_hash;
        if let Some(list) = pending.get_mut(&hash) {
            list.retain(|p| p.seq != q.seq);
            if list.is_empty() {
                pending.remove(&hash);
            }
        }
    }

    /// The queued records of post `id`, oldest first. A scan: the map holds
    /// at most the queue's records, and is empty whenever the writer keeps up.
    pub(crate) fn pending_with_id(&self, id: &str) -> Vec<Arc<Queued>> {
        let pending = self.pending();
        let mut found: Vec<Arc<Queued>> =
            pending.values().flatten().filter(|q| q.record.post.id == id).cloned().collect();
        found.sort_by_key(|q| q.accepted_at);
        found
    }

    /// The queued record holding analysis `id`, if any.
    pub(crate) fn pending_with_analysis(&self, id: &str) -> Option<Arc<Queued>> {
        let pending = self.pending();
        pending.values().flatten().find(|q| q.record.analyses.iter().any(|a| a.id == id)).cloned()
    }

    /// The queued records with these hashes, oldest first.
    pub(crate) fn pending_for(&self, hashes: &[ContentHash]) -> HashMap<ContentHash, Vec<Arc<Queued>>> {
        let pending = self.pending();
        if pending.is_empty() {
            return HashMap::new();
        }
        hashes.iter().filter_map(|h| pending.get(h).map(|list| (*h, list.clone()))).collect()
    }

    pub(crate) fn depth(&self) -> usize {
        usize::try_from(self.depth.load(Ordering::Relaxed)).unwrap_or(0)
    }

    fn add_depth(&self, n: i64) {
        let depth = self.depth.fetch_add(n, Ordering::Relaxed) + n;
        metrics::gauge!(STORE_QUEUE_DEPTH).set(depth as f64);
    }

    /// A record's fate is settled: forget it.
    fn settle(&self, q: &Queued, outcome: &'static str) {
        self.remove_pending(q);
        self.add_depth(-1);
        metrics::counter!(STORE_RECORDS_TOTAL, "outcome" => outcome).increment(1);
    }
}

/// Removes a record from the pending map unless it made it into the queue
/// (a `submit` cancelled while waiting for room must not leave it behind).
struct PendingGuard<'a> {
    shared: &'a Shared,
    q: Option<Arc<Queued>>,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Some(q) = self.q.take() {
            self.shared.remove_pending(&q);
            self.shared.add_depth(-1);
        }
    }
}

/// The submitting side, held by the store.
pub(crate) struct WriterHandle {
    tx: mpsc::Sender<Msg>,
    pub shared: Arc<Shared>,
    closed: AtomicBool,
    next_seq: AtomicU64,
    shutdown: watch::Sender<Option<Instant>>,
    pub capacity: usize,
}

/// What the task reports when it ends.
#[derive(Debug, Default)]
pub(crate) struct WriterOutcome {
    pub left: u64,
}

/// Starts the writer task.
pub(crate) fn spawn(
    pool: Pool,
    timings: Arc<Timings>,
    settings: WriterSettings,
) -> (WriterHandle, tokio::task::JoinHandle<WriterOutcome>) {
    let (tx, rx) = mpsc::channel(settings.queue_capacity);
    let (shutdown_tx, shutdown_rx) = watch::channel(None);
    let shared = Arc::new(Shared::default());
    let handle = WriterHandle {
        tx,
        shared: shared.clone(),
        closed: AtomicBool::new(false),
        next_seq: AtomicU64::new(0),
        shutdown: shutdown_tx,
        capacity: settings.queue_capacity,
    };
    let writer = Writer { pool, timings, shared, settings, rx, shutdown: shutdown_rx, closing: None };
    (handle, tokio::spawn(writer.run()))
}

impl WriterHandle {
    fn enqueue(&self, record: AnalysisRecord) -> (Arc<Queued>, PendingGuard<'_>) {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let q = Arc::new(Queued { seq, accepted_at: now_ms(), record });
        // Pending before queued: the task may commit and forget the record
        // before `send` even returns.
        self.shared.add_pending(&q);
        self.shared.add_depth(1);
        (q.clone(), PendingGuard { shared: &self.shared, q: Some(q) })
    }

    pub(crate) async fn submit(&self, record: AnalysisRecord) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let (q, mut guard) = self.enqueue(record);
        match self.tx.send(Msg::Record(q)).await {
            Ok(()) => {
                guard.q = None;
                Ok(())
            }
            Err(_) => Err(StoreError::Closed),
        }
    }

    pub(crate) fn try_submit(&self, record: AnalysisRecord) -> Result<(), SubmitError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(SubmitError::Closed(Box::new(record)));
        }
        let (q, mut guard) = self.enqueue(record);
        let full = match self.tx.try_send(Msg::Record(q.clone())) {
            Ok(()) => {
                guard.q = None;
                return Ok(());
            }
            Err(mpsc::error::TrySendError::Full(_)) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        };
        // The refused message and the guard are gone: `q` is the last
        // reference, and the record comes back without a copy.
        drop(guard);
        let record = Box::new(Arc::try_unwrap(q).map(|q| q.record).unwrap_or_else(|q| q.record.clone()));
        Err(if full { SubmitError::Full(record) } else { SubmitError::Closed(record) })
    }

    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let (ack, done) = oneshot::channel();
        self.tx.send(Msg::Flush(ack)).await.map_err(|_| StoreError::Closed)?;
        done.await.map_err(|_| StoreError::Closed)
    }

    /// Stops accepting records and tells the task to drain by `deadline`.
    pub(crate) fn begin_close(&self, deadline: Instant) {
        self.closed.store(true, Ordering::Release);
        // The task may be gone already (it ends when every handle is
        // dropped); then there is nothing left to drain.
        let _ = self.shutdown.send(Some(deadline));
    }
}

struct Writer {
    pool: Pool,
    timings: Arc<Timings>,
    shared: Arc<Shared>,
    settings: WriterSettings,
    rx: mpsc::Receiver<Msg>,
    shutdown: watch::Receiver<Option<Instant>>,
    /// Set once closing: when to give up.
    closing: Option<Instant>,
}

impl Writer {
    async fn run(mut self) -> WriterOutcome {
        let mut batch: Vec<Arc<Queued>> = Vec::with_capacity(self.settings.batch_size);
        let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
        'outer: loop {
            match self.next(None).await {
                None => break,
                Some(Msg::Flush(ack)) => {
                    let _ = ack.send(());
                    continue;
                }
                Some(Msg::Record(q)) => batch.push(q),
            }
            let gather_until = Instant::now() + self.settings.max_delay;
            while batch.len() < self.settings.batch_size {
                match self.next(Some(gather_until)).await {
                    Some(Msg::Record(q)) => batch.push(q),
                    Some(Msg::Flush(ack)) => {
                        flushes.push(ack);
                        break;
                    }
                    None => break,
                }
            }
            self.write(&mut batch).await;
            if !batch.is_empty() {
                break 'outer;
            }
            for ack in flushes.drain(..) {
                let _ = ack.send(());
            }
        }
        self.give_up(batch)
    }

    /// The next message. Waits until `until` (forever when `None`) while
    /// open; once closing, takes only what is already queued. `None`: the
    /// wait ran out, or the queue is closed and empty.
    async fn next(&mut self, until: Option<Instant>) -> Option<Msg> {
        loop {
            if self.closing.is_some() {
                return match until {
                    Some(_) => self.rx.try_recv().ok(),
                    None => self.rx.recv().await,
                };
            }
            let timer = async {
                match until {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                m = self.rx.recv() => return m,
                () = timer => return None,
                _ = self.shutdown.changed() => self.start_closing(),
            }
        }
    }

    fn start_closing(&mut self) {
        if self.closing.is_none() {
            let deadline =
                (*self.shutdown.borrow()).unwrap_or_else(|| Instant::now() + self.settings.shutdown_deadline);
            self.closing = Some(deadline);
            // Senders waiting for room now fail; what is queued stays.
            self.rx.close();
            tracing::info!(queued = self.shared.depth(), "store writer draining");
        }
    }

    fn expired(&self) -> bool {
        self.closing.is_some_and(|d| Instant::now() >= d)
    }

    /// Writes `batch`, retrying transient failures; empties it unless the
    /// close deadline ran out first.
    async fn write(&mut self, batch: &mut Vec<Arc<Queued>>) {
        let mut backoff = FIRST_BACKOFF;
        while !batch.is_empty() {
            match self.attempt(batch).await {
                Ok(()) => {
                    batch.clear();
                    return;
                }
                Err(e) if e.is_transient() => {
                    self.shared.retries.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(STORE_BATCHES_TOTAL, "outcome" => "retried").increment(1);
                    tracing::warn!(error = %e, records = batch.len(), retry_in_ms = backoff.as_millis() as u64, "store batch failed; retrying");
                    if !self.pause(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(self.settings.retry_backoff_max);
                }
                Err(e) if batch.len() == 1 => {
                    let q = batch.remove(0);
                    self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                    self.shared.settle(&q, "rejected");
                    tracing::error!(error = %e, post = %q.record.post.id, "store refused a record; dropped");
                }
                Err(e) => {
                    metrics::counter!(STORE_BATCHES_TOTAL, "outcome" => "split").increment(1);
                    tracing::warn!(error = %e, records = batch.len(), "store batch refused; writing its records one by one");
                    let records = std::mem::take(batch);
                    for (i, q) in records.iter().enumerate() {
                        let mut one = vec![q.clone()];
                        Box::pin(self.write(&mut one)).await;
                        if !one.is_empty() {
                            batch.extend(records[i..].iter().cloned());
                            return;
                        }
                    }
                }
            }
        }
    }

    /// One try at a batch, bounded by the close deadline when closing.
    async fn attempt(&self, batch: &[Arc<Queued>]) -> Result<(), StoreError> {
        let work = write_batch(&self.pool, &self.timings, batch);
        let result = match self.closing {
            Some(deadline) => match tokio::time::timeout_at(deadline, work).await {
                Ok(r) => r,
                Err(_) => Err(StoreError::Timeout { statement: "write_batch", after: self.settings.shutdown_deadline }),
            },
            None => work.await,
        }?;
        self.shared.batches.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(STORE_BATCHES_TOTAL, "outcome" => "ok").increment(1);
        let (written, duplicates) = (result.written.len() as u64, result.duplicates.len() as u64);
        self.shared.written.fetch_add(written, Ordering::Relaxed);
        self.shared.duplicates.fetch_add(duplicates, Ordering::Relaxed);
        if self.closing.is_some() {
            self.shared.drained.fetch_add(written, Ordering::Relaxed);
        }
        for q in batch {
            let outcome = if result.duplicates.contains(&q.seq) { "duplicate" } else { "written" };
            self.shared.settle(q, outcome);
        }
        Ok(())
    }

    /// Sleeps `backoff` (less if the close deadline is nearer); false when
    /// the deadline has passed and the batch should be given up.
    async fn pause(&mut self, backoff: Duration) -> bool {
        if self.expired() {
            return false;
        }
        let wake = match self.closing {
            Some(deadline) => deadline.min(Instant::now() + backoff),
            None => Instant::now() + backoff,
        };
        if self.closing.is_none() {
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                _ = self.shutdown.changed() => self.start_closing(),
            }
        } else {
            tokio::time::sleep_until(wake).await;
        }
        !self.expired()
    }

    /// The deadline ran out: count what is left (the unwritten batch and
    /// the queue) and say so loudly.
    fn give_up(mut self, batch: Vec<Arc<Queued>>) -> WriterOutcome {
        let mut left = batch;
        while let Ok(msg) = self.rx.try_recv() {
            if let Msg::Record(q) = msg {
                left.push(q);
            }
        }
        for q in &left {
            self.shared.settle(q, "lost");
        }
        if !left.is_empty() {
            tracing::error!(records = left.len(), "store closed before these records could be written; they are lost");
        }
        WriterOutcome { left: left.len() as u64 }
    }
}
