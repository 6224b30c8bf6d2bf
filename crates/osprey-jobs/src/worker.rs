//! Workers: take chunks off the queue, run the [`Processor`], count and
//! acknowledge.
//!
//! One worker is three kinds of task:
//!
//! * the fetch loop (the [`Worker::run`] future itself) reads new messages
//!   (`XREADGROUP >`, blocking at most a second, and only when it has
//!   nothing buffered), reclaims messages idle past `ack_wait`
//!   (`XAUTOCLAIM`) every `ack_wait / 2` (at most every 5 s), and starts
//!   buffered chunks as processing slots free up: at most `concurrency`
//!   chunks in process and `prefetch` fetched but not started;
//! * one task per chunk in process: `begin` (skip a cancelled job's chunk,
//!   or one already counted), the processor, then `finish` (count once and
//!   acknowledge, atomically), retrying Redis calls through outages;
//! * the extender, which every `ack_wait / 6` re-claims the messages this
//!   worker has held for `ack_wait / 3` or more, so a slow chunk is never
//!   handed to another worker while this one is alive.
//!
//! Dropping the [`Worker::run`] future (or aborting its task) drops all three
//! at once, like a crash: what it held stays pending and other workers
//! reclaim it after `ack_wait`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use osprey_types::analysis::Post;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::queue::{Begin, Delivery, Finish};
use crate::redis_queue::MAX_BLOCK;
use crate::{ChunkReport, JobError, JobId, Jobs, ProcessError};

/// Analyses and stores chunks of posts; the workers call it.
pub trait Processor: Send + Sync + 'static {
    /// Analyses and stores `posts`, one chunk of job `job`, with the job's
    /// `options`.
    ///
    /// `Ok` means the chunk is done: it is counted and acknowledged, and
    /// never redelivered. A retryable `Err` leaves it to be delivered again
    /// after `ack_wait` (a panic counts as one); a permanent one, or any
    /// error on the last allowed delivery, dead-letters it.
    ///
    /// Delivery is at least once: a chunk may be processed more than once (a
    /// worker died after storing but before acknowledging, or was too slow to
    /// keep its claim), so the writes must be idempotent (keyed by post id).
    fn process<'a>(
        &'a self,
        job: &'a JobId,
        options: &'a Value,
        posts: Vec<Post>,
    ) -> BoxFuture<'a, Result<ChunkReport, ProcessError>>;
}

/// What one [`Worker::run`] did, in chunks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WorkerReport {
    /// Processed, counted and acknowledged.
    pub chunks_done: u64,
    /// Processor errors (each retried later, or dead-lettered).
    pub chunks_failed: u64,
    /// Dead-lettered by this worker.
    pub chunks_dead: u64,
    /// Acknowledged without processing (cancelled job, expired job, or a
    /// redelivered chunk already counted).
    pub chunks_skipped: u64,
    /// Taken over from other consumers (or from this one's past life) after
    /// `ack_wait`.
    pub chunks_reclaimed: u64,
    /// Fetched but not started at shutdown, handed back for redelivery.
    pub chunks_released: u64,
    /// Still in process when the drain time ran out; they stay pending and
    /// are redelivered after `ack_wait`.
    pub chunks_abandoned: u64,
    /// Chunks this worker held that another worker took over (or finished)
    /// meanwhile.
    pub claims_lost: u64,
    /// Queue calls that failed (and were retried).
    pub queue_errors: u64,
}

/// Takes chunks off the queue of a [`Jobs`] and runs a [`Processor`] on them.
pub struct Worker {
    jobs: Jobs,
    processor: Arc<dyn Processor>,
    consumer: String,
}

/// A consumer name unique to this call: `<prefix>-<pid>-<random>`.
pub fn unique_consumer_name(prefix: &str) -> String {
    let rand = uuid::Uuid::now_v7().simple().to_string();
    format!("{prefix}-{}-{}", std::process::id(), &rand[rand.len() - 8..])
}

