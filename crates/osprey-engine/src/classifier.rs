//! Sequence classification: any HuggingFace `*ForSequenceClassification`
//! directory of the BERT family, run through the same backends and batcher as
//! the embedding models.
//!
//! The encoder runs on the backend with `cls` pooling, so the batcher hands
//! back the first token's hidden state; the small classification head is
//! applied here, on the caller's side, in f32 with the head's own weights.
//! Three heads exist in `transformers`, told apart by their weight names:
//!
//! | family | weights | head |
//! |---|---|---|
//! | BERT | `pooler.dense`, `classifier` | `classifier(tanh(pooler(h)))` |
//! | RoBERTa, XLM-R, DistilRoBERTa | `classifier.dense`, `classifier.out_proj` | `out_proj(tanh(dense(h)))` |
//! | DistilBERT | `pre_classifier`, `classifier` | `classifier(relu(pre_classifier(h)))` |
//!
//! Labels come from `config.json`'s `id2label`.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::Tensor;
use serde::Deserialize;

use crate::embedder::{Embedder, ModelInfo};
use crate::error::{EngineError, Result};
use crate::model::{read_json, ModelFiles, Pooling};
use crate::settings::{BatchingSettings, ModelSettings};
use crate::tokenize::Truncation;

/// A dense layer, `y = W x + b`, with `W` row-major `[out, in]`.
#[derive(Debug, Clone)]
struct Dense {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
}

impl Dense {
    fn from_weights(weights: &HashMap<String, Tensor>, prefix: &str, files: &ModelFiles) -> Result<Self> {
        let get = |name: &str| -> Result<&Tensor> {
            weights.get(&format!("{prefix}.{name}")).ok_or_else(|| {
                EngineError::invalid(&files.weights, format!("classification head weight {prefix}.{name} is missing"))
            })
        };
        let w = get("weight")?;
        let (outputs, inputs) = w.dims2().map_err(|e| EngineError::invalid(&files.weights, e))?;
        let weight = w.flatten_all().and_then(|t| t.to_vec1::<f32>())?;
        let bias = get("bias")?.flatten_all().and_then(|t| t.to_vec1::<f32>())?;
        if bias.len() != outputs {
            return Err(EngineError::invalid(
                &files.weights,
                format!("{prefix}.bias has {} values for {outputs} outputs", bias.len()),
            ));
        }
        Ok(Self { weight, bias, inputs })
    }

    fn outputs(&self) -> usize {
        self.bias.len()
    }

    fn apply(&self, x: &[f32]) -> Vec<f32> {
        self.weight
            .chunks_exact(self.inputs)
            .zip(&self.bias)
            .map(|(row, b)| b + row.iter().zip(x).map(|(w, v)| w * v).sum::<f32>())
            .collect()
    }
}

#[derive(Debug, Clone, Copy)]
enum Activation {
    Tanh,
    Relu,
}

/// The classification head on top of the first token's hidden state.
#[derive(Debug, Clone)]
struct Head {
    hidden: Dense,
    activation: Activation,
    out: Dense,
    family: &'static str,
}

impl Head {
    fn from_weights(weights: &HashMap<String, Tensor>, files: &ModelFiles) -> Result<Self> {
        let has = |n: &str| weights.contains_key(n);
        let (hidden, activation, out, family) = if has("classifier.out_proj.weight") {
            ("classifier.dense", Activation::Tanh, "classifier.out_proj", "roberta")
        } else if has("pre_classifier.weight") {
            ("pre_classifier", Activation::Relu, "classifier", "distilbert")
        } else if has("pooler.dense.weight") && has("classifier.weight") {
            ("pooler.dense", Activation::Tanh, "classifier", "bert")
        } else {
            return Err(EngineError::Unsupported(format!(
                "{} has no sequence-classification head (expected classifier.out_proj, pre_classifier + classifier, \
                 or pooler.dense + classifier weights)",
                files.weights.display()
            )));
        };
        let hidden = Dense::from_weights(weights, hidden, files)?;
        let out = Dense::from_weights(weights, out, files)?;
        if out.inputs != hidden.outputs() {
            return Err(EngineError::invalid(
                &files.weights,
                format!("head layers disagree: {} outputs feed {} inputs", hidden.outputs(), out.inputs),
            ));
        }
        Ok(Self { hidden, activation, out, family })
    }

    fn logits(&self, cls: &[f32]) -> Vec<f32> {
        let mut h = self.hidden.apply(cls);
        match self.activation {
            Activation::Tanh => h.iter_mut().for_each(|v| *v = v.tanh()),
            Activation::Relu => h.iter_mut().for_each(|v| *v = v.max(0.0)),
        }
        self.out.apply(&h)
    }
}

/// Softmax of `logits` (numerically stable).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

