//! Parity with sentence-transformers: the committed fixture
//! (`scripts/reference/make_embedding_fixture.py`) holds reference vectors for
//! varied texts; every one must come back through `/embed`, with batching on,
//! at cosine ≥ 0.9999.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::{cosine, repo_root, shared_app};

const MIN_COSINE: f32 = 0.9999;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_match_sentence_transformers() {
    let Some(app) = shared_app() else { return };
    let path = repo_root().join("fixtures/parity/all-MiniLM-L6-v2.json");
    let fixture: Value = serde_json::from_slice(&std::fs::read(&path).expect("parity fixture")).expect("fixture JSON");
    let texts: Vec<String> = serde_json::from_value(fixture["texts"].clone()).expect("texts");
    let dim = fixture["dim"].as_u64().expect("dim") as usize;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(fixture["embeddings_f32_base64"].as_str().expect("embeddings"))
        .expect("base64");
    let reference: Vec<f32> = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(reference.len(), texts.len() * dim);
    assert!(texts.len() >= 200, "fixture has {} texts", texts.len());

    // Concurrent requests of mixed sizes so texts share batches with others.
    let mut tasks = Vec::new();
    for (start, group) in texts.chunks(7).enumerate().map(|(i, g)| (i * 7, g.to_vec())) {
        let (client, url) = (app.client(), app.url("/embed"));
        tasks.push(tokio::spawn(async move {
            let r = client.post(url).json(&json!({"inputs": group})).send().await.expect("request");
            assert_eq!(r.status(), 200);
            (start, r.json::<Vec<Vec<f32>>>().await.expect("json"))
        }));
    }
    let mut worst = (1.0f32, String::new());
    for t in tasks {
        let (start, vectors) = t.await.expect("task");
        for (k, v) in vectors.iter().enumerate() {
            let i = start + k;
            let c = cosine(v, &reference[i * dim..(i + 1) * dim]);
            if c < worst.0 {
                worst = (c, texts[i].chars().take(60).collect());
            }
        }
    }
    assert!(worst.0 >= MIN_COSINE, "lowest cosine {} for {:?}", worst.0, worst.1);
    eprintln!("parity: {} texts, lowest cosine {:.6}", texts.len(), worst.0);
}
