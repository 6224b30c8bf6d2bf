//! ONNX Runtime backend: the fast CPU path.
//!
//! The graph comes from [`super::onnx_export`], built in memory from the
//! model's own weights, so no `.onnx` file is downloaded or shipped. ONNX
//! Runtime is loaded at run time from a shared library (`load-dynamic`): the
//! default build links nothing, and `scripts/fetch-models` installs the
//! library from the `onnxruntime` Python wheel.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

use super::{pool_hidden, Backend, BackendInfo, PaddedBatch};
use crate::error::{EngineError, Result};
use crate::model::{ModelConfig, ModelFiles, Pooling};

/// Tuning for the ONNX Runtime session.
#[derive(Debug, Clone)]
pub struct OrtOptions {
    /// Path of `libonnxruntime.so`; searched for when `None`.
    pub library: Option<PathBuf>,
    /// Threads for one operator (the matmuls); 0 means one per core.
    pub intra_threads: usize,
    /// Let idle worker threads spin between operators (lower latency, burns CPU).
    pub spinning: bool,
    /// Build the graph for `cls` pooling only: the last layer computes the
    /// first token alone (see [`super::onnx_export::export_bert_with`]).
    pub first_token_only: bool,
    /// Run the projections in int8 (see [`super::onnx_export`]): about twice
    /// the throughput on CPUs with VNNI, at a small, measured cost in
    /// accuracy (`docs/benchmarks.md`).
    pub int8: bool,
}

impl Default for OrtOptions {
    fn default() -> Self {
        Self { library: None, intra_threads: 0, spinning: true, first_token_only: false, int8: false }
    }
}

/// Whether this CPU multiplies uint8 by int8 without intermediate
/// saturation (AVX-VNNI or AVX-512 VNNI); without it int8 weights use 7 bits.
fn has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512vnni") || std::arch::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // ARM's int8 dot products (SDOT/UDOT) accumulate in 32 bits.
        true
    }
}

static ENVIRONMENT: OnceLock<std::result::Result<(ort::environment::Environment, PathBuf), String>> = OnceLock::new();

/// Where the ONNX Runtime library is looked for, in order.
pub fn library_candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut c = Vec::new();
    if let Some(p) = explicit {
        c.push(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        c.push(PathBuf::from(p));
    }
    c.push(PathBuf::from("vendor/onnxruntime/libonnxruntime.so"));
    if let Ok(exe) = std::env::current_exe() {
        // target/{release,debug}/osprey and target/debug/deps/test-binary → repo root.
        for up in exe.ancestors().skip(1).take(4) {
            c.push(up.join("vendor/onnxruntime/libonnxruntime.so"));
            c.push(up.join("libonnxruntime.so"));
        }
    }
    c.push(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../vendor/onnxruntime/libonnxruntime.so")));
    c
}

/// Loads ONNX Runtime once per process and returns the library path used.
pub fn ensure_runtime(explicit: Option<&Path>) -> Result<PathBuf> {
    let env = ENVIRONMENT.get_or_init(|| {
        let candidates = library_candidates(explicit);
        let Some(lib) = candidates.iter().find(|p| p.is_file()) else {
            return Err(format!(
                "ONNX Runtime library not found (looked at {}); run scripts/fetch-models or set ORT_DYLIB_PATH",
                candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ));
        };
        let env = ort::init_from(lib)
            .map_err(|e| format!("loading {}: {e}", lib.display()))?
            .with_name("osprey")
            .build()
            .map_err(|e| format!("initialising ONNX Runtime from {}: {e}", lib.display()))?;
        Ok((env, lib.clone()))
    });
    match env {
        Ok((_, lib)) => Ok(lib.clone()),
        Err(e) => Err(EngineError::Backend(e.clone())),
    }
}

/// A BERT-family encoder running in an ONNX Runtime session on the CPU.
pub struct OrtBackend {
    session: Session,
    hidden_size: usize,
    /// RoBERTa numbers positions from `pad_token_id + 1`; BERT from 0.
    position_offset: Option<i64>,
    threads: usize,
    first_token_only: bool,
    int8: bool,
}

impl OrtBackend {
    pub fn load(files: &ModelFiles, config: &ModelConfig, opts: &OrtOptions) -> Result<Self> {
        let weights = files.load_weights(&candle_core::Device::Cpu)?;
        Self::load_from_weights(&weights, config, opts, &files.id)
    }

    /// Builds the session from weights already in memory.
    pub fn load_from_weights(
        weights: &std::collections::HashMap<String, candle_core::Tensor>,
        config: &ModelConfig,
        opts: &OrtOptions,
        id: &str,
    ) -> Result<Self> {
        ensure_runtime(opts.library.as_deref())?;
        let export = super::onnx_export::ExportOptions {
            first_token_only: opts.first_token_only,
            int8: opts.int8,
            reduce_range: opts.int8 && !has_vnni(),
        };
        let onnx = super::onnx_export::export_bert_with(config, weights, &export)?;
        let threads = if opts.intra_threads == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            opts.intra_threads
        };
        let Some((env, _)) = ENVIRONMENT.get().and_then(|r| r.as_ref().ok()) else {
            return Err(EngineError::Backend("ONNX Runtime is not initialised".into()));
        };
        let session = Session::builder(env)
            .and_then(|b| b.with_optimization_level(GraphOptimizationLevel::All).map_err(Into::into))
            .and_then(|b| b.with_intra_threads(threads).map_err(Into::into))
            .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
            .and_then(|b| b.with_intra_op_spinning(opts.spinning).map_err(Into::into))
            .and_then(|mut b| b.commit_from_memory(&onnx))
            .map_err(|e| EngineError::Backend(format!("creating ONNX Runtime session for {id}: {e}")))?;
        let position_offset =
            config.model_type.contains("roberta").then(|| i64::from(config.pad_token_id.unwrap_or(1)));
        Ok(Self {
            session,
            hidden_size: config.hidden_size,
            position_offset,
            threads,
            first_token_only: opts.first_token_only,
            int8: opts.int8,
        })
    }

    fn position_ids(&self, batch: &PaddedBatch) -> Vec<i64> {
        let s = batch.seq_len;
        let mut pos = vec![0i64; batch.input_ids.len()];
        for (row, &len) in batch.lengths.iter().enumerate() {
            for t in 0..s {
                pos[row * s + t] = match self.position_offset {
                    // Padding keeps the padding index; real tokens count up after it.
                    Some(pad) if t < len => pad + 1 + t as i64,
                    Some(pad) => pad,
                    None => t as i64,
                };
            }
        }
        pos
    }
}

