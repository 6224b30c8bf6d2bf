//! Tiny random encoders written by `transformers`
//! (`scripts/reference/make_tiny_models.py`), in safetensors and in PyTorch
//! pickles, for BERT, RoBERTa and DistilBERT: both formats load, and both backends reproduce `transformers`'
//! mean-pooled hidden states within 1e-4.

mod common;

use std::path::PathBuf;

use common::ort_available;

use osprey_engine::backend::candle::CandleBackend;
use osprey_engine::backend::ort::{OrtBackend, OrtOptions};
use osprey_engine::backend::{Backend, PaddedBatch};
use osprey_engine::model::{ModelFiles, ModelSource, Pooling};

const TOLERANCE: f32 = 1e-4;

fn fixture(name: &str) -> ModelFiles {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny").join(name);
    ModelFiles::from_dir(&dir, name.to_string(), ModelSource::LocalPath).expect("fixture directory")
}

fn reference(files: &ModelFiles) -> (Vec<Vec<u32>>, Vec<Vec<f32>>) {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(files.dir.join("reference.json")).expect("reference.json"))
            .expect("json");
    (
        serde_json::from_value(v["sequences"].clone()).expect("sequences"),
        serde_json::from_value(v["mean_pooled"].clone()).expect("mean_pooled"),
    )
}

fn check(backend: &mut dyn Backend, files: &ModelFiles) {
    let (seqs, want) = reference(files);
    let types: Vec<Vec<u32>> = seqs.iter().map(|s| vec![0; s.len()]).collect();
    let batch = PaddedBatch::from_sequences(seqs.iter().zip(&types).map(|(s, t)| (s.as_slice(), t.as_slice())));
    let got = backend.embed(&batch, Pooling::Mean).expect("embed");
    for (row, (g, w)) in got.iter().zip(&want).enumerate() {
        for (d, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() < TOLERANCE,
                "{} on {}: row {row} dim {d}: {a} vs transformers {b}",
                backend.info().name,
                files.id
            );
        }
    }
}

#[test]
fn pickle_and_safetensors_hold_the_same_weights() {
    let st = fixture("bert-safetensors").load_weights(&candle_core::Device::Cpu).expect("safetensors");
    let pt = fixture("bert-pytorch-bin").load_weights(&candle_core::Device::Cpu).expect("pickle");
    assert_eq!(st.len(), pt.len());
    for (name, a) in &st {
        let b = pt.get(name).unwrap_or_else(|| panic!("{name} missing from pytorch_model.bin"));
        let (a, b) = (a.flatten_all().expect("flat"), b.flatten_all().expect("flat"));
        assert_eq!(a.to_vec1::<f32>().expect("a"), b.to_vec1::<f32>().expect("b"), "{name}");
    }
}

#[test]
fn backends_match_transformers_on_every_format() {
    for name in ["bert-safetensors", "bert-pytorch-bin", "roberta-pytorch-bin", "distilbert-safetensors"] {
        let files = fixture(name);
        let config = files.read_config().expect("config");
        let mut candle = CandleBackend::load(&files, &config, candle_core::Device::Cpu).expect("candle");
        check(&mut candle, &files);
        if ort_available() {
            let mut ort = OrtBackend::load(&files, &config, &OrtOptions::default()).expect("onnxruntime");
            check(&mut ort, &files);
        }
    }
}

#[test]
fn corrupt_weights_are_a_named_error() {
    let dir = tempfile_dir();
    let src = fixture("bert-safetensors");
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.dir.join(f), dir.join(f)).expect("copy");
    }
    std::fs::write(dir.join("model.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}").expect("write");
    let files = ModelFiles::from_dir(&dir, "corrupt".into(), ModelSource::LocalPath).expect("files exist");
    let err = files.load_weights(&candle_core::Device::Cpu).expect_err("corrupt weights");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    std::fs::write(dir.join("config.json"), b"{\"hidden_size\": \"big\"}").expect("write");
    let err = files.read_config().expect_err("bad config");
    assert!(err.to_string().contains("config.json"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("osprey-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}
