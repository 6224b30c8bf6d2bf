//! The store's errors, and the one distinction the writer lives by: a
//! failure worth retrying (the database is away) versus one that will
//! fail again (the data is wrong).

use std::path::PathBuf;
use std::time::Duration;

use crate::{AnalysisRecord, Backend};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid store settings: {0}")]
    Settings(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `url` is redacted.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrating the {backend:?} schema failed: {source}")]
    Migrate {
        backend: Backend,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("statement {statement} failed: {source}")]
    Query {
        statement: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("statement {statement} did not finish within {after:?}")]
    Timeout { statement: &'static str, after: Duration },
    /// A row did not have the shape the schema promises.
    #[error("reading {what}: {why}")]
    Decode { what: &'static str, why: String },
    /// A list cursor that this store did not hand out (or that was altered).
    #[error("{0}")]
    BadCursor(String),
    /// A query parameter out of range (e.g. a page limit of 0).
    #[error("{0}")]
    InvalidQuery(String),
    #[error("the store is closed")]
    Closed,
    #[error("the store writer stopped unexpectedly: {0}")]
    Writer(String),
}

/// How a failed statement should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The database is unreachable, restarting, overloaded or busy: the
    /// same statement can succeed later.
    Transient,
    /// The statement or its data is wrong: it fails the same way again.
    Permanent,
}

impl StoreError {
    pub(crate) fn query(statement: &'static str, source: sqlx::Error) -> Self {
        Self::Query { statement, source }
    }

    /// Whether retrying the same work later can succeed.
    pub fn is_transient(&self) -> bool {
        self.failure() == Failure::Transient
    }

    pub(crate) fn failure(&self) -> Failure {
        match self {
            Self::Query { source, .. } | Self::Connect { source, .. } => classify(source),
            Self::Timeout { .. } => Failure::Transient,
            _ => Failure::Permanent,
        }
    }
}

/// Sorts a sqlx error by whether it is about the connection or the data.
pub(crate) fn classify(e: &sqlx::Error) -> Failure {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => Failure::Transient,
        sqlx::Error::Database(db) => match db.code() {
            Some(code) if transient_code(&code) => Failure::Transient,
            _ => Failure::Permanent,
        },
        _ => Failure::Permanent,
    }
}

/// PostgreSQL SQLSTATEs (always five characters) and SQLite result codes
/// (decimal extended codes, at most four digits, whose low byte is the
/// primary code) that mean "later".
fn transient_code(code: &str) -> bool {
    if code.len() == 5 {
        return postgres_transient(code);
    }
    code.parse::<i64>().is_ok_and(sqlite_transient)
}

fn postgres_transient(code: &str) -> bool {
    // 08: connection exception; 53: insufficient resources; 57P01-03: admin
    // or crash shutdown, cannot connect now; 57014: statement timeout;
    // 40001/40P01: serialization failure, deadlock; 55P03: lock not
    // available; 58: system error (I/O).
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("58")
        || matches!(code, "57P01" | "57P02" | "57P03" | "57014" | "40001" | "40P01" | "55P03")
}

fn sqlite_transient(extended: i64) -> bool {
    // BUSY, LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL.
    matches!(extended & 0xff, 5 | 6 | 10 | 13 | 14 | 15)
}

/// Why [`Store::try_submit`](crate::Store::try_submit) did not take a
/// record; the record comes back so nothing is lost by trying.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the store's write queue is full")]
    Full(Box<AnalysisRecord>),
    #[error("the store is closed")]
    Closed(Box<AnalysisRecord>),
}

impl SubmitError {
    pub fn into_record(self) -> AnalysisRecord {
        match self {
            Self::Full(r) | Self::Closed(r) => *r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_sort_into_transient_and_permanent() {
        for code in ["08006", "57P01", "57P03", "53300", "40001", "57014", "5", "517", "6", "10"] {
            assert!(transient_code(code), "{code}");
        }
        // Unique, check and foreign-key violations; syntax error; SQLite
        // constraint (19) and its extended forms (2067 unique, 275 check).
        for code in ["23505", "23514", "23503", "42601", "22P02", "19", "2067", "275", "1"] {
            assert!(!transient_code(code), "{code}");
        }
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), Failure::Transient);
        assert_eq!(classify(&sqlx::Error::RowNotFound), Failure::Permanent);
    }
}
