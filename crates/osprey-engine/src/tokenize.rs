//! Tokenization with the model's own `tokenizer.json`, with two of its
//! defaults overridden: no padding (batches are padded to their own longest
//! row) and no built-in truncation (the engine truncates, rejects or chunks
//! at the model's `max_seq_length`, per request).

use std::sync::Arc;

use tokenizers::Tokenizer;

use crate::error::{EngineError, Result};
use crate::model::ModelFiles;

/// Token ids and segment ids of one sequence, special tokens included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

/// What to do with a text longer than the model's maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Truncation {
    /// Keep the first `max_seq_length` tokens (sentence-transformers' behaviour).
    #[default]
    Truncate,
    /// Refuse the input with [`EngineError::InputTooLong`].
    Reject,
    /// Split into windows of `max_seq_length`, embed each and mean-pool them
    /// weighted by token count.
    Chunk,
}

/// A thread-safe tokenizer bound to one model.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Arc<Tokenizer>,
    prefix: Vec<u32>,
    suffix: Vec<u32>,
    max_len: usize,
}

impl TextTokenizer {
    /// Loads `tokenizer.json` for a model whose longest sequence is `max_len` tokens.
    pub fn load(files: &ModelFiles, max_len: usize) -> Result<Self> {
        let path = &files.tokenizer;
        let mut tok = Tokenizer::from_file(path).map_err(|e| EngineError::invalid(path, e))?;
        tok.with_padding(None);
        tok.with_truncation(None).map_err(|e| EngineError::invalid(path, e))?;
        // Learn the special tokens the post-processor wraps a single sequence in.
        let probe = "hello";
        let bare = tok.encode_fast(probe, false).map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        let full = tok.encode_fast(probe, true).map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        let (bare, full) = (bare.get_ids(), full.get_ids());
        let start = (0..=full.len().saturating_sub(bare.len()))
            .find(|&i| full[i..].starts_with(bare))
            .ok_or_else(|| EngineError::invalid(path, "cannot locate the text inside its special tokens"))?;
        let prefix = full[..start].to_vec();
        let suffix = full[start + bare.len()..].to_vec();
        if max_len <= prefix.len() + suffix.len() {
            return Err(EngineError::Unsupported(format!("max_seq_length {max_len} leaves no room for text")));
        }
        Ok(Self { inner: Arc::new(tok), prefix, suffix, max_len })
    }

    /// Longest sequence, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    fn room(&self) -> usize {
        self.max_len - self.prefix.len() - self.suffix.len()
    }

    fn wrap(&self, content: &[u32]) -> Sequence {
        let mut ids = Vec::with_capacity(content.len() + self.prefix.len() + self.suffix.len());
        ids.extend_from_slice(&self.prefix);
        ids.extend_from_slice(content);
        ids.extend_from_slice(&self.suffix);
        let type_ids = vec![0; ids.len()];
        Sequence { ids, type_ids }
    }

    /// Content token ids of `text`, without special tokens.
    pub fn content_ids(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode_fast(text, false).map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Tokenizes `text` into one sequence (or several, with [`Truncation::Chunk`]).
    pub fn encode(&self, text: &str, mode: Truncation) -> Result<Vec<Sequence>> {
        let content = self.content_ids(text)?;
        let room = self.room();
        if content.len() <= room {
            return Ok(vec![self.wrap(&content)]);
        }
        match mode {
            Truncation::Truncate => Ok(vec![self.wrap(&content[..room])]),
            Truncation::Reject => Err(EngineError::InputTooLong {
                tokens: content.len() + self.prefix.len() + self.suffix.len(),
                max: self.max_len,
            }),
            Truncation::Chunk => Ok(content.chunks(room).map(|c| self.wrap(c)).collect()),
        }
    }

    /// Token strings and ids for `/tokenize`, with character offsets.
    pub fn tokens(&self, text: &str, add_special: bool) -> Result<Vec<TokenInfo>> {
        let enc = self.inner.encode(text, add_special).map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(enc
            .get_ids()
            .iter()
            .zip(enc.get_tokens())
            .zip(enc.get_offsets())
            .zip(enc.get_special_tokens_mask())
            .map(|(((&id, text), &(start, stop)), &special)| TokenInfo {
                id,
                text: text.clone(),
                special: special == 1,
                start,
                stop,
            })
            .collect())
    }
}

/// One token as `/tokenize` reports it.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: u32,
    pub text: String,
    pub special: bool,
    pub start: usize,
    pub stop: usize,
}
