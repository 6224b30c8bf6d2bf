//! Batch analysis jobs: a job is a batch of posts to analyse and store,
//! split into chunks that workers take off a queue.
//!
//! Two backends share one API and one set of delivery rules:
//!
//! * **memory** (the default): everything in this process. The embedded
//!   server works with no Redis; workers must run in the same process
//!   (clones of one [`Jobs`]); nothing survives a restart.
//! * **redis**: a Redis Stream read through a consumer group, so any number
//!   of `osprey worker` processes share the work, and jobs survive worker
//!   crashes and (with AOF) Redis restarts.
//!
//! # Life of a job
//!
//! [`Jobs::create`] makes a job record; [`Jobs::append`] splits posts into
//! chunks of `chunk_size` and enqueues one message per chunk (a backfill
//! appends as it reads its source); [`Jobs::seal`] says no more will come
//! ([`Jobs::submit`] does all three). A [`Worker`] takes a chunk, runs the
//! [`Processor`], then counts and acknowledges the chunk. A sealed job whose
//! chunks have all finished ends **completed**, or **failed** when any chunk
//! was dead-lettered (its posts are in [`JobStatus::failed`], the chunk
//! itself in the dead-letter stream, [`Jobs::dead_letters`]): a job whose
//! every post was not processed is never reported completed. Posts the
//! processor itself reported failing ([`ChunkReport::failed`]) do not fail
//! the job; they are counted in [`JobStatus::rejected`]. [`Jobs::cancel`]
//! ends a job at once: chunks not yet started are acknowledged unprocessed
//! ([`JobStatus::skipped`]), chunks in process finish and are counted.
//!
//! # Guarantees
//!
//! * **At-least-once delivery.** A chunk is acknowledged only after the
//!   processor returned `Ok` and the chunk was counted. A chunk whose worker
//!   died (crash, `SIGKILL`, dropped future) is redelivered to another worker
//!   once it has been idle for `ack_wait`. A worker still processing a chunk
//!   keeps renewing its claim, so a slow but alive worker is not robbed.
//! * **Counted exactly once.** Counting is keyed by chunk index (a set of
//!   counted chunks per job, checked and updated in the same atomic step as
//!   the counters and the acknowledgement), so a chunk processed twice moves
//!   the counters once, and a finished job has
//!   `done + failed + skipped == total`.
//! * **Exactly-once effects need idempotent writes.** The same chunk can be
//!   processed more than once (a worker stored it, then died before
//!   acknowledging); the [`Processor`] must make its writes idempotent (keyed
//!   by post id) for the end result to be as if each post were processed
//!   once.
//! * **Poison chunks end.** A chunk delivered `max_deliveries` times without
//!   success (processor errors, or workers dying on it) is moved to the
//!   dead-letter stream with the reason, its delivery count and the worker
//!   that gave up, and counted in [`JobStatus::failed`].
//! * **Redis outages are ridden out.** Every Redis call of a worker is
//!   retried with backoff while the connection manager reconnects; a chunk
//!   processed while Redis was away is acknowledged when it returns. With
//!   `appendonly yes` (and `appendfsync always` to lose nothing) a restarted
//!   Redis resumes where it stopped; without persistence the consumer group
//!   is recreated (logged as an error) and the lost jobs are gone.
//!
//! # Redis layout
//!
//! With `prefix` `P` (default `osprey:jobs`):
//!
//! | key | type | content |
//! |---|---|---|
//! | `P:stream` | stream | one entry per chunk not yet acknowledged: `job`, `chunk` (index), `n` (posts), `posts` (JSON array); consumer group `workers` (created with `MKSTREAM` from `0`) |
//! | `P:job:<id>` | hash | the job record: `state`, `sealed`, `label`, `options` (JSON), `expected`, `total`, `done`, `failed`, `skipped`, `stored`, `rejected`, `chunks_total`, `chunks_done`, `chunks_dead`, `chunks_skipped`, `created_at`, `started_at`, `finished_at` (epoch ms), `last_error` |
//! | `P:job:<id>:done` | set | indices of the chunks already counted |
//! | `P:jobs` | sorted set | job ids by creation time (epoch ms), for listing |
//! | `P:dead` | stream | dead letters: the chunk's fields plus `reason`, `deliveries`, `consumer`, `dead_at`, `msg_id`; capped at about 100 000 entries |
//!
//! Every change touching several keys is one Lua script (atomic, and one
//! transaction in the AOF). An acknowledged message is also deleted from the
//! stream, so the stream holds only outstanding work. A finished job's hash
//! and set expire `retention` after it finished; listing entries of expired
//! jobs are dropped lazily. A job never sealed never finishes and never
//! expires: producers must seal (or cancel) what they create.
//!
//! Workers read with `XREADGROUP GROUP workers <consumer> COUNT <prefetch>
//! BLOCK <=1000 STREAMS P:stream >` on a connection of their own, reclaim
//! with `XAUTOCLAIM P:stream workers <consumer> <ack_wait>` (which raises a
//! message's delivery count, read back from `XPENDING`), renew their claims
//! with `XCLAIM ... JUSTID` (which does not), and hand unstarted messages
//! back at shutdown with `XCLAIM ... IDLE <1 day> RETRYCOUNT <count - 1>`.
//! A consumer name must be unique among live workers
//! ([`unique_consumer_name`]); consumers idle for an hour that hold nothing
//! are deleted from the group.
//!
//! # Caveats
//!
//! * An append is split into script calls of at most 256 chunks / 4 MiB;
//!   each call is atomic, a whole append is not. When one fails midway (Redis
//!   went away), [`JobStatus::total`] says how much was taken; a retried
//!   append may enqueue posts twice (processed twice, counted twice in
//!   `total`).
//! * Delivery counts are only as durable as Redis: `XCLAIM`/`XAUTOCLAIM`
//!   state is in the AOF, but a chunk whose worker died before a restart
//!   that lost data is simply gone.
//! * An outage longer than `ack_wait` lets claims lapse: when Redis returns,
//!   a chunk in process may be reclaimed (and processed again) by another
//!   worker, which also uses up one of its `max_deliveries`. Repeated long
//!   outages can so dead-letter a healthy chunk; keep `max_deliveries`
//!   comfortably above 1 in production.
//! * Standalone Redis (or one primary) only: the scripts touch keys they do
//!   not declare, which Redis Cluster refuses.
//! * [`Jobs::connect`] needs Redis up (it fails after 10 s); once connected,
//!   every later outage is ridden out.

