//! Store settings: where the database is, how the pool behaves, how the
//! writer batches. Names follow SQLAlchemy's `create_engine` where there is
//! an equivalent, so people who have tuned a Python service recognise them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Backend;

/// Everything the store reads at open.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Whether the server stores posts and analyses at all. Read by the
    /// caller: [`Store::open`](crate::Store::open) opens regardless.
    pub enabled: bool,
    /// SQLAlchemy: the engine URL. `None`: an SQLite file
    /// `<data_dir>/osprey.db`. `postgres://user:pass@host/db` (or
    /// `postgresql://`) for PostgreSQL, `sqlite://path` for another SQLite
    /// file. The password is never logged: see [`StoreSettings::display_url`].
    pub url: Option<String>,
    pub pool: PoolSettings,
    pub sqlite: SqliteSettings,
    pub writer: WriterSettings,
    /// Statements slower than this are logged at WARN and kept in the
    /// slow-query ring (SQLAlchemy has no equivalent; people hook
    /// `before_cursor_execute`/`after_cursor_execute` for it).
    #[serde(with = "humantime_serde")]
    pub slow_query_threshold: Duration,
    /// Longest any one statement may run. PostgreSQL enforces it server-side
    /// (`statement_timeout`, set on each connection as it opens, so a
    /// cancelled query does not hold locks); SQLite cannot be interrupted
    /// from outside, so the store stops waiting instead. SQLAlchemy:
    /// `connect_args={"options": "-c statement_timeout=..."}`.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// How often PostgreSQL's daily emotion view is refreshed; `0s`: only on
    /// [`Store::refresh_aggregates`](crate::Store::refresh_aggregates).
    /// Ignored on SQLite, whose statistics are always live.
    #[serde(with = "humantime_serde")]
    pub aggregate_refresh_interval: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            url: None,
            pool: PoolSettings::default(),
            sqlite: SqliteSettings::default(),
            writer: WriterSettings::default(),
            slow_query_threshold: Duration::from_millis(100),
            statement_timeout: Duration::from_secs(10),
            aggregate_refresh_interval: Duration::from_secs(60),
        }
    }
}

/// Connection pool. The defaults suit a 2-core machine serving requests:
/// more connections than cores only queue inside the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolSettings {
    /// SQLAlchemy `pool_size` (+ `max_overflow`): sqlx's `max_connections`.
    /// `None`: 8 on PostgreSQL (the writer holds one, the refresh task one,
    /// and requests mostly wait on I/O, so twice-cores-plus-headroom keeps
    /// both cores busy without a pile of idle backends), 4 on SQLite (WAL
    /// lets readers run beside the one writer, but every connection keeps
    /// its own page cache and there are only two cores to read with).
    pub pool_size: Option<u32>,
    /// Connections kept open even when idle, so the first request after a
    /// quiet spell does not pay for a connect. SQLAlchemy has no equivalent
    /// (its pool fills lazily).
    pub min_connections: u32,
    /// SQLAlchemy `pool_timeout`: sqlx's `acquire_timeout`. Shorter than
    /// SQLAlchemy's 30 s: a request waiting that long has already failed.
    #[serde(with = "humantime_serde")]
    pub pool_timeout: Duration,
    /// SQLAlchemy `pool_pre_ping`: sqlx's `test_before_acquire`. On, so a
    /// connection a restarted PostgreSQL closed is replaced, not handed out.
    pub pool_pre_ping: bool,
    /// SQLAlchemy `pool_recycle`: sqlx's `max_lifetime`. Connections older
    /// than this are closed when returned, which bounds per-backend memory
    /// growth and lets a failover be picked up.
    #[serde(with = "humantime_serde")]
    pub pool_recycle: Option<Duration>,
    /// Idle connections above `min_connections` are closed after this
    /// (sqlx's `idle_timeout`; SQLAlchemy's QueuePool keeps them).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            pool_size: None,
            min_connections: 1,
            pool_timeout: Duration::from_secs(5),
            pool_pre_ping: true,
            pool_recycle: Some(Duration::from_secs(30 * 60)),
            idle_timeout: Some(Duration::from_secs(10 * 60)),
        }
    }
}