/// A borrowed `[batch, seq]` tensor over `v`: inputs are passed without copying.
fn view(shape: [usize; 2], v: &[i64]) -> Result<TensorRef<'_, i64>> {
    TensorRef::from_array_view((shape, v)).map_err(EngineError::backend)
}

impl Backend for OrtBackend {
    fn embed(&mut self, batch: &PaddedBatch, pooling: Pooling) -> Result<Vec<Vec<f32>>> {
        if batch.batch_size() == 0 {
            return Ok(Vec::new());
        }
        let shape = [batch.batch_size(), batch.seq_len];
        let positions = self.position_ids(batch);
        let inputs = ort::inputs![
            "input_ids" => view(shape, &batch.input_ids)?,
            "attention_mask" => view(shape, &batch.attention_mask)?,
            "token_type_ids" => view(shape, &batch.token_type_ids)?,
            "position_ids" => view(shape, &positions)?,
        ];
        let outputs = self.session.run(inputs).map_err(EngineError::backend)?;
        let (_, hidden) = outputs["last_hidden_state"].try_extract_tensor::<f32>().map_err(EngineError::backend)?;
        if self.first_token_only {
            if pooling != Pooling::Cls {
                return Err(EngineError::Backend(format!(
                    "this session was built for cls pooling and cannot pool {pooling}"
                )));
            }
            let want = batch.batch_size() * self.hidden_size;
            if hidden.len() != want {
                return Err(EngineError::Backend(format!(
                    "first-token output holds {} values, expected {want}",
                    hidden.len()
                )));
            }
            return Ok(hidden.chunks_exact(self.hidden_size).map(<[f32]>::to_vec).collect());
        }
        pool_hidden(hidden, batch, self.hidden_size, pooling)
    }

    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "onnxruntime",
            device: format!("cpu ({} threads)", self.threads),
            dtype: if self.int8 { "int8" } else { "f32" }.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The exported graph against candle and a naive f64 encoder, on tiny
    //! random BERT and RoBERTa models (all activations, padded rows, token types).

    use super::*;
    use crate::backend::candle::tests::{
        batch_of, naive_forward, naive_pool, tiny_config, tiny_sequences, tiny_weights,
    };

