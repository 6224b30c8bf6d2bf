//! Request and response bodies. The TEI-compatible shapes follow HuggingFace
//! text-embeddings-inference; the OpenAI-compatible ones follow the OpenAI
//! embeddings API, so existing clients work unchanged.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One text or a list of texts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Input {
    Single(String),
    Batch(Vec<String>),
}

impl Input {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Input::Single(s) => vec![s],
            Input::Batch(v) => v,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Input::Single(_) => 1,
            Input::Batch(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn yes() -> bool {
    true
}

/// `POST /embed` (TEI).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedRequest {
    pub inputs: Input,
    /// Scale each vector to unit length.
    #[serde(default = "yes")]
    pub normalize: bool,
    /// Cut inputs longer than the model's maximum; when false they are refused (413).
    #[serde(default)]
    pub truncate: Option<bool>,
    /// Only `"Right"` is supported (the model sees the start of the text).
    #[serde(default)]
    pub truncation_direction: Option<String>,
    /// osprey extension: embed long inputs in windows of the model's maximum
    /// length and mean-pool the windows (weighted by tokens) instead of truncating.
    #[serde(default)]
    pub chunk: bool,
}

/// `POST /embed` answers one vector per input, in input order.
pub type EmbedResponse = Vec<Vec<f32>>;

/// Inputs of `POST /similarity` (TEI).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimilarityInputs {
    pub source_sentence: String,
    pub sentences: Vec<String>,
}

/// `POST /similarity`: cosine similarity of `source_sentence` to each sentence.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimilarityRequest {
    pub inputs: SimilarityInputs,
    #[serde(default)]
    pub truncate: Option<bool>,
    #[serde(default)]
    pub truncation_direction: Option<String>,
}

/// `POST /tokenize` (TEI).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenizeRequest {
    pub inputs: Input,
    #[serde(default = "yes")]
    pub add_special_tokens: bool,
}

/// One token with its character offsets in the input.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct SimpleToken {
    pub id: u32,
    pub text: String,
    pub special: bool,
    pub start: Option<usize>,
    pub stop: Option<usize>,
}

/// `GET /info` (TEI shape, plus osprey's model details).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct InfoResponse {
    pub model_id: String,
    pub model_sha: Option<String>,
    pub model_dtype: String,
    pub model_type: ModelKind,
    pub max_concurrent_requests: usize,
    pub max_input_length: usize,
    pub max_batch_tokens: usize,
    pub max_batch_requests: Option<usize>,
    pub max_client_batch_size: usize,
    pub tokenization_workers: usize,
    pub version: String,
    /// osprey: backend, device, load time and memory of the model.
    pub osprey: ModelDetails,
    /// osprey: the analysis routes' lexicons, emotion model and caches.
    pub analysis: AnalysisDetails,
}

/// State of the analysis side, for operators.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct AnalysisDetails {
    /// `ok (N entries)`, or why VADER is unavailable.
    pub vader: String,
    /// `none`, `loading`, `ready (model, head)` or `failed: reason`.
    pub emotion_model: String,
    pub emotion_model_weight: f32,
    pub emotion_vader_weight: f32,
    /// Where each task's results are cached: `off`, `local` (L1) or `shared` (L1 and Redis).
    pub cache_policies: std::collections::BTreeMap<String, String>,
    /// `sqlite`, `postgres` or `off`.
    pub storage: String,
    pub topic_sets: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Embedding { pooling: String },
}

/// The model as osprey loaded it.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ModelDetails {
    pub backend: String,
    pub device: String,
    pub hidden_size: usize,
    pub normalize_by_default: bool,
    pub weight_bytes: u64,
    pub load_seconds: f64,
    pub warmup_seconds: f64,
    pub source: String,
    pub path: String,
}

/// Vector encoding for `/v1/embeddings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    #[default]
    Float,
    /// Little-endian f32 bytes, base64-encoded.
    Base64,
}

/// `POST /v1/embeddings` (OpenAI).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAiEmbeddingsRequest {
    pub input: Input,
    /// A served model's name; empty means the default model.
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub encoding_format: EncodingFormat,
    /// Must equal the model's dimension when given.
    #[serde(default)]
    pub dimensions: Option<usize>,
    #[serde(default)]
    pub user: Option<String>,
}

/// A vector as floats or base64.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EmbeddingValue {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct OpenAiEmbedding {
    pub object: String,
    pub index: usize,
    pub embedding: EmbeddingValue,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct OpenAiUsage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct OpenAiEmbeddingsResponse {
    pub object: String,
    pub data: Vec<OpenAiEmbedding>,
    pub model: String,
    pub usage: OpenAiUsage,
}

/// `GET /ready` and `GET /health` bodies when healthy (a failing `/ready`
/// answers with the error body, whose message is the reason).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ProbeResponse {
    pub status: String,
}

impl From<Vec<String>> for Input {
    fn from(v: Vec<String>) -> Self {
        Input::Batch(v)
    }
}
