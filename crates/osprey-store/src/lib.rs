//! osprey-store: posts, their analyses, emotion trajectories and topic sets,
//! in SQLite (an embedded file, the default) or PostgreSQL (when the URL
//! says so).
//!
//! Both databases run the same statements through the same code: the
//! schema keeps times as epoch-millisecond `BIGINT`s so that bucketing is
//! the same integer arithmetic on both, JSON is `TEXT` on SQLite and
//! `JSONB` on PostgreSQL behind the same bind type, and the dialects only
//! part where they must or where it measurably pays (SQLite's `BEGIN
//! IMMEDIATE`; PostgreSQL's materialized view of daily emotion means and
//! its array-parameter batch inserts).
//!
//! Writes go through a batching writer ([`Store::submit`]): one task, a
//! bounded queue (back-pressure, never drops), multi-row inserts in one
//! transaction per batch, retries across database restarts, and a drain on
//! [`Store::close`]. Reads are direct queries. Every statement is timed
//! (pool wait and execution apart) into [`Store::query_stats`] and the
//! Prometheus metrics named in [`metrics`].
//!
//! # Layout
//! - `settings`: [`StoreSettings`] and its parts, with their SQLAlchemy
//!   names; URL redaction.
//! - `db`: [`Backend`], the pool enum and the `on_pool!` macro that runs one
//!   query text on either pool; connecting; embedded migrations
//!   (`migrations/sqlite`, `migrations/postgres`, same versions).
//! - `model`: records in, rows out.
//! - `hash`: [`ContentHash`], the deduplication key.
//! - `plan`: which rows a batch writes (deduplication, merging repeats).
//! - `write`: one batch in one transaction: multi-row `VALUES` on SQLite,
//!   `UNNEST` arrays on PostgreSQL.
//! - `writer`: the queue, batching, retries, the pending map, close.
//! - `read`: lookups by hash and id, keyset-paginated lists (`cursor`).
//! - `stats`: emotion statistics and the aggregate refresh.
//! - `topics`: versioned topic sets.
//! - `watch`: `osprey watch`'s cursors, seen contents and dead letters.
//! - `timing`: the per-statement timer, histograms, slow-query ring.
//! - [`metrics`]: metric names.
//! - [`bench`](mod@bench): batched versus row-at-a-time write throughput.
//! - `store`: [`Store`] itself: open, submit, flush, close, ping, stats.

pub mod bench;
mod cursor;
mod db;
mod error;
mod hash;
pub mod metrics;
mod model;
mod plan;
mod read;
mod settings;
mod stats;
mod store;
mod timing;
mod topics;
mod watch;
mod write;
mod writer;

pub use db::Backend;
pub use error::{StoreError, SubmitError};
pub use hash::ContentHash;
pub use model::{
    AnalysisRecord, AnalysisRow, Bucket, CloseReport, EmotionBucket, EmotionStatsQuery, MigrationReport, NewAnalysis,
    NewPost, NewSegment, NewTrajectory, PostEmotion, PostPage, PostQuery, PostRow, SegmentRow, StoredPost, TopicSetRow,
    TrajectoryRow, EMOTIONS,
};
pub use settings::{redact_url, PoolSettings, SqliteSettings, StoreSettings, WriterSettings};
pub use store::Store;
pub use timing::{PoolState, QueryStats, SlowQuery, StatementStats, WriterStats};
pub use watch::{DeadLetter, WatchCursor};
