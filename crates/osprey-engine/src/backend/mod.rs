//! Inference backends. A backend owns the weights on one device and turns a
//! [`PaddedBatch`] of token ids into one pooled (not yet normalised) vector
//! per sequence. Backends run on the engine's dedicated model thread, never on
//! the async runtime, so they may block and use their own thread pools.

pub mod candle;
pub mod onnx_export;
pub mod ort;

use crate::error::Result;
use crate::model::{ModelConfig, Pooling};

/// Token ids for a batch, right-padded to the longest sequence in the batch.
///
/// Sequences are laid out row-major: row `i` holds `lengths[i]` real tokens
/// followed by padding (id 0, mask 0).
#[derive(Debug, Clone, Default)]
pub struct PaddedBatch {
    pub input_ids: Vec<i64>,
    pub token_type_ids: Vec<i64>,
    pub attention_mask: Vec<i64>,
    /// Real (unpadded) length of each sequence.
    pub lengths: Vec<usize>,
    /// Padded length shared by every row.
    pub seq_len: usize,
}

impl PaddedBatch {
    /// Builds a batch from unpadded sequences of `(ids, type_ids)`.
    pub fn from_sequences<'a, I>(seqs: I) -> Self
    where
        I: IntoIterator<Item = (&'a [u32], &'a [u32])>,
        I::IntoIter: Clone,
    {
        let iter = seqs.into_iter();
        let seq_len = iter.clone().map(|(ids, _)| ids.len()).max().unwrap_or(0);
        let n = iter.clone().count();
        let mut b = PaddedBatch {
            input_ids: vec![0; n * seq_len],
            token_type_ids: vec![0; n * seq_len],
            attention_mask: vec![0; n * seq_len],
            lengths: Vec::with_capacity(n),
            seq_len,
        };
        for (row, (ids, types)) in iter.enumerate() {
            let base = row * seq_len;
            for (j, (&id, &ty)) in ids.iter().zip(types.iter()).enumerate() {
                b.input_ids[base + j] = i64::from(id);
                b.token_type_ids[base + j] = i64::from(ty);
                b.attention_mask[base + j] = 1;
            }
            b.lengths.push(ids.len());
        }
        b
    }

    pub fn batch_size(&self) -> usize {
        self.lengths.len()
    }

    /// Padded cost of the batch: rows times padded length.
    pub fn padded_tokens(&self) -> usize {
        self.batch_size() * self.seq_len
    }

    /// Real tokens in the batch.
    pub fn real_tokens(&self) -> usize {
        self.lengths.iter().sum()
    }
}

/// What a backend needs to know about the model it serves.
#[derive(Debug, Clone)]
pub struct BackendInfo {
    pub name: &'static str,
    pub device: String,
    pub dtype: String,
}

/// A loaded model on one device.
pub trait Backend: Send {
    /// Runs the encoder and pools each sequence with `pooling`, returning one
    /// vector of `hidden_size` per row of `batch`.
    fn embed(&mut self, batch: &PaddedBatch, pooling: Pooling) -> Result<Vec<Vec<f32>>>;

    fn info(&self) -> BackendInfo;
}

/// Pools `hidden` (`[batch, seq_len, hidden_size]`, row-major) into one vector
/// per sequence, looking only at each sequence's real tokens.
pub fn pool_hidden(hidden: &[f32], batch: &PaddedBatch, hidden_size: usize, pooling: Pooling) -> Result<Vec<Vec<f32>>> {
    let seq_len = batch.seq_len;
    let want = batch.batch_size() * seq_len * hidden_size;
    if seq_len == 0 || hidden.len() != want {
        return Err(crate::EngineError::Backend(format!(
            "hidden state holds {} values, expected {want} ({} rows × {seq_len} tokens × {hidden_size})",
            hidden.len(),
            batch.batch_size()
        )));
    }
    Ok(batch
        .lengths
        .iter()
        .enumerate()
        .map(|(row, &len)| {
            let len = len.min(seq_len);
            let base = row * seq_len * hidden_size;
            let tok = |t: usize| &hidden[base + t * hidden_size..base + (t + 1) * hidden_size];
            match pooling {
                Pooling::Cls => tok(0).to_vec(),
                Pooling::Mean => {
                    let mut acc = vec![0f32; hidden_size];
                    for t in 0..len {
                        for (a, v) in acc.iter_mut().zip(tok(t)) {
                            *a += v;
                        }
                    }
                    let n = len.max(1) as f32;
                    acc.iter_mut().for_each(|a| *a /= n);
                    acc
                }
                Pooling::Max => {
                    let mut acc = vec![f32::NEG_INFINITY; hidden_size];
                    for t in 0..len {
                        for (a, v) in acc.iter_mut().zip(tok(t)) {
                            *a = a.max(*v);
                        }
                    }
                    acc
                }
                Pooling::LastToken => tok(len.saturating_sub(1)).to_vec(),
            }
        })
        .collect())
}

/// Encoders whose layers are not BERT's post-LayerNorm blocks.
const OTHER_ARCHITECTURES: &[&str] = &["albert", "deberta", "deberta-v2", "electra", "mpnet", "nomic_bert", "xlnet"];

/// Checks the architecture fields every backend relies on.
pub(crate) fn check_supported(config: &ModelConfig) -> Result<()> {
    if OTHER_ARCHITECTURES.contains(&config.model_type.as_str()) {
        return Err(crate::EngineError::Unsupported(format!(
            "model_type {:?} is not supported; BERT, RoBERTa/XLM-R and DistilBERT encoders are",
            config.model_type
        )));
    }
    if config.num_attention_heads == 0 || !config.hidden_size.is_multiple_of(config.num_attention_heads) {
        return Err(crate::EngineError::Unsupported(format!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            config.hidden_size, config.num_attention_heads
        )));
    }
    Ok(())
}
