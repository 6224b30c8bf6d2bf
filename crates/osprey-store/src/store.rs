//! [`Store`]: the handle everything goes through. Opening connects,
//! migrates and starts the writer and (PostgreSQL) the aggregate refresher;
//! closing drains the writer and closes the pool.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use crate::db::{self, on_pool, Pool};
use crate::timing::{QueryStats, Timings, WriterStats};
use crate::writer::{self, WriterHandle, WriterOutcome};
use crate::{AnalysisRecord, Backend, CloseReport, MigrationReport, StoreError, StoreSettings, SubmitError};

/// Storage of posts, analyses, trajectories and topic sets. Cheap to clone:
/// every clone is the same store.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub pool: Pool,
    pub timings: Arc<Timings>,
    pub writer: WriterHandle,
    pub settings: StoreSettings,
    close: Mutex<CloseState>,
    stop_refresh: watch::Sender<bool>,
}

struct CloseState {
    writer: Option<JoinHandle<WriterOutcome>>,
    report: Option<CloseReport>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend()).finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to the database the settings name (an SQLite file under
    /// `data_dir` by default), applies pending migrations, and starts the
    /// writer task and, on PostgreSQL, the aggregate refresh task.
    pub async fn open(settings: &StoreSettings, data_dir: &Path) -> Result<Store, StoreError> {
        settings.validate().map_err(StoreError::Settings)?;
        crate::metrics::describe();
        let pool = db::connect(settings, data_dir).await?;
        let backend = pool.backend();
        // SQLite cannot cancel a running statement from outside, so the
        // store bounds its wait instead; PostgreSQL enforces the limit.
        let client_timeout = (backend == Backend::Sqlite).then_some(settings.statement_timeout);
        let timings = Arc::new(Timings::new(settings.slow_query_threshold, client_timeout));
        let report = db::migrate(&pool, &timings).await?;
        tracing::info!(url = %settings.display_url(data_dir), ?backend, versions = report.versions.len(), "store open");
        let (writer, writer_task) = writer::spawn(pool.clone(), timings.clone(), settings.writer.clone());
        let (stop_refresh, stop_rx) = watch::channel(false);
        if backend == Backend::Postgres && !settings.aggregate_refresh_interval.is_zero() {
            tokio::spawn(crate::stats::refresh_loop(
                pool.clone(),
                timings.clone(),
                settings.aggregate_refresh_interval,
                stop_rx,
            ));
        }
        let inner = Inner {
            pool,
            timings,
            writer,
            settings: settings.clone(),
            close: Mutex::new(CloseState { writer: Some(writer_task), report: None }),
            stop_refresh,
        };
        Ok(Store { inner: Arc::new(inner) })
    }

    /// Applies pending migrations (none, normally: `open` already did) and
    /// reports the schema versions in place. Safe to call any number of
    /// times, from any number of processes.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        db::migrate(&self.inner.pool, &self.inner.timings).await
    }

    pub fn backend(&self) -> Backend {
        self.inner.pool.backend()
    }

    /// Queues a record for the writer, waiting for room when the queue is
    /// full (back-pressure: nothing accepted is dropped). Fails only once
    /// the store is closing. Returns before the record is committed; see
    /// [`Store::flush`].
    pub async fn submit(&self, record: AnalysisRecord) -> Result<(), StoreError> {
        self.inner.writer.submit(record).await
    }

    /// Queues a record if there is room now; otherwise hands it back.
    pub fn try_submit(&self, record: AnalysisRecord) -> Result<(), SubmitError> {
        self.inner.writer.try_submit(record)
    }

    /// Returns once every record submitted before this call is committed
    /// (or refused, or a duplicate).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.inner.writer.flush().await
    }

    /// Stops accepting records, writes what is queued within
    /// `writer.shutdown_deadline`, stops the refresh task and closes the
    /// pool. Every clone of this store is closed; a second call returns the
    /// first call's report.
    pub async fn close(&self) -> Result<CloseReport, StoreError> {
        let mut state = self.inner.close.lock().await;
        if let Some(report) = &state.report {
            return Ok(report.clone());
        }
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.inner.settings.writer.shutdown_deadline;
        self.inner.writer.begin_close(deadline);
        let _ = self.inner.stop_refresh.send(true);
        let outcome = match state.writer.take() {
            Some(task) => task.await.map_err(|e| StoreError::Writer(e.to_string()))?,
            None => WriterOutcome::default(),
        };
        self.inner.pool.close().await;
        let shared = &self.inner.writer.shared;
        let report = CloseReport {
            written: shared.written.load(Ordering::Relaxed),
            drained: shared.drained.load(Ordering::Relaxed),
            duplicates: shared.duplicates.load(Ordering::Relaxed),
            rejected: shared.rejected.load(Ordering::Relaxed),
            left: outcome.left,
            elapsed_ms: crate::timing::ms(started.elapsed()),
        };
        tracing::info!(?report, "store closed");
        state.report = Some(report.clone());
        Ok(report)
    }

    /// Round trip of a trivial statement, pool wait included.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let started = Instant::now();
        let t = self.inner.timings.stmt("ping");
        on_pool!(&self.inner.pool, p => {
            let mut conn = t.acquire(p.acquire()).await?;
            t.exec("SELECT 1", sqlx::query("SELECT 1").execute(&mut *conn)).await?;
        });
        Ok(started.elapsed())
    }

    /// Pool state and writer queue depth, without the statement statistics
    /// (cheap enough to call every second).
    pub fn pool_and_queue(&self) -> (crate::timing::PoolState, usize, usize) {
        (self.inner.pool.state(), self.inner.writer.shared.depth(), self.inner.writer.capacity)
    }

    /// Slow statements since start.
    pub fn slow_query_total(&self) -> u64 {
        self.inner.timings.slow_total()
    }

    /// Per-statement timings, the slow-query ring, and pool and writer
    /// state.
    pub fn query_stats(&self) -> QueryStats {
        let (statements, slow_queries, slow_query_threshold_ms) = self.inner.timings.snapshot();
        let w = &self.inner.writer;
        QueryStats {
            statements,
            slow_queries,
            slow_total: self.inner.timings.slow_total(),
            slow_query_threshold_ms,
            pool: self.inner.pool.state(),
            writer: WriterStats {
                queue_depth: w.shared.depth(),
                queue_capacity: w.capacity,
                written: w.shared.written.load(Ordering::Relaxed),
                duplicates: w.shared.duplicates.load(Ordering::Relaxed),
                rejected: w.shared.rejected.load(Ordering::Relaxed),
                batches: w.shared.batches.load(Ordering::Relaxed),
                retries: w.shared.retries.load(Ordering::Relaxed),
            },
        }
    }
}