/// One text's classification.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Class probabilities in label order. For a text split into several
    /// windows, the token-weighted mean of the windows' probabilities.
    pub probabilities: Vec<f32>,
    /// Raw logits; for several windows, their token-weighted mean.
    pub logits: Vec<f32>,
    /// Windows the text was split into (1 unless chunked).
    pub chunks: usize,
    /// Tokens the model saw, special tokens included.
    pub tokens: usize,
}

#[derive(Deserialize)]
struct LabelConfig {
    #[serde(default)]
    id2label: HashMap<String, String>,
}

/// A loaded sequence classifier with its batcher. Clones share everything.
#[derive(Clone)]
pub struct Classifier {
    embedder: Embedder,
    head: Arc<Head>,
    labels: Arc<[String]>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier").field("model", &self.embedder.info().id).field("labels", &self.labels).finish()
    }
}

impl Classifier {
    /// Loads the encoder (with `cls` pooling) and the head, and warms up.
    /// Blocking: call from a blocking context.
    pub fn load(files: ModelFiles, settings: &ModelSettings, batching: &BatchingSettings) -> Result<Self> {
        let labels = read_labels(&files)?;
        let weights = files.load_weights(&candle_core::Device::Cpu)?;
        let head = Head::from_weights(&weights, &files)?;
        drop(weights);
        if head.out.outputs() != labels.len() {
            return Err(EngineError::invalid(
                &files.config,
                format!("id2label names {} labels but the head has {} outputs", labels.len(), head.out.outputs()),
            ));
        }
        let settings = ModelSettings { pooling: Some(Pooling::Cls), ..settings.clone() };
        let embedder = Embedder::load(files, &settings, batching)?;
        if embedder.info().hidden_size != head.hidden.inputs {
            return Err(EngineError::Unsupported(format!(
                "classification head expects {} inputs but the encoder's hidden size is {}",
                head.hidden.inputs,
                embedder.info().hidden_size
            )));
        }
        tracing::info!(model = %embedder.info().id, head = head.family, labels = labels.len(), "classifier ready");
        Ok(Self { embedder, head: Arc::new(head), labels: labels.into() })
    }

    pub fn info(&self) -> &ModelInfo {
        self.embedder.info()
    }

    /// Class names in output order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Batches and sequences run since the classifier loaded.
    pub fn stats(&self) -> crate::BatcherStats {
        self.embedder.stats()
    }

    /// Head family: `bert`, `roberta` or `distilbert`.
    pub fn head_family(&self) -> &'static str {
        self.head.family
    }

    /// Classifies `texts`, in order. Texts over the model's limit are cut
    /// (`Truncate`), refused (`Reject`) or split into windows whose
    /// predictions are averaged by token count (`Chunk`).
    pub async fn classify(&self, texts: Vec<String>, truncation: Truncation) -> Result<Vec<Prediction>> {
        let parts = self.embedder.embed_chunks(texts, truncation).await?;
        Ok(parts
            .into_iter()
            .map(|chunks| {
                let n = self.labels.len();
                let total: usize = chunks.iter().map(|c| c.tokens).sum();
                let mut probabilities = vec![0f32; n];
                let mut logits = vec![0f32; n];
                for c in &chunks {
                    let w = if chunks.len() == 1 { 1.0 } else { c.tokens as f32 / total.max(1) as f32 };
                    let l = self.head.logits(&c.vector);
                    for (acc, p) in probabilities.iter_mut().zip(softmax(&l)) {
                        *acc += w * p;
                    }
                    for (acc, v) in logits.iter_mut().zip(&l) {
                        *acc += w * v;
                    }
                }
                Prediction { probabilities, logits, chunks: chunks.len(), tokens: total }
            })
            .collect())
    }
}

/// `id2label` as a list indexed by class id; ids must be 0..n without gaps.
fn read_labels(files: &ModelFiles) -> Result<Vec<String>> {
    let cfg: LabelConfig = read_json(&files.config)?;
    if cfg.id2label.is_empty() {
        return Err(EngineError::invalid(&files.config, "id2label is missing: not a sequence-classification model"));
    }
    let mut labels = vec![None; cfg.id2label.len()];
    for (id, label) in cfg.id2label {
        let i: usize = id.parse().map_err(|_| EngineError::invalid(&files.config, format!("id2label key {id:?}")))?;
        let slot = labels
            .get_mut(i)
            .ok_or_else(|| EngineError::invalid(&files.config, format!("id2label ids must be 0..n, found {i}")))?;
        *slot = Some(label);
    }
    labels.into_iter().map(|l| l.ok_or_else(|| EngineError::invalid(&files.config, "id2label has gaps"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_a_distribution_and_stable() {
        let p = softmax(&[1000.0, 1000.0, 999.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((p[0] - p[1]).abs() < 1e-7 && p[2] < p[0]);
    }

    #[test]
    fn dense_applies_row_major_weights() {
        let d = Dense { weight: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], bias: vec![0.5, -1.0], inputs: 3 };
        assert_eq!(d.apply(&[1.0, 0.0, -1.0]), vec![1.0 - 3.0 + 0.5, 4.0 - 6.0 - 1.0]);
    }
}