mod error;
mod memory;
mod queue;
mod redis_queue;
mod scripts;
mod settings;
mod types;
mod worker;

use std::sync::Arc;

use osprey_types::analysis::Post;

pub use error::{JobError, ProcessError};
pub use settings::{Backend, JobSettings};
pub use types::{
    ChunkReport, DeadLetter, JobId, JobSpec, JobState, JobStatus, QueueStats, MAX_LABEL_BYTES, MAX_OPTIONS_BYTES,
};
pub use worker::{unique_consumer_name, Processor, Worker, WorkerReport};

use queue::Store;

/// Most entries [`Jobs::list`] and [`Jobs::dead_letters`] return.
pub const MAX_LIST: usize = 10_000;

/// The job API: create, feed, inspect and cancel jobs. Cheap to clone; all
/// clones share one backend (one in-process queue, or one Redis
/// connection).
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    settings: JobSettings,
    store: Store,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").field("settings", &self.inner.settings).finish()
    }
}

impl Jobs {
    /// Validates the settings and opens the backend: for Redis, connects
    /// (failing if Redis cannot be reached within 10 s) and creates the
    /// consumer group if needed.
    pub async fn connect(settings: &JobSettings) -> Result<Jobs, JobError> {
        settings.validate()?;
        let store = match settings.backend {
            Backend::Memory => Store::Memory(Box::new(memory::Memory::new(settings))),
            Backend::Redis => Store::Redis(Box::new(redis_queue::RedisQueue::connect(settings).await?)),
        };
        Ok(Jobs { inner: Arc::new(Inner { settings: settings.clone(), store }) })
    }

