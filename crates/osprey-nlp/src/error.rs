//! Errors of the analysis crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NlpError {
    #[error("lexicon file {path} is missing; run scripts/fetch-models")]
    MissingLexicon { path: PathBuf },
    #[error("lexicon {name} is invalid at line {line}: {reason}")]
    InvalidLexicon { name: String, line: usize, reason: String },
    #[error("io error on {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("invalid topic set: {0}")]
    InvalidTopics(String),
}
