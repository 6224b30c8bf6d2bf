//! osprey-nlp: text analysis as pure functions over text, vectors and scores.
//!
//! Nothing here loads a model, touches the network or blocks on I/O (except
//! [`vader::Vader::from_dir`], which reads the lexicon files once at start).
//! The server wires these functions to the engine's embeddings and
//! classifier outputs.
//!
//! # Layout
//! - [`segment`]: sentence segmentation with byte and character offsets.
//! - [`vader`]: VADER sentiment, faithful to `vaderSentiment` 3.3.2.
//! - [`emotion`]: the seven emotion classes, osprey's own emotion lexicon
//!   (negation, intensity), the VADER-derived distribution and blending.
//! - [`trajectory`]: smoothing (rolling mean, DCT low-pass) and arc summaries.
//! - [`summary`]: sentence centrality (centroid, LexRank, TextRank) and the
//!   TF-IDF fallback.
//! - [`topics`]: topic sets and scoring posts against them.

pub mod emotion;
pub mod error;
pub mod segment;
pub mod summary;
#[cfg(test)]
mod testing;
pub mod topics;
pub mod trajectory;
pub mod vader;

pub use error::NlpError;
