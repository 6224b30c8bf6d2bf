//! osprey-types: the wire types of osprey's HTTP API, its error codes and its
//! metric names, shared by the server, the load lab and the CLI.
//!
//! # Layout
//! - [`analysis`]: bodies of the analysis routes (sentiment, emotion,
//!   trajectory, summary, topics, one-pass analyze).
//! - [`api`]: request and response bodies (TEI- and OpenAI-compatible).
//! - [`error`]: the one error body and its codes.
//! - [`metrics`]: metric names and histogram buckets.
//! - [`redact`]: credentials masked out of URLs before they are logged or printed.
//! - [`store`]: bodies of the storage read routes.

pub mod analysis;
pub mod api;
pub mod error;
pub mod metrics;
pub mod redact;
pub mod store;
