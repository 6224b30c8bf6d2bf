//! The load tester's one error type.
//!
//! Request failures during a run are *not* errors of this type: they are
//! measurements, counted by kind in the report. What remains are mistakes the
//! user can act on (a bad flag, an unreadable scenario, a remote target
//! without `--allow-remote`) and failures of the tool itself.

use std::path::PathBuf;

/// Errors that stop `osprey load` before or after a run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A flag, stage, threshold or setting is malformed or out of range.
    #[error("{0}")]
    Invalid(String),

    /// The target is not a loopback address and `--allow-remote` was not given.
    #[error("refusing to load-test {host} ({addr}): it is not a loopback address; pass --allow-remote for a server you operate")]
    RemoteTarget { host: String, addr: String },

    /// The target's host name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },

    /// A scenario, suite or data file is malformed; the message says where.
    #[error("{path}: {message}")]
    File { path: String, message: String },

    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A report file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A report could not be encoded or decoded (including its histograms).
    #[error("report: {0}")]
    Report(String),

    /// The generator's threads or runtimes could not start.
    #[error("cannot start the load generator: {0}")]
    Start(#[source] std::io::Error),
}

impl LoadError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        LoadError::Invalid(message.into())
    }

    pub(crate) fn file(path: impl std::fmt::Display, message: impl std::fmt::Display) -> Self {
        LoadError::File { path: path.to_string(), message: message.to_string() }
    }
}
