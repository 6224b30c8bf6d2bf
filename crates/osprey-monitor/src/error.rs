//! The crate's one error type.
//!
//! The monitor never fails a caller: a file it cannot read or parse leaves
//! its figures at zero (or `None`) in that sample and is logged once, because
//! a missing gauge must not take the server down. The type exists so that
//! those log lines say which file and why; settings errors are plain strings
//! (see [`crate::MonitorSettings::validate`]).

/// Why one source of figures could not be read this time.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MonitorError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The file's text is not in the expected format.
    #[error("cannot parse {path}: {what}")]
    Parse { path: &'static str, what: &'static str },
}

impl MonitorError {
    /// The file the error is about, used to log each source once.
    pub(crate) fn path(&self) -> &'static str {
        match self {
            Self::Read { path, .. } | Self::Parse { path, .. } => path,
        }
    }
}
