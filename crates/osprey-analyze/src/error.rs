//! The crate's one error type. Every variant is a mistake the user can fix
//! (a flag, a file, a URL) or a server that did not answer; the message
//! names which. The command maps all of them to exit code 1.

use std::path::PathBuf;

/// Errors from validating arguments, reading inputs, fetching from a server
/// and writing outputs.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The command line asks for something impossible or malformed.
    #[error("{0}")]
    Usage(String),

    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A document is not what it was given as (wrong schema, not JSON, a
    /// field of the wrong type). `origin` is the file or URL.
    #[error("{origin}: {message}")]
    Input { origin: String, message: String },

    /// A non-loopback target without `--allow-remote`, or an unusable URL.
    #[error("refusing {url}: {reason}")]
    Target { url: String, reason: String },

    /// The server did not answer a required request.
    #[error("GET {url} failed: {message}")]
    Fetch { url: String, message: String },
}

impl AnalyzeError {
    pub(crate) fn input(origin: impl std::fmt::Display, message: impl std::fmt::Display) -> Self {
        AnalyzeError::Input { origin: origin.to_string(), message: message.to_string() }
    }
}
