//! Happy paths of every route.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::{cosine, shared_app};

#[tokio::test]
async fn health_and_ready_answer_ok() {
    let Some(app) = shared_app() else { return };
    let r = app.get("/health").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json")["status"], "ok");
    let r = app.get("/ready").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json")["status"], "ready");
}

#[tokio::test]
async fn embed_single_and_batch_return_unit_vectors_in_order() {
    let Some(app) = shared_app() else { return };
    let one: Vec<Vec<f32>> =
        app.post_json("/embed", json!({"inputs": "hello world"})).await.json().await.expect("json");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].len(), 384);
    let norm: f32 = one[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "normalised by default, norm {norm}");

    let texts = ["a cat sits on the mat", "hello world", "GPU kernels and matmul throughput"];
    let many: Vec<Vec<f32>> =
        app.post_json("/embed", json!({"inputs": texts, "normalize": false})).await.json().await.expect("json");
    assert_eq!(many.len(), 3);
    assert!(cosine(&many[1], &one[0]) > 0.9999, "same text, same vector regardless of batch");
    let raw_norm: f32 = many[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((raw_norm - 1.0).abs() > 1e-3, "normalize=false returns the raw pooled vector");
}

#[tokio::test]
async fn similarity_ranks_related_sentences_higher() {
    let Some(app) = shared_app() else { return };
    let r = app
        .post_json(
            "/similarity",
            json!({"inputs": {"source_sentence": "How do I speed up my database queries?",
                   "sentences": ["Tips for optimising SQL query performance", "My cat likes to sleep in the sun"]}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let scores: Vec<f32> = r.json().await.expect("json");
    assert_eq!(scores.len(), 2);
    assert!(scores[0] > scores[1] + 0.2, "{scores:?}");
    assert!(scores.iter().all(|s| (-1.0..=1.0001).contains(s)));
}

#[tokio::test]
async fn tokenize_returns_tokens_with_offsets() {
    let Some(app) = shared_app() else { return };
    let r = app.post_json("/tokenize", json!({"inputs": ["Hello world"]})).await;
    assert_eq!(r.status(), 200);
    let toks: Value = r.json().await.expect("json");
    let toks = toks[0].as_array().expect("list");
    let texts: Vec<&str> = toks.iter().map(|t| t["text"].as_str().expect("text")).collect();
    assert_eq!(texts, ["[CLS]", "hello", "world", "[SEP]"]);
    assert_eq!(toks[1]["start"], 0);
    assert_eq!(toks[1]["stop"], 5);
    assert_eq!(toks[0]["special"], true);
}

#[tokio::test]
async fn info_describes_model_and_limits() {
    let Some(app) = shared_app() else { return };
    let info: Value = app.get("/info").await.json().await.expect("json");
    assert_eq!(info["model_id"], "all-MiniLM-L6-v2");
    assert_eq!(info["max_input_length"], 256);
    assert_eq!(info["model_type"]["embedding"]["pooling"], "mean");
    assert_eq!(info["osprey"]["hidden_size"], 384);
    assert!(info["osprey"]["weight_bytes"].as_u64().expect("bytes") > 80_000_000);
}

#[tokio::test]
async fn openai_embeddings_float_and_base64_agree() {
    let Some(app) = shared_app() else { return };
    let body = json!({"input": ["first text", "second text"], "model": "all-MiniLM-L6-v2"});
    let r = app.post_json("/v1/embeddings", body).await;
    assert_eq!(r.status(), 200);
    let f: Value = r.json().await.expect("json");
    assert_eq!(f["object"], "list");
    assert_eq!(f["model"], "all-MiniLM-L6-v2");
    assert_eq!(f["data"][1]["index"], 1);
    assert_eq!(f["data"][0]["object"], "embedding");
    assert!(f["usage"]["prompt_tokens"].as_u64().expect("tokens") >= 6);
    assert_eq!(f["usage"]["prompt_tokens"], f["usage"]["total_tokens"]);
    let floats: Vec<f32> = serde_json::from_value(f["data"][0]["embedding"].clone()).expect("floats");

    let r = app.post_json("/v1/embeddings", json!({"input": "first text", "encoding_format": "base64"})).await;
    let b: Value = r.json().await.expect("json");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b["data"][0]["embedding"].as_str().expect("base64 string"))
        .expect("valid base64");
    let decoded: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(decoded.len(), 384);
    assert!(cosine(&decoded, &floats) > 0.9999);
}

#[tokio::test]
async fn chunk_mode_differs_from_truncation_for_long_inputs() {
    let Some(app) = shared_app() else { return };
    let head = "The database migration failed because of a lock timeout. ".repeat(40);
    let tail = "Sourdough bread needs a long cold fermentation in the fridge. ".repeat(40);
    let text = format!("{head}{tail}");
    let truncated: Vec<Vec<f32>> = app.post_json("/embed", json!({"inputs": text})).await.json().await.expect("json");
    let chunked: Vec<Vec<f32>> =
        app.post_json("/embed", json!({"inputs": text, "chunk": true})).await.json().await.expect("json");
    let bread: Vec<Vec<f32>> = app
        .post_json("/embed", json!({"inputs": "Sourdough bread needs a long cold fermentation"}))
        .await
        .json()
        .await
        .expect("json");
    assert!(
        cosine(&chunked[0], &bread[0]) > cosine(&truncated[0], &bread[0]) + 0.1,
        "chunking sees the end of the text; truncation does not"
    );
}

#[tokio::test]
async fn openapi_document_and_docs_page_are_served() {
    let Some(app) = shared_app() else { return };
    let doc: Value = app.get("/openapi.json").await.json().await.expect("json");
    for p in ["/embed", "/similarity", "/tokenize", "/info", "/v1/embeddings", "/health", "/ready", "/metrics"] {
        assert!(doc["paths"][p].is_object(), "{p} missing from the OpenAPI document");
    }
    let page = app.get("/docs").await.text().await.expect("html");
    assert!(page.contains("/openapi.json"));
}

#[tokio::test]
async fn metrics_expose_request_batch_and_process_figures() {
    let Some(app) = shared_app() else { return };
    let _ = app.post_json("/embed", json!({"inputs": "metrics please"})).await;
    let text = app.metrics().await;
    for name in [
        "osprey_http_requests_total{",
        "osprey_http_request_duration_seconds_bucket{",
        "osprey_batch_size_bucket",
        "osprey_batch_tokens_bucket",
        "osprey_queue_wait_seconds_bucket",
        "osprey_tokenization_duration_seconds_bucket",
        "osprey_inference_duration_seconds_bucket",
        "osprey_queue_size",
        "osprey_model_load_seconds",
        "osprey_model_weight_bytes",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_threads",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    assert!(text.contains(r#"route="/embed""#), "route label is the template");
    assert!(text.contains(r#"status="2xx""#));
}
