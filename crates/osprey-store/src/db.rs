//! The two databases behind one enum: connecting, migrating, and the
//! [`on_pool!`] macro that writes a query once and runs it on either pool.
//!
//! Why a macro rather than generic functions over `sqlx::Database`: each
//! query binds strings, integers, floats and JSON, and every one of those
//! needs its own `Encode + Type` bound per database, which would have to be
//! repeated on every function (trait where-clauses are not implied). The
//! macro expands the same source once per concrete pool, so both backends
//! run the identical statement text and binding code.

use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{ConnectOptions, Row};

use crate::settings::{StoreSettings, Target};
use crate::timing::{PoolState, Timings};
use crate::{MigrationReport, StoreError};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Most bind parameters one statement may carry: SQLite's
    /// `SQLITE_MAX_VARIABLE_NUMBER` (32766 since 3.32), PostgreSQL's wire
    /// protocol limit (an unsigned 16-bit count).
    pub(crate) fn max_params(self) -> usize {
        match self {
            Backend::Sqlite => 32_766,
            Backend::Postgres => 65_535,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the concrete pool, whichever it is.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::db::Pool::Sqlite($p) => $body,
            $crate::db::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Pool {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// How a write transaction starts. SQLite's default `BEGIN` is
    /// deferred: a transaction that reads first and then writes must
    /// upgrade its lock, and that upgrade fails at once (no busy wait) if
    /// another connection wrote meanwhile. `IMMEDIATE` takes the write lock
    /// up front, waiting `busy_timeout` for it.
    pub(crate) fn begin_statement(&self) -> &'static str {
        match self {
            Pool::Sqlite(_) => "BEGIN IMMEDIATE",
            Pool::Postgres(_) => "BEGIN",
        }
    }

    pub(crate) fn state(&self) -> PoolState {
        on_pool!(self, p => PoolState { size: p.size(), idle: p.num_idle(), max: p.options().get_max_connections() })
    }

    pub(crate) async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

/// Opens the pool the settings describe (creating the SQLite file and its
/// directory when missing).
pub(crate) async fn connect(settings: &StoreSettings, data_dir: &Path) -> Result<Pool, StoreError> {
    let display = settings.display_url(data_dir);
    let connect_err = |source| StoreError::Connect { url: display.clone(), source };
    let p = &settings.pool;
    match settings.target(data_dir) {
        Target::Postgres(url) => {
            let mut opts = PgConnectOptions::from_str(&url).map_err(connect_err)?;
            if opts.get_application_name().is_none() {
                opts = opts.application_name("osprey");
            }
            // A startup parameter rather than a `SET` after connecting: it
            // is in force before the first statement (the pre-ping
            // included) and costs no extra round trip.
            let timeout_ms = settings.statement_timeout.as_millis().max(1);
            let opts = opts.options([("statement_timeout", timeout_ms)]).disable_statement_logging();
            let pool = PgPoolOptions::new()
                .max_connections(p.max_connections(Backend::Postgres))
                .min_connections(p.min_connections)
                .acquire_timeout(p.pool_timeout)
                .test_before_acquire(p.pool_pre_ping)
                .max_lifetime(p.pool_recycle)
                .idle_timeout(p.idle_timeout)
                .connect_with(opts)
                .await
                .map_err(connect_err)?;
            Ok(Pool::Postgres(pool))
        }
        Target::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|source| StoreError::DataDir { path: dir.to_path_buf(), source })?;
            }
            connect_sqlite(SqliteConnectOptions::new().filename(path), settings).await.map_err(connect_err)
        }
        Target::SqliteUrl(url) => {
            let opts = SqliteConnectOptions::from_str(&url).map_err(connect_err)?;
            connect_sqlite(opts, settings).await.map_err(connect_err)
        }
    }
}

async fn connect_sqlite(opts: SqliteConnectOptions, settings: &StoreSettings) -> Result<Pool, sqlx::Error> {
    let synchronous = SqliteSynchronous::from_str(&settings.sqlite.synchronous)?;
    let opts = opts
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .busy_timeout(settings.sqlite.busy_timeout)
        .foreign_keys(true)
        .disable_statement_logging();
    let p = &settings.pool;
    let pool = SqlitePoolOptions::new()
        .max_connections(p.max_connections(Backend::Sqlite))
        .min_connections(p.min_connections)
        .acquire_timeout(p.pool_timeout)
        .test_before_acquire(p.pool_pre_ping)
        .max_lifetime(p.pool_recycle)
        .idle_timeout(p.idle_timeout)
        .connect_with(opts)
        .await?;
    Ok(Pool::Sqlite(pool))
}

