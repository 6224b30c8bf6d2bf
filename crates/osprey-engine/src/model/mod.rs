//! What a model directory says about the model: the transformer config, the
//! sentence-transformers pooling/normalisation/length settings, where its
//! files are and how to read its weights.

mod resolve;

pub use resolve::{resolve_model, ModelSource, ResolveOptions};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::Deserialize;

use crate::error::{EngineError, Result};

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    Mean,
    Cls,
    Max,
    LastToken,
}

impl std::fmt::Display for Pooling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Max => "max",
            Pooling::LastToken => "last_token",
        })
    }
}

/// The fields of a HuggingFace `config.json` the encoders use. DistilBERT's
/// own names (`dim`, `n_layers`, `n_heads`, `hidden_dim`, `activation`) are
/// accepted as aliases.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelConfig {
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    #[serde(alias = "dim")]
    pub hidden_size: usize,
    #[serde(alias = "n_layers")]
    pub num_hidden_layers: usize,
    #[serde(alias = "n_heads")]
    pub num_attention_heads: usize,
    #[serde(alias = "hidden_dim")]
    pub intermediate_size: usize,
    #[serde(default = "default_act", alias = "activation")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default)]
    pub architectures: Vec<String>,
}

fn default_model_type() -> String {
    "bert".into()
}
fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

/// Sentence-level settings from the sentence-transformers files, with the
/// defaults sentence-transformers itself applies when a file is absent.
#[derive(Debug, Clone)]
pub struct SentenceConfig {
    pub pooling: Pooling,
    /// `modules.json` lists a `Normalize` module.
    pub normalize: bool,
    /// Longest sequence, in tokens including special tokens.
    pub max_seq_length: usize,
}

/// The files of one model directory, checked to exist.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub tokenizer: PathBuf,
    pub weights: PathBuf,
    /// Where the model came from (path, cache, hub), for `/info` and logs.
    pub source: ModelSource,
    /// Name users refer to the model by (hub id or directory name).
    pub id: String,
}

impl ModelFiles {
    /// Checks that `dir` is a usable model directory.
    pub fn from_dir(dir: &Path, id: String, source: ModelSource) -> Result<Self> {
        if !dir.is_dir() {
            return Err(EngineError::ModelNotFound(format!("{} is not a directory", dir.display())));
        }
        let need = |name: &str| {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(EngineError::MissingFile { path: p })
            }
        };
        let config = need("config.json")?;
        let tokenizer = need("tokenizer.json")?;
        let weights = ["model.safetensors", "pytorch_model.bin"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| EngineError::MissingFile { path: dir.join("model.safetensors") })?;
        Ok(Self { dir: dir.to_path_buf(), config, tokenizer, weights, source, id })
    }

    pub fn read_config(&self) -> Result<ModelConfig> {
        read_json(&self.config)
    }

    /// Reads pooling, normalisation and maximum length from the
    /// sentence-transformers files, falling back to mean pooling, no
    /// normalisation and the model's position limit, as sentence-transformers
    /// does for a plain transformer directory.
    pub fn read_sentence_config(&self, model: &ModelConfig) -> Result<SentenceConfig> {
        let mut pooling = Pooling::Mean;
        let mut normalize = false;
        let modules_path = self.dir.join("modules.json");
        let mut pooling_dir = self.dir.join("1_Pooling");
        if modules_path.is_file() {
            let modules: Vec<StModule> = read_json(&modules_path)?;
            for m in &modules {
                if m.kind.ends_with("Normalize") {
                    normalize = true;
                }
                if m.kind.ends_with("Pooling") {
                    pooling_dir = self.dir.join(&m.path);
                }
            }
        }
        let pooling_path = pooling_dir.join("config.json");
        if pooling_path.is_file() {
            let p: StPooling = read_json(&pooling_path)?;
            pooling = if p.pooling_mode_cls_token {
                Pooling::Cls
            } else if p.pooling_mode_max_tokens {
                Pooling::Max
            } else if p.pooling_mode_lasttoken {
                Pooling::LastToken
            } else if p.pooling_mode_mean_tokens {
                Pooling::Mean
            } else {
                return Err(EngineError::invalid(pooling_path, "no supported pooling mode is enabled"));
            };
        }
        // RoBERTa-style models number positions from pad_token_id + 1.
        let position_limit = if model.model_type.contains("roberta") {
            model.max_position_embeddings.saturating_sub(model.pad_token_id.unwrap_or(1) as usize + 1)
        } else {
            model.max_position_embeddings
        };
        let sbert_path = self.dir.join("sentence_bert_config.json");
        let max_seq_length = if sbert_path.is_file() {
            let s: StBertConfig = read_json(&sbert_path)?;
            s.max_seq_length.unwrap_or(position_limit).min(position_limit)
        } else {
            position_limit
        };
        Ok(SentenceConfig { pooling, normalize, max_seq_length })
    }

    /// Loads every weight tensor as f32 on `device`, from safetensors or a
    /// PyTorch pickle, with the `bert.`/`roberta.`/`model.` prefix removed.
    pub fn load_weights(&self, device: &Device) -> Result<HashMap<String, Tensor>> {
        let path = &self.weights;
        let raw: Vec<(String, Tensor)> = if path.extension().is_some_and(|e| e == "safetensors") {
            candle_core::safetensors::load(path, &Device::Cpu)
                .map_err(|e| EngineError::invalid(path, e))?
                .into_iter()
                .collect()
        } else {
            candle_core::pickle::read_all(path).map_err(|e| EngineError::invalid(path, e))?
        };
        if raw.is_empty() {
            return Err(EngineError::invalid(path, "holds no tensors"));
        }
        let mut out = HashMap::with_capacity(raw.len());
        for (name, t) in raw {
            let t = t
                .to_dtype(candle_core::DType::F32)
                .and_then(|t| t.to_device(device))
                .map_err(|e| EngineError::invalid(path, format!("tensor {name}: {e}")))?;
            let key = ["bert.", "roberta.", "model.", "distilbert."]
                .iter()
                .find_map(|p| name.strip_prefix(p))
                .unwrap_or(&name);
            out.insert(bert_name(key), t);
        }
        Ok(out)
    }
}

