//! What the workers and the [`crate::Jobs`] handle need from a backend, and
//! the dispatch between the two backends.

use std::time::Duration;

use osprey_types::analysis::Post;
use serde_json::Value;

use crate::memory::Memory;
use crate::redis_queue::{Reader, RedisQueue};
use crate::{ChunkReport, DeadLetter, JobError, JobId, JobSpec, JobStatus, QueueStats};

/// One delivery of one queue message to one worker.
#[derive(Debug)]
pub(crate) struct Delivery {
    /// The message id (a stream id in Redis).
    pub msg_id: String,
    /// `None` when the message could not be decoded.
    pub job: Option<JobId>,
    pub chunk: Option<u64>,
    /// Posts the message carries (as written at append time).
    pub n_posts: u64,
    /// The posts, or why they could not be decoded.
    pub posts: Result<Vec<Post>, String>,
    /// How many times it has been delivered, this delivery included.
    pub deliveries: u32,
}

/// What a worker should do with a delivery.
#[derive(Debug)]
pub(crate) enum Begin {
    /// Process it with these job options.
    Run(Value),
    /// Acknowledge it without processing (the job was cancelled, has expired,
    /// or already counted this chunk).
    Skip(&'static str),
}

/// How a delivery ended; [`Store::finish`] counts it (once per chunk) and
/// acknowledges it, atomically.
#[derive(Debug)]
pub(crate) enum Finish {
    Done(ChunkReport),
    Dead(String),
    Skip,
}

/// The backend behind a [`crate::Jobs`].
pub(crate) enum Store {
    Memory(Box<Memory>),
    Redis(Box<RedisQueue>),
}

/// A worker's connection for blocking reads.
pub(crate) enum ReaderConn {
    Memory,
    Redis(Box<Reader>),
}

macro_rules! dispatch {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            Store::Memory($b) => $e,
            Store::Redis($b) => $e,
        }
    };
}

impl Store {
    pub async fn create(&self, id: &JobId, spec: &JobSpec) -> Result<(), JobError> {
        dispatch!(self, b => b.create(id, spec).await)
    }

    pub async fn append(&self, id: &JobId, chunks: Vec<Vec<Post>>) -> Result<(), JobError> {
        dispatch!(self, b => b.append(id, chunks).await)
    }

    pub async fn seal(&self, id: &JobId) -> Result<(), JobError> {
        dispatch!(self, b => b.seal(id).await)
    }

    pub async fn status(&self, id: &JobId) -> Result<Option<JobStatus>, JobError> {
        dispatch!(self, b => b.status(id).await)
    }

    pub async fn cancel(&self, id: &JobId) -> Result<bool, JobError> {
        dispatch!(self, b => b.cancel(id).await)
    }

    pub async fn list(&self, limit: usize) -> Result<Vec<JobStatus>, JobError> {
        dispatch!(self, b => b.list(limit).await)
    }

    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, JobError> {
        dispatch!(self, b => b.dead_letters(limit).await)
    }

    pub async fn stats(&self) -> Result<QueueStats, JobError> {
        dispatch!(self, b => b.stats().await)
    }

    pub fn reader(&self) -> Result<ReaderConn, JobError> {
        match self {
            Store::Memory(_) => Ok(ReaderConn::Memory),
            Store::Redis(r) => Ok(ReaderConn::Redis(Box::new(r.reader()?))),
        }
    }

    /// New messages (never delivered, or released); waits up to `block`
    /// when there are none.
    pub async fn read(
        &self,
        reader: &mut ReaderConn,
        consumer: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Delivery>, JobError> {
        match (self, reader) {
            (Store::Memory(m), _) => Ok(m.read(consumer, count, block).await),
            (Store::Redis(r), ReaderConn::Redis(reader)) => r.read(reader, consumer, count, block).await,
            (Store::Redis(_), ReaderConn::Memory) => Err(JobError::Redis("no reader connection".into())),
        }
    }

    /// Takes over up to `count` messages delivered at least `min_idle` ago
    /// and not acknowledged since (their worker died, or gave up on them).
    /// `cursor` carries the scan position from call to call.
    pub async fn reclaim(
        &self,
        cursor: &mut String,
        consumer: &str,
        count: usize,
        min_idle: Duration,
    ) -> Result<Vec<Delivery>, JobError> {
        dispatch!(self, b => b.reclaim(cursor, consumer, count, min_idle).await)
    }

    /// Resets the idle time of the messages this consumer still owns; returns
    /// those it still owns.
    pub async fn extend(&self, consumer: &str, ids: &[String]) -> Result<Vec<String>, JobError> {
        dispatch!(self, b => b.extend(consumer, ids).await)
    }

    /// Hands unstarted messages back for immediate redelivery, without
    /// counting the delivery.
    pub async fn release(&self, consumer: &str, ids: &[(String, u32)]) -> Result<(), JobError> {
        dispatch!(self, b => b.release(consumer, ids).await)
    }

    pub async fn begin(&self, d: &Delivery) -> Result<Begin, JobError> {
        dispatch!(self, b => b.begin(d).await)
    }

    pub async fn finish(&self, d: &Delivery, consumer: &str, outcome: &Finish) -> Result<(), JobError> {
        dispatch!(self, b => b.finish(d, consumer, outcome).await)
    }

    /// Records a processing error on the job (for its status) while the chunk
    /// waits for redelivery.
    pub async fn note_error(&self, job: &JobId, error: &str) -> Result<(), JobError> {
        dispatch!(self, b => b.note_error(job, error).await)
    }

    /// Recreates the consumer group when it went missing (Redis restarted
    /// without its data); a no-op in memory.
    pub async fn ensure_group(&self) -> Result<bool, JobError> {
        match self {
            Store::Memory(_) => Ok(false),
            Store::Redis(r) => r.ensure_group().await,
        }
    }

    /// Deletes long-idle consumers that hold nothing (workers gone for good).
    pub async fn prune_consumers(&self) -> Result<u64, JobError> {
        match self {
            Store::Memory(_) => Ok(0),
            Store::Redis(r) => r.prune_consumers().await,
        }
    }
}
