//! Tiny random sequence classifiers written by `transformers`
//! (`scripts/reference/make_tiny_classifiers.py`): BERT (pooler + classifier),
//! RoBERTa and DistilRoBERTa (dense + out_proj), DistilBERT (pre_classifier +
//! ReLU + classifier). Through the whole path — tokenizer, batcher, each
//! backend, head — osprey's logits equal `transformers`' within 1e-4.

mod common;

use std::path::PathBuf;

use common::ort_available;

use osprey_engine::model::{ModelFiles, ModelSource};
use osprey_engine::{BackendChoice, BatchingSettings, Classifier, ModelSettings, Truncation};

const TOLERANCE: f32 = 1e-4;

fn fixture(name: &str) -> ModelFiles {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny-cls").join(name);
    ModelFiles::from_dir(&dir, name.to_string(), ModelSource::LocalPath).expect("fixture directory")
}

struct Reference {
    texts: Vec<String>,
    logits: Vec<Vec<f32>>,
    labels: Vec<String>,
}

/// The fixture's texts and token-id sequences, all as texts (ids 4.. are the
/// words `w0`.. of the tiny vocabulary), with `transformers`' logits.
fn reference(files: &ModelFiles) -> Reference {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(files.dir.join("reference.json")).expect("reference.json"))
            .expect("json");
    let seqs: Vec<Vec<u32>> = serde_json::from_value(v["sequences"].clone()).expect("sequences");
    let mut texts: Vec<String> = seqs
        .iter()
        .map(|s| s[1..s.len() - 1].iter().map(|id| format!("w{}", id - 4)).collect::<Vec<_>>().join(" "))
        .collect();
    let mut logits: Vec<Vec<f32>> = serde_json::from_value(v["logits"].clone()).expect("logits");
    texts.extend(serde_json::from_value::<Vec<String>>(v["texts"].clone()).expect("texts"));
    logits.extend(serde_json::from_value::<Vec<Vec<f32>>>(v["text_logits"].clone()).expect("text_logits"));
    let id2label: std::collections::BTreeMap<usize, String> = v["id2label"]
        .as_object()
        .expect("id2label")
        .iter()
        .map(|(k, l)| (k.parse().expect("id"), l.as_str().expect("label").to_string()))
        .collect();
    Reference { texts, logits, labels: id2label.into_values().collect() }
}

async fn check(name: &str, backend: BackendChoice) {
    let files = fixture(name);
    let want = reference(&files);
    let settings = ModelSettings { backend, warmup_passes: 1, threads: 1, ..ModelSettings::default() };
    let classifier =
        tokio::task::spawn_blocking(move || Classifier::load(files, &settings, &BatchingSettings::default()))
            .await
            .expect("join")
            .expect("load classifier");
    assert_eq!(classifier.labels(), want.labels.as_slice());
    let got = classifier.classify(want.texts.clone(), Truncation::Truncate).await.expect("classify");
    assert_eq!(got.len(), want.texts.len());
    for (i, (g, w)) in got.iter().zip(&want.logits).enumerate() {
        assert_eq!(g.logits.len(), w.len());
        for (c, (a, b)) in g.logits.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() < TOLERANCE,
                "{name} on {backend:?}: text {i} ({:?}) class {c}: {a} vs transformers {b}",
                want.texts[i]
            );
        }
        let sum: f32 = g.probabilities.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "probabilities sum to {sum}");
        assert_eq!(g.chunks, 1);
    }
}

#[tokio::test]
async fn every_head_matches_transformers_on_both_backends() {
    let ort = ort_available();
    for name in ["bert", "roberta", "distilroberta", "distilbert"] {
        check(name, BackendChoice::Candle).await;
        if ort {
            check(name, BackendChoice::Onnxruntime).await;
        }
    }
}

#[tokio::test]
async fn long_texts_are_split_into_windows_and_averaged() {
    let files = fixture("bert");
    let settings =
        ModelSettings { backend: BackendChoice::Candle, warmup_passes: 0, threads: 1, ..ModelSettings::default() };
    let classifier =
        tokio::task::spawn_blocking(move || Classifier::load(files, &settings, &BatchingSettings::default()))
            .await
            .expect("join")
            .expect("load classifier");
    // The tiny model takes 40 tokens; 100 words need three windows.
    let long: String = (0..100).map(|i| format!("w{}", i % 28)).collect::<Vec<_>>().join(" ");
    let chunked = classifier.classify(vec![long.clone()], Truncation::Chunk).await.expect("chunk");
    assert_eq!(chunked[0].chunks, 3);
    assert_eq!(chunked[0].tokens, 100 + 3 * 2);
    let sum: f32 = chunked[0].probabilities.iter().sum();
    assert!((sum - 1.0).abs() < 1e-5);
    let cut = classifier.classify(vec![long.clone()], Truncation::Truncate).await.expect("truncate");
    assert_eq!((cut[0].chunks, cut[0].tokens), (1, 40));
    assert!(classifier.classify(vec![long], Truncation::Reject).await.is_err());
}

#[test]
fn a_plain_encoder_is_refused_with_a_clear_error() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/bert-safetensors");
    let files = ModelFiles::from_dir(&dir, "plain".into(), ModelSource::LocalPath).expect("fixture");
    let settings = ModelSettings { backend: BackendChoice::Candle, warmup_passes: 0, ..ModelSettings::default() };
    let err = Classifier::load(files, &settings, &BatchingSettings::default()).expect_err("no head");
    assert!(err.to_string().contains("id2label") || err.to_string().contains("head"), "{err}");
}