#[derive(Default)]
struct Stats {
    done: AtomicU64,
    failed: AtomicU64,
    dead: AtomicU64,
    skipped: AtomicU64,
    reclaimed: AtomicU64,
    released: AtomicU64,
    abandoned: AtomicU64,
    claims_lost: AtomicU64,
    errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

struct Ctx {
    jobs: Jobs,
    processor: Arc<dyn Processor>,
    consumer: String,
    /// Messages this worker holds (buffered or in process), with when their
    /// claim was last renewed.
    held: Mutex<HashMap<String, Instant>>,
    stats: Stats,
    /// Cancelled when the drain time is up: retry loops give up.
    abandon: CancellationToken,
}

impl Ctx {
    fn held(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn max_deliveries(&self) -> u32 {
        self.jobs.settings().max_deliveries
    }

    /// Runs `f` until it succeeds or fails for good; Redis errors are retried
    /// with backoff. `None`: the drain time ran out first.
    async fn retry<T, F, Fut>(&self, what: &str, mut f: F) -> Option<Result<T, JobError>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, JobError>>,
    {
        let mut backoff = Backoff::default();
        loop {
            match f().await {
                Err(JobError::Redis(e)) => {
                    bump(&self.stats.errors);
                    let attempt = backoff.attempt + 1;
                    if attempt.is_power_of_two() {
                        tracing::warn!(consumer = %self.consumer, what, attempt, error = %e, "jobs: queue call failed; retrying");
                    }
                    tokio::select! {
                        _ = self.abandon.cancelled() => return None,
                        _ = tokio::time::sleep(backoff.next()) => {}
                    }
                }
                other => return Some(other),
            }
        }
    }

    async fn finish(&self, d: &Delivery, outcome: Finish) -> bool {
        let consumer = self.consumer.as_str();
        let store = self.jobs.store();
        match self.retry("finish", || store.finish(d, consumer, &outcome)).await {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                tracing::error!(consumer, msg = %d.msg_id, error = %e, "jobs: could not acknowledge a chunk; it will be redelivered");
                false
            }
            None => false,
        }
    }
}

/// Exponential backoff with jitter, 100 ms to 5 s.
#[derive(Default)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let base = Duration::from_millis(100) * 2u32.pow(self.attempt.min(6));
        self.attempt = self.attempt.saturating_add(1);
        let base = base.min(Duration::from_secs(5));
        base / 2 + base.mul_f64(fastrand::f64() / 2.0)
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Takes a message out of the held set when its task ends, however it ends.
struct Release {
    ctx: Arc<Ctx>,
    id: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.ctx.held().remove(&self.id);
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

async fn run_chunk(ctx: Arc<Ctx>, mut d: Delivery) {
    let _release = Release { ctx: ctx.clone(), id: d.msg_id.clone() };
    let max = ctx.max_deliveries();
    if d.deliveries > max {
        let reason = format!("delivered {} times without success (max_deliveries = {max})", d.deliveries);
        tracing::warn!(consumer = %ctx.consumer, job = ?d.job, chunk = ?d.chunk, "jobs: dead-lettering a chunk: {reason}");
        if ctx.finish(&d, Finish::Dead(reason)).await {
            bump(&ctx.stats.dead);
        }
        return;
    }
    let posts = match std::mem::replace(&mut d.posts, Ok(Vec::new())) {
        Ok(posts) => posts,
        Err(reason) => {
            tracing::error!(consumer = %ctx.consumer, msg = %d.msg_id, "jobs: dead-lettering an undecodable message: {reason}");
            if ctx.finish(&d, Finish::Dead(reason)).await {
                bump(&ctx.stats.dead);
            }
            return;
        }
    };
    let store = ctx.jobs.store();
    let options = match ctx.retry("begin", || store.begin(&d)).await {
        None => return,
        Some(Ok(Begin::Run(options))) => options,
        Some(Ok(Begin::Skip(why))) => {
            tracing::debug!(consumer = %ctx.consumer, job = ?d.job, chunk = ?d.chunk, why, "jobs: skipping a chunk");
            if ctx.finish(&d, Finish::Skip).await {
                bump(&ctx.stats.skipped);
            }
            return;
        }
        Some(Err(e)) => {
            let reason = format!("cannot start: {e}");
            if ctx.finish(&d, Finish::Dead(reason)).await {
                bump(&ctx.stats.dead);
            }
            return;
        }
    };
    let Some(job) = d.job.clone() else { return };
    let result = AssertUnwindSafe(ctx.processor.process(&job, &options, posts))
        .catch_unwind()
        .await
        .unwrap_or_else(|p| Err(ProcessError::retryable(format!("processor panicked: {}", panic_message(&*p)))));
    match result {
        Ok(report) => {
            if ctx.finish(&d, Finish::Done(report)).await {
                bump(&ctx.stats.done);
            }
        }
        Err(e) => {
            bump(&ctx.stats.failed);
            if e.permanent || d.deliveries >= max {
                let reason = if e.permanent {
                    format!("permanent error: {}", e.message)
                } else {
                    format!("failed on delivery {} of {max}: {}", d.deliveries, e.message)
                };
                tracing::warn!(consumer = %ctx.consumer, job = %job, chunk = ?d.chunk, "jobs: dead-lettering a chunk: {reason}");
                if ctx.finish(&d, Finish::Dead(reason)).await {
                    bump(&ctx.stats.dead);
                }
            } else {
                tracing::warn!(
                    consumer = %ctx.consumer, job = %job, chunk = ?d.chunk, delivery = d.deliveries, error = %e.message,
                    "jobs: chunk failed; it will be redelivered after ack_wait"
                );
                let note = format!("chunk {} delivery {}: {}", d.chunk.unwrap_or_default(), d.deliveries, e.message);
                if let Err(e) = store.note_error(&job, &note).await {
                    tracing::debug!(error = %e, "jobs: could not record the error on the job");
                }
                // Dropping `_release` stops the claim extension: the message
                // idles out and is reclaimed.
            }
        }
    }
}

/// Renews the claim on held messages before they idle out.
async fn extend_loop(ctx: Arc<Ctx>, stop: CancellationToken) {
    let ack_wait = ctx.jobs.settings().ack_wait;
    let tick = (ack_wait / 6).max(Duration::from_millis(10));
    let due_after = ack_wait / 3;
    let store = ctx.jobs.store();
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        let now = Instant::now();
        let due: Vec<String> =
            ctx.held().iter().filter(|(_, t)| now.duration_since(**t) >= due_after).map(|(id, _)| id.clone()).collect();
        if due.is_empty() {
            continue;
        }
        match store.extend(&ctx.consumer, &due).await {
            Ok(kept) => {
                failures = 0;
                let kept: HashSet<String> = kept.into_iter().collect();
                let mut held = ctx.held();
                for id in due {
                    if kept.contains(&id) {
                        if let Some(t) = held.get_mut(&id) {
                            *t = now;
                        }
                    } else if held.remove(&id).is_some() {
                        bump(&ctx.stats.claims_lost);
                        tracing::warn!(consumer = %ctx.consumer, msg = %id, "jobs: no longer holds a chunk (another worker took it over, or finished it)");
                    }
                }
            }
            Err(e) => {
                bump(&ctx.stats.errors);
                failures += 1;
                if failures.is_power_of_two() {
                    tracing::warn!(consumer = %ctx.consumer, error = %e, failures, "jobs: could not extend claims");
                }
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Worker {
    /// `consumer_name` must be unique among live workers of the same queue
    /// (see [`unique_consumer_name`]); a restarted worker may reuse its
    /// name.
    pub fn new(jobs: Jobs, processor: Arc<dyn Processor>, consumer_name: String) -> Self {
        Self { jobs, processor, consumer: consumer_name }
    }

    pub fn consumer_name(&self) -> &str {
        &self.consumer
    }

    /// Runs until `shutdown` is cancelled, then stops fetching, hands back
    /// what it fetched but had not started, gives the chunks in process up
    /// to `drain` to finish (and be acknowledged), and returns what it did.
    ///
    /// Queue errors (Redis down, restarting) never end the loop: it backs
    /// off and retries, and a chunk processed while Redis was away is
    /// acknowledged once it is back.
    pub async fn run(self, shutdown: CancellationToken, drain: Duration) -> Result<WorkerReport, JobError> {
        let settings = self.jobs.settings().clone();
        let store = self.jobs.store();
        let mut reader = store.reader()?;
        let ctx = Arc::new(Ctx {
            jobs: self.jobs.clone(),
            processor: self.processor,
            consumer: self.consumer,
            held: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            abandon: CancellationToken::new(),
        });
        let consumer = ctx.consumer.clone();
        tracing::info!(consumer, backend = ?settings.backend, "jobs: worker started");

        let stop_extending = CancellationToken::new();
        let extender = AbortOnDrop(tokio::spawn(extend_loop(ctx.clone(), stop_extending.clone())));
        let slots = Arc::new(Semaphore::new(settings.concurrency));
        let mut inflight: JoinSet<()> = JoinSet::new();
        let mut buffer: std::collections::VecDeque<Delivery> = std::collections::VecDeque::new();
        let reclaim_every = (settings.ack_wait / 2).clamp(Duration::from_millis(50), Duration::from_secs(5));
        let mut next_reclaim = Instant::now();
        let mut cursor = String::new();
        let mut backoff = Backoff::default();
        let mut next_prune = Instant::now();

        loop {
            while let Some(r) = inflight.try_join_next() {
                note_join(&ctx, r);
            }
            while !buffer.is_empty() {
                let Ok(permit) = slots.clone().try_acquire_owned() else { break };
                let Some(d) = buffer.pop_front() else { break };
                let ctx = ctx.clone();
                inflight.spawn(async move {
                    let _permit = permit;
                    run_chunk(ctx, d).await;
                });
            }
            if shutdown.is_cancelled() {
                break;
            }
            let now = Instant::now();
            if now >= next_prune {
                next_prune = now + Duration::from_secs(3600);
                match store.prune_consumers().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(consumer, pruned = n, "jobs: deleted idle consumers holding nothing"),
                    Err(e) => tracing::debug!(error = %e, "jobs: could not prune consumers"),
                }
            }
            let room = settings.prefetch.saturating_sub(buffer.len());
            if room > 0 {
                let now = Instant::now();
                let fetched = if now >= next_reclaim {
                    next_reclaim = now + reclaim_every;
                    store.reclaim(&mut cursor, &consumer, room, settings.ack_wait).await.map(|v| (v, true))
                } else {
                    let until_reclaim = next_reclaim - now;
                    // Block only with nothing buffered: a blocked read cannot
                    // start chunks when slots free up.
                    let block = buffer.is_empty().then(|| until_reclaim.clamp(Duration::from_millis(10), MAX_BLOCK));
                    store.read(&mut reader, &consumer, room, block).await.map(|v| (v, false))
                };
                match fetched {
                    Ok((batch, reclaimed)) => {
                        backoff.reset();
                        let got = !batch.is_empty();
                        let mut held = ctx.held();
                        for d in batch {
                            // Reclaiming can hand back a message this worker
                            // still holds (its claim lapsed while Redis was
                            // away): the task holding it finishes it.
                            if let Some(t) = held.get_mut(&d.msg_id) {
                                *t = Instant::now();
                                continue;
                            }
                            if reclaimed {
                                bump(&ctx.stats.reclaimed);
                                tracing::debug!(consumer, msg = %d.msg_id, deliveries = d.deliveries, "jobs: reclaimed a chunk");
                            }
                            held.insert(d.msg_id.clone(), Instant::now());
                            buffer.push_back(d);
                        }
                        drop(held);
                        if got || buffer.is_empty() {
                            continue;
                        }
                    }
                    Err(e) => {
                        bump(&ctx.stats.errors);
                        let attempt = backoff.attempt + 1;
                        if attempt.is_power_of_two() {
                            tracing::warn!(consumer, attempt, error = %e, "jobs: fetching from the queue failed; backing off");
                        }
                        let pause = backoff.next();
                        tokio::select! {
                            _ = shutdown.cancelled() => {}
                            _ = tokio::time::sleep(pause) => {}
                        }
                        // After a Redis restart without its data the group is
                        // gone: recreate it (a no-op otherwise).
                        if let Err(e) = store.ensure_group().await {
                            tracing::debug!(error = %e, "jobs: could not check the consumer group");
                        }
                        continue;
                    }
                }
            }
            // Buffer full, or nothing new: wait for a slot, the next reclaim,
            // or shutdown.
            tokio::select! {
                _ = shutdown.cancelled() => {}
                Some(r) = inflight.join_next(), if !inflight.is_empty() => note_join(&ctx, r),
                _ = tokio::time::sleep_until(next_reclaim) => {}
            }
        }

        // Drain.
        let deadline = Instant::now() + drain;
        tracing::info!(consumer, in_flight = inflight.len(), buffered = buffer.len(), "jobs: worker draining");
        if !buffer.is_empty() {
            let ids: Vec<(String, u32)> = buffer.iter().map(|d| (d.msg_id.clone(), d.deliveries)).collect();
            let released = tokio::time::timeout_at(deadline, ctx.retry("release", || store.release(&consumer, &ids)))
                .await
                .ok()
                .flatten();
            match released {
                Some(Ok(())) => {
                    ctx.stats.released.fetch_add(ids.len() as u64, Ordering::Relaxed);
                }
                _ => tracing::warn!(
                    consumer,
                    n = ids.len(),
                    "jobs: could not hand back buffered chunks; they will be redelivered after ack_wait"
                ),
            }
            let mut held = ctx.held();
            for (id, _) in &ids {
                held.remove(id);
            }
        }
        let drained = tokio::time::timeout_at(deadline, async {
            while let Some(r) = inflight.join_next().await {
                note_join(&ctx, r);
            }
        })
        .await;
        if drained.is_err() {
            ctx.abandon.cancel();
            // Retry loops stop at once; processors get a moment to notice.
            let _ = tokio::time::timeout(Duration::from_millis(100), async {
                while let Some(r) = inflight.join_next().await {
                    note_join(&ctx, r);
                }
            })
            .await;
            let left = inflight.len() as u64;
            ctx.stats.abandoned.fetch_add(left, Ordering::Relaxed);
            if left > 0 {
                tracing::warn!(
                    consumer,
                    chunks = left,
                    "jobs: drain time ran out; abandoning chunks in process (they will be redelivered)"
                );
            }
            inflight.abort_all();
            while inflight.join_next().await.is_some() {}
        }
        stop_extending.cancel();
        drop(extender);

        let s = &ctx.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let report = WorkerReport {
            chunks_done: get(&s.done),
            chunks_failed: get(&s.failed),
            chunks_dead: get(&s.dead),
            chunks_skipped: get(&s.skipped),
            chunks_reclaimed: get(&s.reclaimed),
            chunks_released: get(&s.released),
            chunks_abandoned: get(&s.abandoned),
            claims_lost: get(&s.claims_lost),
            queue_errors: get(&s.errors),
        };
        tracing::info!(consumer, ?report, "jobs: worker stopped");
        Ok(report)
    }
}

fn note_join(ctx: &Ctx, r: Result<(), tokio::task::JoinError>) {
    if let Err(e) = r {
        if e.is_panic() {
            // run_chunk catches processor panics; this would be our own bug.
            bump(&ctx.stats.failed);
            tracing::error!(consumer = %ctx.consumer, "jobs: a chunk task panicked; the chunk will be redelivered");
        }
    }
}