impl PoolSettings {
    /// `pool_size`, or the backend's default.
    pub fn max_connections(&self, backend: Backend) -> u32 {
        self.pool_size.unwrap_or(match backend {
            Backend::Postgres => 8,
            Backend::Sqlite => 4,
        })
    }
}

/// SQLite only. WAL and foreign keys are always on: WAL is what lets
/// reads run while the writer commits, and the schema relies on cascades.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteSettings {
    /// How long a statement waits for another connection's lock before
    /// failing with SQLITE_BUSY (`PRAGMA busy_timeout`). SQLAlchemy:
    /// `connect_args={"timeout": 5}`.
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
    /// `PRAGMA synchronous`: `off`, `normal`, `full` or `extra`. `normal`
    /// is durable across application crashes in WAL mode; a power cut can
    /// lose the last commits but never corrupts the file.
    pub synchronous: String,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        Self { busy_timeout: Duration::from_secs(5), synchronous: "normal".into() }
    }
}

/// The batching writer. SQLAlchemy has none built in (the nearest is
/// `executemany` with `insertmanyvalues_page_size`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WriterSettings {
    /// Records the queue holds before `submit` waits (back-pressure).
    pub queue_capacity: usize,
    /// Records per transaction at most.
    pub batch_size: usize,
    /// How long the first record of a batch waits for company.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Ceiling of the exponential backoff between attempts at a batch the
    /// database could not take (connection lost, server restarting).
    #[serde(with = "humantime_serde")]
    pub retry_backoff_max: Duration,
    /// How long [`Store::close`](crate::Store::close) keeps writing what is
    /// queued before giving up and reporting what was left.
    #[serde(with = "humantime_serde")]
    pub shutdown_deadline: Duration,
}

impl Default for WriterSettings {
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            batch_size: 500,
            max_delay: Duration::from_millis(50),
            retry_backoff_max: Duration::from_secs(2),
            shutdown_deadline: Duration::from_secs(30),
        }
    }
}

/// Where the settings point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Sqlite(PathBuf),
    /// An explicit `sqlite:` URL, handed to sqlx as is.
    SqliteUrl(String),
    Postgres(String),
}

