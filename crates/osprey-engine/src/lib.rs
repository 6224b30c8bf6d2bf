//! osprey-engine: everything between a text and its vector.
//!
//! It finds and reads model directories, runs them on a backend chosen for
//! speed (ONNX Runtime on the CPU, candle for portability and CUDA), and
//! batches concurrent requests dynamically so the model sees few, full,
//! lightly padded batches.
//!
//! # Layout
//! - [`model`]: model directories: config, pooling, weights, resolution
//!   (local path → HuggingFace cache → hub).
//! - [`tokenize`]: the model's tokenizer with per-request truncation modes.
//! - [`backend`]: the [`Backend`](backend::Backend) trait, the ONNX exporter
//!   and the ONNX Runtime and candle implementations.
//! - `batcher`: queue, batch former and model thread.
//! - [`embedder`]: the clonable handle requests go through (admission,
//!   deadline, chunking).
//! - [`classifier`]: sequence classifiers (BERT, RoBERTa, DistilBERT heads)
//!   over the same batcher.
//! - [`registry`]: named models, lazy load, preload, warm-up, unload.
//! - [`settings`]: the engine's settings structs.

pub mod backend;
mod batcher;
pub mod classifier;
pub mod embedder;
pub mod error;
pub mod model;
pub mod registry;
pub mod settings;
pub mod timing;
pub mod tokenize;

pub use batcher::{BatchLimits, BatcherStats};
pub use classifier::{softmax, Classifier, Prediction};
pub use embedder::{normalize, Chunk, EmbedOptions, Embedded, Embedder, ModelInfo};
pub use error::{EngineError, Result};
pub use registry::{ModelRegistry, ModelStatus};
pub use settings::{BackendChoice, BatchingSettings, DeviceChoice, ModelSettings, Precision};
pub use tokenize::Truncation;
