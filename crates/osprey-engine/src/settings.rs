//! Engine settings: which model, on which device and backend, and the batching
//! limits. The server's settings tree embeds these structs unchanged.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::Pooling;

/// Where the model runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceChoice {
    /// CUDA when compiled in and a GPU is present, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl TryFrom<String> for DeviceChoice {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("invalid device {s:?}: expected auto, cpu, cuda or cuda:N")),
        }
    }
}

impl From<DeviceChoice> for String {
    fn from(d: DeviceChoice) -> String {
        match d {
            DeviceChoice::Auto => "auto".into(),
            DeviceChoice::Cpu => "cpu".into(),
            DeviceChoice::Cuda(n) => format!("cuda:{n}"),
        }
    }
}

/// Which inference implementation runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// ONNX Runtime on the CPU when its library is present, candle otherwise
    /// (and always candle on CUDA).
    #[default]
    Auto,
    Onnxruntime,
    Candle,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "onnxruntime" | "ort" | "onnx" => Ok(Self::Onnxruntime),
            "candle" => Ok(Self::Candle),
            _ => Err(format!("invalid backend {s:?}: expected auto, onnxruntime or candle")),
        }
    }
}

/// Arithmetic of the model's projections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// The model's own weights: vectors match sentence-transformers.
    #[default]
    F32,
    /// int8 weights and dynamically quantised activations (ONNX Runtime on
    /// the CPU only): about twice the throughput, vectors within the
    /// tolerance stated in `docs/benchmarks.md`.
    Int8,
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Self::F32),
            "int8" | "i8" => Ok(Self::Int8),
            _ => Err(format!("invalid precision {s:?}: expected f32 or int8")),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Int8 => "int8",
        })
    }
}

/// Model, device and start-up behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSettings {
    /// A model directory or a hub id.
    pub model: String,
    pub device: DeviceChoice,
    pub backend: BackendChoice,
    /// Load (and warm up) the model at start rather than on first use.
    pub preload: bool,
    /// Forward passes run at load time before the model is reported ready.
    pub warmup_passes: usize,
    /// Inference threads (ONNX Runtime intra-op); 0 means one per core.
    pub threads: usize,
    /// Path of `libonnxruntime.so` (otherwise `ORT_DYLIB_PATH`, then `vendor/onnxruntime/`).
    pub ort_library: Option<PathBuf>,
    /// Overrides the pooling the model directory declares (classifiers read
    /// the first token's hidden state, so they load with `cls`).
    pub pooling: Option<Pooling>,
    /// f32, or int8 projections on ONNX Runtime.
    pub precision: Precision,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            model: "models/all-MiniLM-L6-v2".into(),
            device: DeviceChoice::Auto,
            backend: BackendChoice::Auto,
            preload: true,
            warmup_passes: 2,
            threads: 0,
            ort_library: None,
            pooling: None,
            precision: Precision::F32,
        }
    }
}

/// Queue and batch limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchingSettings {
    /// Padded tokens (rows × longest row) one batch may hold.
    pub max_batch_tokens: usize,
    /// Sequences one batch may hold.
    pub max_batch_requests: usize,
    /// Requests admitted at once; beyond this the server answers 429.
    pub max_concurrent_requests: usize,
    /// Inputs one request may carry.
    pub max_client_batch_size: usize,
    /// Time from admission to answer before a request is dropped.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Threads that tokenize requests.
    pub tokenizer_workers: usize,
}

impl Default for BatchingSettings {
    fn default() -> Self {
        Self {
            max_batch_tokens: 16_384,
            max_batch_requests: 128,
            max_concurrent_requests: 512,
            max_client_batch_size: 256,
            request_timeout: Duration::from_secs(30),
            tokenizer_workers: 1,
        }
    }
}

impl BatchingSettings {
    /// Checks the limits are usable.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_batch_tokens", self.max_batch_tokens),
            ("max_batch_requests", self.max_batch_requests),
            ("max_concurrent_requests", self.max_concurrent_requests),
            ("max_client_batch_size", self.max_client_batch_size),
            ("tokenizer_workers", self.tokenizer_workers),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("batching.{name} must be at least 1"));
        }
        if self.request_timeout.is_zero() {
            return Err("batching.request_timeout must be positive".into());
        }
        Ok(())
    }
}