impl StoreSettings {
    /// Checks what serde cannot: a known URL scheme, positive sizes and
    /// times, a valid `synchronous` mode.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.url {
            if !(is_postgres(url) || url.starts_with("sqlite:")) {
                return Err(format!("store.url {} is neither postgres://… nor sqlite://…", redact_url(url)));
            }
        }
        if self.pool.pool_size == Some(0) {
            return Err("store.pool.pool_size must be at least 1".into());
        }
        let max = self.pool.max_connections(self.backend());
        if self.pool.min_connections > max {
            return Err(format!(
                "store.pool.min_connections ({}) exceeds the pool size ({max})",
                self.pool.min_connections
            ));
        }
        if self.pool.pool_timeout.is_zero() {
            return Err("store.pool.pool_timeout must be positive".into());
        }
        if !["off", "normal", "full", "extra"].contains(&self.sqlite.synchronous.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "store.sqlite.synchronous {:?} is not one of off, normal, full, extra",
                self.sqlite.synchronous
            ));
        }
        let w = &self.writer;
        if w.queue_capacity == 0 || w.batch_size == 0 {
            return Err("store.writer.queue_capacity and batch_size must be at least 1".into());
        }
        if w.max_delay.is_zero() || w.retry_backoff_max.is_zero() {
            return Err("store.writer.max_delay and retry_backoff_max must be positive".into());
        }
        if self.statement_timeout.is_zero() {
            return Err("store.statement_timeout must be positive".into());
        }
        Ok(())
    }

    /// Which database the URL names.
    pub fn backend(&self) -> Backend {
        match &self.url {
            Some(url) if is_postgres(url) => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    /// The URL with any password replaced by `***`, or the SQLite file the
    /// default resolves to: what logs and `osprey migrate` print.
    pub fn display_url(&self, data_dir: &Path) -> String {
        match &self.url {
            Some(url) => redact_url(url),
            None => format!("sqlite://{}", default_sqlite_path(data_dir).display()),
        }
    }

    pub(crate) fn target(&self, data_dir: &Path) -> Target {
        match &self.url {
            None => Target::Sqlite(default_sqlite_path(data_dir)),
            Some(url) if is_postgres(url) => Target::Postgres(url.clone()),
            Some(url) => Target::SqliteUrl(url.clone()),
        }
    }
}

/// `Debug` prints the URL redacted, so `{:?}` of a settings tree in a log
/// line cannot leak the password.
impl fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreSettings")
            .field("enabled", &self.enabled)
            .field("url", &self.url.as_deref().map(redact_url))
            .field("pool", &self.pool)
            .field("sqlite", &self.sqlite)
            .field("writer", &self.writer)
            .field("slow_query_threshold", &self.slow_query_threshold)
            .field("statement_timeout", &self.statement_timeout)
            .field("aggregate_refresh_interval", &self.aggregate_refresh_interval)
            .finish()
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn default_sqlite_path(data_dir: &Path) -> PathBuf {
    data_dir.join("osprey.db")
}

pub use osprey_types::redact::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_parse_from_partial_json() {
        assert_eq!(StoreSettings::default().validate(), Ok(()));
        let s: StoreSettings = serde_json::from_value(serde_json::json!({
            "url": "postgres://u:p@db/osprey",
            "writer": { "max_delay": "20ms" },
            "pool": { "pool_recycle": null }
        }))
        .expect("parse");
        assert_eq!(s.writer.max_delay, Duration::from_millis(20));
        assert_eq!(s.writer.batch_size, 500);
        assert_eq!(s.pool.pool_recycle, None);
        assert_eq!(s.backend(), Backend::Postgres);
        assert_eq!(s.pool.max_connections(s.backend()), 8);
        let bad = serde_json::from_value::<StoreSettings>(serde_json::json!({ "writer": { "batch": 1 } }));
        assert!(bad.is_err(), "unknown fields are refused");
    }

    #[test]
    fn validate_refuses_nonsense() {
        let with = |f: fn(&mut StoreSettings)| {
            let mut s = StoreSettings::default();
            f(&mut s);
            s.validate()
        };
        assert!(with(|s| s.url = Some("mysql://x".into())).is_err());
        assert!(with(|s| s.pool.pool_size = Some(0)).is_err());
        assert!(with(|s| s.pool.min_connections = 5).is_err(), "above SQLite's default of 4");
        assert!(with(|s| s.sqlite.synchronous = "sometimes".into()).is_err());
        assert!(with(|s| s.writer.batch_size = 0).is_err());
        assert!(with(|s| s.statement_timeout = Duration::ZERO).is_err());
        assert!(with(|s| s.url = Some("sqlite:///tmp/x.db".into())).is_ok());
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(redact_url("postgres://osprey:s3cret@db:5432/osprey"), "postgres://osprey:***@db:5432/osprey");
        assert_eq!(
            redact_url("postgres://a:b:c@h/d?password=x&sslmode=require"),
            "postgres://a:***@h/d?password=***&sslmode=require"
        );
        assert_eq!(redact_url("postgres://osprey@db/osprey"), "postgres://osprey@db/osprey");
        assert_eq!(redact_url("sqlite://data/osprey.db"), "sqlite://data/osprey.db");
        let s = StoreSettings { url: Some("postgres://u:hunter2@h/d".into()), ..Default::default() };
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!s.display_url(Path::new(".")).contains("hunter2"));
        assert_eq!(StoreSettings::default().display_url(Path::new("/d")), "sqlite:///d/osprey.db");
    }
}
