//! all-MiniLM-L6-v2 with int8 projections against sentence-transformers'
//! f32 vectors (`fixtures/parity/all-MiniLM-L6-v2.json`, 315 varied texts,
//! written by `scripts/reference/make_embedding_fixture.py`).
//!
//! int8 cannot match to 1e-4 as f32 does; what a user relies on is that
//! vectors point the same way and that neighbours stay neighbours. Measured
//! on this fixture (AVX-512 VNNI, 2026-11-24): cosine min 0.9715, mean
//! 0.9908; nearest neighbour the reference's for 281 of 315 texts (89.2 %);
//! largest shift of a pair's similarity 0.069; largest neighbour regret
//! 0.035. The tolerances below leave a margin under those figures:
//! - cosine to the reference ≥ 0.96 for every text, ≥ 0.985 on average;
//! - each text's nearest other text is the reference's nearest for ≥ 85 %
//!   of texts, and where it is not, the reference rates the one int8 picks
//!   at most 0.05 below its own choice (the "regret");
//! - similarity scores between texts move by at most 0.08.

mod common;

use std::path::PathBuf;

use base64::Engine as _;
use common::ort_available;
use osprey_engine::model::{ModelFiles, ModelSource};
use osprey_engine::{BackendChoice, BatchingSettings, EmbedOptions, Embedder, ModelSettings, Precision, Truncation};

const MIN_COSINE: f32 = 0.96;
const MEAN_COSINE: f32 = 0.985;
const NEIGHBOUR_AGREEMENT: f64 = 0.85;
const MAX_REGRET: f32 = 0.05;
const MAX_PAIR_SHIFT: f32 = 0.08;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Index of the row most similar to row `i` (itself excluded).
fn nearest(rows: &[Vec<f32>], i: usize) -> usize {
    (0..rows.len())
        .filter(|&j| j != i)
        .max_by(|&a, &b| dot(&rows[i], &rows[a]).total_cmp(&dot(&rows[i], &rows[b])))
        .unwrap_or(i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn int8_vectors_stay_within_the_stated_tolerance_of_sentence_transformers() {
    if !ort_available() {
        return;
    }
    let dir = repo().join("models/all-MiniLM-L6-v2");
    if !dir.join("config.json").is_file() {
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "model missing under CI=true");
        eprintln!("SKIPPED: {} missing; run scripts/fetch-models", dir.display());
        return;
    }
    let fixture: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("fixtures/parity/all-MiniLM-L6-v2.json")).expect("fixture"))
            .expect("fixture JSON");
    let texts: Vec<String> = serde_json::from_value(fixture["texts"].clone()).expect("texts");
    let dim = fixture["dim"].as_u64().expect("dim") as usize;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(fixture["embeddings_f32_base64"].as_str().expect("embeddings"))
        .expect("base64");
    let flat: Vec<f32> = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let reference: Vec<Vec<f32>> = flat.chunks_exact(dim).map(<[f32]>::to_vec).collect();
    assert_eq!(reference.len(), texts.len());

    let files = ModelFiles::from_dir(&dir, "all-MiniLM-L6-v2".into(), ModelSource::LocalPath).expect("model dir");
    let settings = ModelSettings {
        backend: BackendChoice::Onnxruntime,
        precision: Precision::Int8,
        warmup_passes: 1,
        ..ModelSettings::default()
    };
    let embedder = tokio::task::spawn_blocking(move || Embedder::load(files, &settings, &BatchingSettings::default()))
        .await
        .expect("join")
        .expect("load int8 model");
    assert_eq!(embedder.info().dtype, "int8");
    assert!(embedder.info().revision.ends_with("-int8"), "revision {}", embedder.info().revision);
    let got = embedder
        .embed(texts.clone(), EmbedOptions { truncation: Truncation::Truncate, normalize: true })
        .await
        .expect("embed")
        .vectors;

    let cosines: Vec<f32> = got.iter().zip(&reference).map(|(g, r)| dot(g, r)).collect();
    let (worst, worst_at) =
        cosines.iter().enumerate().map(|(i, c)| (*c, i)).min_by(|a, b| a.0.total_cmp(&b.0)).expect("texts");
    let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
    let agree = (0..texts.len()).filter(|&i| nearest(&got, i) == nearest(&reference, i)).count();
    // How much closer, by the reference's own vectors, the reference's
    // nearest text is than the one int8 picks (0 when they agree).
    let regret = (0..texts.len())
        .map(|i| {
            dot(&reference[i], &reference[nearest(&reference, i)]) - dot(&reference[i], &reference[nearest(&got, i)])
        })
        .fold(0f32, f32::max);
    let agreement = agree as f64 / texts.len() as f64;
    let mut shift = 0f32;
    for i in 0..texts.len() {
        for j in i + 1..texts.len() {
            shift = shift.max((dot(&got[i], &got[j]) - dot(&reference[i], &reference[j])).abs());
        }
    }
    eprintln!(
        "int8 vs sentence-transformers on {} texts: cosine min {worst:.4} mean {mean:.4}; \
         nearest neighbour agrees for {agree} ({:.1} %); largest pair-similarity shift {shift:.4}; \
         largest neighbour regret {regret:.4}",
        texts.len(),
        100.0 * agreement
    );
    assert!(worst >= MIN_COSINE, "cosine {worst} for {:?}", texts[worst_at]);
    assert!(mean >= MEAN_COSINE, "mean cosine {mean}");
    assert!(agreement >= NEIGHBOUR_AGREEMENT, "nearest neighbour agrees for {agree} of {}", texts.len());
    assert!(regret <= MAX_REGRET, "a neighbour int8 picked is {regret} less similar than the reference's");
    assert!(shift <= MAX_PAIR_SHIFT, "a pair's similarity moved by {shift}");
}

#[tokio::test]
async fn int8_is_refused_on_candle() {
    let dir = repo().join("fixtures/tiny/bert-safetensors");
    let files = ModelFiles::from_dir(&dir, "tiny".into(), ModelSource::LocalPath).expect("fixture");
    let settings = ModelSettings {
        backend: BackendChoice::Candle,
        precision: Precision::Int8,
        warmup_passes: 0,
        ..ModelSettings::default()
    };
    let loaded = tokio::task::spawn_blocking(move || Embedder::load(files, &settings, &BatchingSettings::default()))
        .await
        .expect("join");
    let Err(err) = loaded else { panic!("int8 on candle must fail") };
    assert!(err.to_string().contains("int8"), "{err}");
}