/// Maps a DistilBERT weight name onto the BERT name of the same weight
/// (DistilBERT is a BERT encoder with renamed modules and no token types);
/// other names pass through.
pub fn bert_name(name: &str) -> String {
    let Some(rest) = name.strip_prefix("transformer.layer.") else {
        return name.to_string();
    };
    let Some((layer, module)) = rest.split_once('.') else {
        return name.to_string();
    };
    const RENAMES: &[(&str, &str)] = &[
        ("attention.q_lin.", "attention.self.query."),
        ("attention.k_lin.", "attention.self.key."),
        ("attention.v_lin.", "attention.self.value."),
        ("attention.out_lin.", "attention.output.dense."),
        ("sa_layer_norm.", "attention.output.LayerNorm."),
        ("ffn.lin1.", "intermediate.dense."),
        ("ffn.lin2.", "output.dense."),
        ("output_layer_norm.", "output.LayerNorm."),
    ];
    RENAMES
        .iter()
        .find_map(|(from, to)| module.strip_prefix(from).map(|param| format!("encoder.layer.{layer}.{to}{param}")))
        .unwrap_or_else(|| name.to_string())
}

#[derive(Deserialize)]
struct StModule {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StPooling {
    pooling_mode_cls_token: bool,
    pooling_mode_mean_tokens: bool,
    pooling_mode_max_tokens: bool,
    pooling_mode_lasttoken: bool,
}

#[derive(Deserialize)]
struct StBertConfig {
    max_seq_length: Option<usize>,
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => EngineError::MissingFile { path: path.to_path_buf() },
        _ => EngineError::invalid(path, e),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| EngineError::invalid(path, e))
}

/// Looks up a weight by trying each name in turn (checkpoints disagree on
/// naming, e.g. `gamma`/`weight`).
pub fn weight<'a>(weights: &'a HashMap<String, Tensor>, names: &[&str]) -> Result<&'a Tensor> {
    names.iter().find_map(|n| weights.get(*n)).ok_or_else(|| {
        EngineError::Unsupported(format!("weight {} not found in checkpoint", names.first().copied().unwrap_or("?")))
    })
}

#[cfg(test)]
mod tests {
    use super::bert_name;

    #[test]
    fn distilbert_names_map_onto_bert_names() {
        assert_eq!(
            bert_name("transformer.layer.3.attention.q_lin.weight"),
            "encoder.layer.3.attention.self.query.weight"
        );
        assert_eq!(
            bert_name("transformer.layer.0.attention.out_lin.bias"),
            "encoder.layer.0.attention.output.dense.bias"
        );
        assert_eq!(
            bert_name("transformer.layer.1.sa_layer_norm.weight"),
            "encoder.layer.1.attention.output.LayerNorm.weight"
        );
        assert_eq!(bert_name("transformer.layer.5.ffn.lin1.weight"), "encoder.layer.5.intermediate.dense.weight");
        assert_eq!(bert_name("transformer.layer.5.ffn.lin2.bias"), "encoder.layer.5.output.dense.bias");
        assert_eq!(bert_name("transformer.layer.2.output_layer_norm.bias"), "encoder.layer.2.output.LayerNorm.bias");
        assert_eq!(bert_name("embeddings.word_embeddings.weight"), "embeddings.word_embeddings.weight");
        assert_eq!(bert_name("encoder.layer.0.output.dense.weight"), "encoder.layer.0.output.dense.weight");
    }
}