    fn runtime_available() -> bool {
        if ensure_runtime(None).is_ok() {
            return true;
        }
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "ONNX Runtime library missing under CI=true: run scripts/fetch-models"
        );
        eprintln!("SKIPPED: ONNX Runtime library missing; run scripts/fetch-models");
        false
    }

    fn check(model_type: &str, act: &str, extra: serde_json::Value, token_types: bool) {
        if !runtime_available() {
            return;
        }
        let cfg = tiny_config(model_type, act, extra);
        let weights = tiny_weights(token_types);
        let mut backend = OrtBackend::load_from_weights(&weights, &cfg, &OrtOptions::default(), "tiny").expect("load");
        let seqs = tiny_sequences();
        let batch = batch_of(&seqs);
        for pooling in [Pooling::Mean, Pooling::Cls, Pooling::Max, Pooling::LastToken] {
            let got = backend.embed(&batch, pooling).expect("embed");
            for (row, (ids, types)) in seqs.iter().enumerate() {
                let want = naive_pool(&naive_forward(&weights, &cfg, ids, types), pooling);
                for (d, (g, w)) in got[row].iter().zip(&want).enumerate() {
                    assert!(
                        (f64::from(*g) - w).abs() < 1e-4,
                        "{model_type}/{act} {pooling} row {row} dim {d}: onnxruntime {g}, reference {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn exported_bert_matches_reference() {
        check("bert", "gelu", serde_json::json!({}), true);
    }

    #[test]
    fn exported_bert_tanh_gelu_and_relu_match_reference() {
        check("bert", "gelu_new", serde_json::json!({}), true);
        check("bert", "relu", serde_json::json!({}), true);
    }

    #[test]
    fn exported_roberta_matches_reference() {
        check("roberta", "gelu", serde_json::json!({"pad_token_id": 1}), true);
        check("roberta", "gelu", serde_json::json!({"pad_token_id": 1}), false);
    }

    /// Tiny GELU BERT and RoBERTa configurations, with their names.
    fn bert_and_roberta() -> [(&'static str, ModelConfig); 2] {
        [
            ("bert", tiny_config("bert", "gelu", serde_json::json!({}))),
            ("roberta", tiny_config("roberta", "gelu", serde_json::json!({"pad_token_id": 1}))),
        ]
    }

    #[test]
    fn first_token_graph_gives_the_full_graphs_cls_vectors() {
        if !runtime_available() {
            return;
        }
        for (model_type, cfg) in bert_and_roberta() {
            let weights = tiny_weights(true);
            let batch = batch_of(&tiny_sequences());
            let mut full = OrtBackend::load_from_weights(&weights, &cfg, &OrtOptions::default(), "tiny").expect("load");
            let opts = OrtOptions { first_token_only: true, ..OrtOptions::default() };
            let mut first = OrtBackend::load_from_weights(&weights, &cfg, &opts, "tiny").expect("load");
            let want = full.embed(&batch, Pooling::Cls).expect("full graph");
            let got = first.embed(&batch, Pooling::Cls).expect("first-token graph");
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
                assert!((g - w).abs() < 1e-5, "{model_type}: {g} vs {w}");
            }
            assert!(first.embed(&batch, Pooling::Mean).is_err(), "mean pooling needs every token");
        }
    }

    fn cosine(a: &[f32], b: &[f64]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * y).sum();
        let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
        dot / (na * nb)
    }

    #[test]
    fn int8_graph_points_the_same_way_as_the_reference() {
        if !runtime_available() {
            return;
        }
        for (model_type, cfg) in bert_and_roberta() {
            let weights = tiny_weights(true);
            let seqs = tiny_sequences();
            let batch = batch_of(&seqs);
            for first_token_only in [false, true] {
                let opts = OrtOptions { int8: true, first_token_only, ..OrtOptions::default() };
                let mut backend = OrtBackend::load_from_weights(&weights, &cfg, &opts, "tiny").expect("load");
                assert_eq!(backend.info().dtype, "int8");
                let pooling = if first_token_only { Pooling::Cls } else { Pooling::Mean };
                let got = backend.embed(&batch, pooling).expect("embed");
                for (row, (ids, types)) in seqs.iter().enumerate() {
                    let want = naive_pool(&naive_forward(&weights, &cfg, ids, types), pooling);
                    let c = cosine(&got[row], &want);
                    // Random uniform weights quantise worse than trained
                    // ones; the real model's tolerance is in tests/int8.rs.
                    assert!(c > 0.98, "{model_type} {pooling} row {row}: cosine {c} to the f64 reference");
                }
            }
        }
    }

    #[test]
    fn unknown_activation_is_an_error() {
        if !runtime_available() {
            return;
        }
        let cfg = tiny_config("bert", "swish", serde_json::json!({}));
        let err = OrtBackend::load_from_weights(&tiny_weights(true), &cfg, &OrtOptions::default(), "tiny");
        assert!(matches!(err, Err(EngineError::Unsupported(_))));
    }
}