/// Applies pending migrations; says which versions exist and which this
/// call applied. sqlx records applied versions (with checksums) in
/// `_sqlx_migrations` and takes an advisory lock on PostgreSQL, so
/// concurrent starts of several servers apply each version once.
pub(crate) async fn migrate(pool: &Pool, timings: &Timings) -> Result<MigrationReport, StoreError> {
    let backend = pool.backend();
    let before = applied_versions(pool, timings).await;
    let started = Instant::now();
    match pool {
        Pool::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await,
        Pool::Postgres(p) => {
            // Building an index or the materialized view over a big table,
            // or waiting for another replica's migration lock, may take
            // longer than any request should: no statement timeout here.
            let setup = |source: sqlx::Error| StoreError::Migrate { backend, source: source.into() };
            let mut conn = p.acquire().await.map_err(setup)?;
            lift_statement_timeout(&mut conn).await.map_err(setup)?;
            // `run_direct`: `run(&mut *conn)` makes the future non-`Send`
            // (sqlx's "Acquire is not general enough"), and `Application::build`
            // must be spawnable.
            let ran = POSTGRES_MIGRATIONS.run_direct(&mut *conn).await;
            if ran.is_ok() {
                restore_statement_timeout(&mut conn).await.map_err(setup)?;
            } else {
                // Not knowing the connection's state, do not pool it.
                conn.detach();
            }
            ran
        }
    }
    .map_err(|source| StoreError::Migrate { backend, source })?;
    let versions = applied_versions(pool, timings).await;
    let newly_applied: Vec<i64> =
        versions.iter().map(|(v, _)| *v).filter(|v| !before.iter().any(|(b, _)| b == v)).collect();
    if !newly_applied.is_empty() {
        tracing::info!(
            ?backend,
            ?newly_applied,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "migrations applied"
        );
    }
    Ok(MigrationReport { backend, versions, newly_applied })
}

/// Lifts PostgreSQL's `statement_timeout` on this connection, for work that
/// may rightly take longer than a request (migrations, view refreshes).
pub(crate) async fn lift_statement_timeout(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET statement_timeout = 0").execute(conn).await.map(|_| ())
}

/// Puts the connection's own limit back (`RESET` returns to the value it was
/// opened with) before it goes back to the pool.
pub(crate) async fn restore_statement_timeout(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("RESET statement_timeout").execute(conn).await.map(|_| ())
}

/// Successfully applied versions; none when the bookkeeping table does not
/// exist yet (an empty database).
async fn applied_versions(pool: &Pool, timings: &Timings) -> Vec<(i64, String)> {
    let sql = "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version";
    let t = timings.stmt("migration_versions");
    let rows = on_pool!(pool, p => t.exec(sql, sqlx::query_as::<_, (i64, String)>(sql).fetch_all(p)).await);
    rows.unwrap_or_default()
}

/// Typed column access with the store's error, for both row types.
pub(crate) trait RowExt {
    fn text(&self, col: &'static str) -> Result<String, StoreError>;
    fn opt_text(&self, col: &'static str) -> Result<Option<String>, StoreError>;
    fn int(&self, col: &'static str) -> Result<i64, StoreError>;
    fn float(&self, col: &'static str) -> Result<f64, StoreError>;
    fn json(&self, col: &'static str) -> Result<Value, StoreError>;
}

fn decode_err(col: &'static str, e: sqlx::Error) -> StoreError {
    StoreError::Decode { what: col, why: e.to_string() }
}

macro_rules! impl_row_ext {
    ($row:ty) => {
        impl RowExt for $row {
            fn text(&self, col: &'static str) -> Result<String, StoreError> {
                self.try_get(col).map_err(|e| decode_err(col, e))
            }
            fn opt_text(&self, col: &'static str) -> Result<Option<String>, StoreError> {
                self.try_get(col).map_err(|e| decode_err(col, e))
            }
            fn int(&self, col: &'static str) -> Result<i64, StoreError> {
                self.try_get(col).map_err(|e| decode_err(col, e))
            }
            fn float(&self, col: &'static str) -> Result<f64, StoreError> {
                self.try_get(col).map_err(|e| decode_err(col, e))
            }
            fn json(&self, col: &'static str) -> Result<Value, StoreError> {
                self.try_get::<Json<Value>, _>(col).map(|j| j.0).map_err(|e| decode_err(col, e))
            }
        }
    };
}

impl_row_ext!(SqliteRow);
impl_row_ext!(PgRow);
