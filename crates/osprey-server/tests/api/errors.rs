//! Every error class answers with the one JSON shape and the right status.

use serde_json::{json, Value};

use crate::helpers::{long_text, shared_app};

async fn expect_error(resp: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(resp.status().as_u16(), status, "status");
    let body: Value = resp.json().await.expect("error body is JSON");
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"].as_str().expect("message").to_string()
}

#[tokio::test]
async fn malformed_json_is_400() {
    let Some(app) = shared_app() else { return };
    let r = app
        .client()
        .post(app.url("/embed"))
        .header("content-type", "application/json")
        .body("{\"inputs\": [\"a\",")
        .send()
        .await
        .expect("request");
    let msg = expect_error(r, 400, "invalid_request").await;
    assert!(msg.contains("malformed JSON"), "{msg}");
}

#[tokio::test]
async fn wrong_types_and_unknown_fields_are_400() {
    let Some(app) = shared_app() else { return };
    expect_error(app.post_json("/embed", json!({"inputs": 42})).await, 400, "invalid_request").await;
    expect_error(app.post_json("/embed", json!({"inputs": "x", "normalize": "yes"})).await, 400, "invalid_request")
        .await;
    expect_error(app.post_json("/embed", json!({"input": "x"})).await, 400, "invalid_request").await;
    expect_error(app.post_json("/v1/embeddings", json!({"input": [1, 2, 3]})).await, 400, "invalid_request").await;
    expect_error(app.post_json("/similarity", json!({"inputs": "x"})).await, 400, "invalid_request").await;
}

#[tokio::test]
async fn empty_body_and_wrong_content_type() {
    let Some(app) = shared_app() else { return };
    let r = app.client().post(app.url("/embed")).send().await.expect("request");
    expect_error(r, 400, "invalid_request").await;
    let r = app
        .client()
        .post(app.url("/embed"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("request");
    expect_error(r, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let Some(app) = shared_app() else { return };
    let big = "x".repeat(300 * 1024);
    let r = app.post_json("/embed", json!({"inputs": big})).await;
    expect_error(r, 413, "payload_too_large").await;
}

#[tokio::test]
async fn empty_and_too_many_inputs_are_422() {
    let Some(app) = shared_app() else { return };
    expect_error(app.post_json("/embed", json!({"inputs": []})).await, 422, "validation_error").await;
    expect_error(app.post_json("/embed", json!({"inputs": ""})).await, 422, "validation_error").await;
    expect_error(app.post_json("/embed", json!({"inputs": ["ok", ""]})).await, 422, "validation_error").await;
    // Whitespace is text (sentence-transformers embeds it too).
    assert_eq!(app.post_json("/embed", json!({"inputs": " \t\n"})).await.status(), 200);
    let many: Vec<String> = (0..65).map(|i| format!("text {i}")).collect();
    let msg = expect_error(app.post_json("/embed", json!({"inputs": many})).await, 422, "validation_error").await;
    assert!(msg.contains("max_client_batch_size"), "{msg}");
    expect_error(
        app.post_json("/similarity", json!({"inputs": {"source_sentence": "a", "sentences": []}})).await,
        422,
        "validation_error",
    )
    .await;
    expect_error(
        app.post_json("/v1/embeddings", json!({"input": "x", "dimensions": 12})).await,
        422,
        "validation_error",
    )
    .await;
    expect_error(
        app.post_json("/embed", json!({"inputs": "x", "truncation_direction": "Left"})).await,
        422,
        "validation_error",
    )
    .await;
}

#[tokio::test]
async fn over_length_input_without_truncation_is_413() {
    let Some(app) = shared_app() else { return };
    let r = app.post_json("/embed", json!({"inputs": long_text(600), "truncate": false})).await;
    let msg = expect_error(r, 413, "input_too_long").await;
    assert!(msg.contains("256"), "{msg}");
    // With truncation (the default) the same input is fine.
    assert_eq!(app.post_json("/embed", json!({"inputs": long_text(600)})).await.status(), 200);
}

#[tokio::test]
async fn unknown_route_method_and_model() {
    let Some(app) = shared_app() else { return };
    expect_error(app.get("/nope").await, 404, "not_found").await;
    expect_error(app.get("/embed").await, 405, "method_not_allowed").await;
    let msg =
        expect_error(app.post_json("/v1/embeddings", json!({"input": "x", "model": "gpt-9"})).await, 404, "not_found")
            .await;
    assert!(msg.contains("default"), "lists the served models: {msg}");
}

#[tokio::test]
async fn hostile_inputs_never_produce_5xx() {
    let Some(app) = shared_app() else { return };
    let cases = [
        json!({"inputs": "\u{0000}\u{0001}\u{FFFF}"}),
        json!({"inputs": "🦅".repeat(2000)}),
        json!({"inputs": "a".repeat(100_000)}),
        json!({"inputs": ["\u{200B}\u{200B}", "٩(̾●̮̮̃̾•̃̾)۶", "𝕳𝖊𝖑𝖑𝖔"]}),
        json!({"inputs": "x", "chunk": true, "truncate": false}),
        json!({"inputs": null}),
        json!([1, 2, 3]),
        json!("just a string"),
    ];
    for body in cases {
        let r = app.post_json("/embed", body.clone()).await;
        assert!(r.status().as_u16() < 500, "{body} gave {}", r.status());
    }
}
