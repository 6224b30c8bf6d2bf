//! Batch jobs: `POST /v1/jobs` queues posts (or a source to backfill) on
//! the configured queue (`[jobs]`: in-process by default, Redis Streams to
//! share the work between `osprey worker`s on any number of machines), and
//! [`AnalysisProcessor`] is what a worker does with each chunk: the
//! one-pass analysis, stored, then a flush of the store's writer before the
//! chunk is acknowledged.
//!
//! Delivery is at least once; writes are idempotent (posts upserted by id,
//! analyses inserted under ids derived from content and signature, stored
//! results reused), so a chunk delivered twice stores each post once.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use osprey_jobs::{ChunkReport, JobId, Jobs, ProcessError, Processor};
use osprey_types::analysis::{AnalyzeRequest, Post};
use osprey_types::error::ErrorCode;

use crate::analysis::Analyzer;
use crate::error::ApiError;

/// A job's options are the `/v1/analyze` request its chunks run, without
/// posts; every chunk gets its posts put in and storage and reuse on.
fn request(options: &AnalyzeRequest, posts: Vec<Post>) -> AnalyzeRequest {
    AnalyzeRequest { posts, store: Some(true), reuse: Some(true), ..options.clone() }
}

/// Analyses and stores a chunk, as `/v1/analyze` would with storage on.
pub struct AnalysisProcessor {
    pub analyzer: Arc<Analyzer>,
    pub store: Option<osprey_store::Store>,
}

fn is_client(e: &ApiError) -> bool {
    matches!(
        e.code,
        ErrorCode::ValidationError | ErrorCode::InputTooLong | ErrorCode::InvalidRequest | ErrorCode::NotFound
    )
}

impl AnalysisProcessor {
    /// Stored posts among `n` results; a result not stored (the writer's
    /// queue stayed full) makes the chunk retryable.
    async fn run(&self, spec: &AnalyzeRequest, posts: Vec<Post>) -> Result<ChunkReport, ProcessError> {
        let n = posts.len() as u64;
        let resp = match self.analyzer.analyze_with(request(spec, posts.clone()), false).await {
            Ok(r) => r,
            // One bad post refuses the request: the others go one by one.
            Err(e) if is_client(&e) && posts.len() > 1 => {
                let mut report = ChunkReport { stored: 0, failed: 0 };
                for p in posts {
                    let id = p.id.clone();
                    match Box::pin(self.run(spec, vec![p])).await {
                        Ok(r) => {
                            report.stored += r.stored;
                            report.failed += r.failed;
                        }
                        Err(e) if e.permanent => {
                            tracing::warn!(post = %id, error = %e.message, "job post refused");
                            report.failed += 1;
                        }
                        Err(e) => return Err(e),
                    }
                }
                return Ok(report);
            }
            Err(e) if is_client(&e) => return Err(ProcessError::permanent(e.message)),
            Err(e) => return Err(ProcessError::retryable(e.message)),
        };
        if let Some(store) = &self.store {
            store.flush().await.map_err(|e| ProcessError::retryable(format!("store flush: {e}")))?;
            if resp.results.iter().any(|r| r.stored_id.is_none()) {
                return Err(ProcessError::retryable("the store's queue stayed full; some posts were not stored"));
            }
        }
        Ok(ChunkReport { stored: n, failed: 0 })
    }
}

impl Processor for AnalysisProcessor {
    fn process<'a>(
        &'a self,
        _job: &'a JobId,
        options: &'a serde_json::Value,
        posts: Vec<Post>,
    ) -> BoxFuture<'a, Result<ChunkReport, ProcessError>> {
        Box::pin(async move {
            // The options are a request without posts (`posts` may be left out).
            let mut options = options.clone();
            if let Some(o) = options.as_object_mut() {
                o.entry("posts").or_insert_with(|| serde_json::Value::Array(Vec::new()));
            }
            let spec: AnalyzeRequest =
                serde_json::from_value(options).map_err(|e| ProcessError::permanent(format!("job options: {e}")))?;
            self.run(&spec, posts).await
        })
    }
}

/// Reads `source` until it is finished or caught up (an empty batch), at
/// most `max_posts` posts or `deadline`, appending to `job`; then seals it.
pub async fn backfill(
    jobs: Jobs,
    job: JobId,
    config: osprey_watch::SourceConfig,
    max_posts: usize,
    deadline: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let until = tokio::time::Instant::now() + deadline;
    let mut read = 0usize;
    let result: Result<(), String> = async {
        let mut source = config.build().map_err(|e| e.to_string())?;
        loop {
            let batch = tokio::select! {
                b = source.poll() => b,
                () = stop.cancelled() => return Err("the server shut down during the backfill".into()),
                () = tokio::time::sleep_until(until) => return Err("the backfill ran out of time".into()),
            };
            if let Some(e) = &batch.error {
                tracing::warn!(%job, error = %e, "backfill source error");
                if !e.is_transient() {
                    return Err(e.to_string());
                }
            }
            let caught_up = batch.posts.is_empty() && batch.error.is_none();
            let mut posts: Vec<Post> = batch.posts.into_iter().map(osprey_watch::SourcePost::into_post).collect();
            posts.truncate(max_posts - read);
            read += posts.len();
            if !posts.is_empty() {
                jobs.append(&job, posts).await.map_err(|e| e.to_string())?;
            }
            match batch.next_poll {
                None => return Ok(()),
                _ if caught_up || read >= max_posts => return Ok(()),
                Some(wait) => {
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = stop.cancelled() => return Err("the server shut down during the backfill".into()),
                    }
                }
            }
        }
    }
    .await;
    if let Err(e) = &result {
        tracing::error!(%job, read, error = %e, "backfill stopped early; sealing what was read");
    }
    if let Err(e) = jobs.seal(&job).await {
        tracing::error!(%job, error = %e, "could not seal the backfill job");
    }
}