    pub fn settings(&self) -> &JobSettings {
        &self.inner.settings
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Creates an empty, unsealed job.
    pub async fn create(&self, spec: JobSpec) -> Result<JobId, JobError> {
        types::validate_spec(&spec, self.inner.settings.max_posts_per_job)?;
        let id = JobId::new();
        self.store().create(&id, &spec).await?;
        Ok(id)
    }

    /// Enqueues `posts` in chunks of `chunk_size`. Refuses a sealed or
    /// cancelled job, and posts past `max_posts_per_job` (or past the job's
    /// announced total); a job with an announced total seals itself when the
    /// total is reached.
    pub async fn append(&self, id: &JobId, posts: Vec<Post>) -> Result<(), JobError> {
        let max = self.inner.settings.max_posts_per_job as u64;
        if posts.len() as u64 > max {
            return Err(JobError::TooLarge { requested: posts.len() as u64, limit: max });
        }
        let size = self.inner.settings.chunk_size;
        let mut chunks = Vec::with_capacity(posts.len().div_ceil(size));
        let mut posts = posts.into_iter().peekable();
        while posts.peek().is_some() {
            chunks.push(posts.by_ref().take(size).collect::<Vec<_>>());
        }
        self.store().append(id, chunks).await
    }

    /// No more posts: the job finishes once its chunks have. Sealing twice
    /// is harmless; sealing a cancelled job is [`JobError::Cancelled`].
    pub async fn seal(&self, id: &JobId) -> Result<(), JobError> {
        self.store().seal(id).await
    }

    /// Create, append and seal. When the append fails midway the job is
    /// cancelled (so that what was enqueued is skipped) and the error
    /// returned.
    pub async fn submit(&self, spec: JobSpec, posts: Vec<Post>) -> Result<JobId, JobError> {
        let max = self.inner.settings.max_posts_per_job as u64;
        let limit = spec.sealed_total.map_or(max, |t| t.min(max));
        if posts.len() as u64 > limit {
            return Err(JobError::TooLarge { requested: posts.len() as u64, limit });
        }
        let id = self.create(spec).await?;
        let fed = async {
            self.append(&id, posts).await?;
            self.seal(&id).await
        };
        match fed.await {
            Ok(()) => Ok(id),
            // Sealed already: it reached its announced total.
            Err(JobError::Sealed(_)) => Ok(id),
            Err(e) => {
                if let Err(cancel) = self.cancel(&id).await {
                    tracing::warn!(job = %id, error = %cancel, "jobs: could not cancel a job whose submission failed");
                }
                Err(e)
            }
        }
    }

    /// The job's status; `None` when there is no such job (or it expired).
    pub async fn status(&self, id: &JobId) -> Result<Option<JobStatus>, JobError> {
        self.store().status(id).await
    }

    /// Cancels a job: true when this call cancelled it, false when it had
    /// already finished (completed, failed or cancelled).
    pub async fn cancel(&self, id: &JobId) -> Result<bool, JobError> {
        self.store().cancel(id).await
    }

    /// The `limit` (at most [`MAX_LIST`]) most recently created jobs,
    /// newest first.
    pub async fn list(&self, limit: usize) -> Result<Vec<JobStatus>, JobError> {
        self.store().list(limit.min(MAX_LIST)).await
    }

    /// The `limit` (at most [`MAX_LIST`]) most recent dead letters, newest
    /// first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, JobError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.store().dead_letters(limit.min(MAX_LIST)).await
    }

    /// Queue depth.
    pub async fn queue_stats(&self) -> Result<QueueStats, JobError> {
        self.store().stats().await
    }
}
