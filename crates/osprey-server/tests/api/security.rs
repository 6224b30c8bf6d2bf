//! Credentials, rate limits and CORS over real HTTP. The admin-route test
//! walks the OpenAPI document, so a route added later is checked too.

use std::time::Duration;

use osprey_types::redact::Secret;
use serde_json::{json, Value};

use crate::helpers::{model_dir, spawn_app, test_settings, TestApp, ADMIN_TOKEN};

const INFER_KEY: &str = "inference-key-0123456789";

/// Every operation in the OpenAPI document: (method, path with its
/// parameters filled, the security the document declares).
async fn operations(app: &TestApp) -> Vec<(reqwest::Method, String, Value)> {
    let doc: Value =
        app.anonymous().get(app.url("/openapi.json")).send().await.expect("doc").json().await.expect("json");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Ok(m) = method.to_uppercase().parse::<reqwest::Method>() else { continue };
            let filled = path.replace("{name}", "some-set").replace("{id}", "some-id");
            out.push((m, filled, op.get("security").cloned().unwrap_or(Value::Null)));
        }
    }
    out
}

fn is_admin(security: &Value) -> bool {
    security.as_array().is_some_and(|a| a.iter().any(|r| r.get("admin").is_some()))
}

async fn send(client: &reqwest::Client, app: &TestApp, method: &reqwest::Method, path: &str) -> reqwest::Response {
    let req = client.request(method.clone(), app.url(path));
    let req = if *method == reqwest::Method::GET { req } else { req.json(&json!({})) };
    req.send().await.expect("request")
}

#[tokio::test]
async fn every_admin_route_refuses_requests_without_an_admin_credential() {
    let Some(model) = model_dir() else { return };
    let mut settings = test_settings(&model);
    settings.security.api_keys = vec![Secret::new(INFER_KEY)];
    let app = spawn_app(settings);
    let ops = operations(&app).await;
    let admin: Vec<_> = ops.iter().filter(|(_, _, s)| is_admin(s)).collect();
    // The classifier denies by default; these must be among its admin routes.
    for (m, p) in [
        ("GET", "/performance/config"),
        ("PUT", "/performance/config"),
        ("POST", "/performance/cache/clear"),
        ("POST", "/performance/memory/cleanup"),
        ("PUT", "/v1/topics/some-set"),
        ("DELETE", "/v1/topics/some-set"),
        ("POST", "/v1/stats/emotions/refresh"),
    ] {
        assert!(admin.iter().any(|(om, op, _)| om.as_str() == m && op == p), "{m} {p} is not an admin route");
    }
    // Every mutation is either an inference call or an admin route.
    for (m, p, s) in &ops {
        if *m != reqwest::Method::GET {
            assert!(is_admin(s) || s.to_string().contains("api_key"), "{m} {p} has no credential requirement: {s}");
        }
    }
    let anonymous = app.anonymous();
    let wrong = bearer("not-the-admin-token-at-all");
    let infer = bearer(INFER_KEY);
    for (m, p, _) in &admin {
        let r = send(&anonymous, &app, m, p).await;
        assert_eq!(r.status(), 401, "{m} {p} without a credential");
        assert!(r.headers().contains_key("www-authenticate"));
        let body: Value = r.json().await.expect("json error");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert_eq!(send(&wrong, &app, m, p).await.status(), 401, "{m} {p} with a wrong token");
        assert_eq!(send(&infer, &app, m, p).await.status(), 403, "{m} {p} with an inference key");
    }
    // The admin token passes the guard (what the handler then says is its own business).
    for (m, p, _) in &admin {
        let status = send(&app.client(), &app, m, p).await.status();
        assert!(status != 401 && status != 403, "{m} {p} refused the admin token: {status}");
    }
}

#[tokio::test]
async fn without_a_configured_admin_token_admin_routes_are_refused_not_open() {
    let Some(model) = model_dir() else { return };
    let mut settings = test_settings(&model);
    settings.security.admin_token = None;
    let app = spawn_app(settings);
    for (m, p, s) in operations(&app).await {
        if is_admin(&s) {
            let r = send(&app.client(), &app, &m, &p).await;
            assert_eq!(r.status(), 401, "{m} {p} must be refused when no admin credential exists");
            let body: Value = r.json().await.expect("json");
            assert!(body["error"]["message"].as_str().unwrap_or("").contains("no admin credential"), "{body}");
        }
    }
    // Inference stays open when no inference key is configured.
    let r = app.anonymous().post(app.url("/v1/sentiment")).json(&json!({ "inputs": ["fine"] })).send().await;
    assert_eq!(r.expect("send").status(), 200);
}

fn bearer(token: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().expect("header"));
    reqwest::Client::builder().default_headers(h).build().expect("client")
}

#[tokio::test]
async fn api_keys_gate_inference_and_each_key_has_its_own_bucket() {
    let Some(model) = model_dir() else { return };
    let dir = crate::helpers::temp_dir("keys");
    let hex = |k: &str| {
        use sha2::Digest as _;
        sha2::Sha256::digest(k.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let slow_key = "slow-dashboard-key-0123456789";
    std::fs::write(dir.join("keys"), format!("# id role digest\nslow inference {} rps=0.5 burst=3\n", hex(slow_key)))
        .expect("keys file");
    let mut settings = test_settings(&model);
    settings.security.api_keys = vec![Secret::new(INFER_KEY)];
    settings.security.keys_file = Some(dir.join("keys"));
    settings.security.rate_limit.requests_per_second = 1000.0;
    settings.security.rate_limit.burst = 1000;
    let app = spawn_app(settings);
    let body = json!({ "inputs": ["a calm day"] });
    let post = |c: reqwest::Client| {
        let url = app.url("/v1/sentiment");
        let body = body.clone();
        async move { c.post(url).json(&body).send().await.expect("send") }
    };
    assert_eq!(post(app.anonymous()).await.status(), 401);
    assert_eq!(post(bearer(INFER_KEY)).await.status(), 200);
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("x-api-key", INFER_KEY.parse().expect("header"));
    let by_header = reqwest::Client::builder().default_headers(h).build().expect("client");
    assert_eq!(post(by_header).await.status(), 200);
    assert_eq!(post(bearer("unknown-key-0123456789")).await.status(), 401);
    // Probes stay public.
    assert_eq!(app.anonymous().get(app.url("/health")).send().await.expect("health").status(), 200);

    // The slow key: a burst of 3, then 429 with Retry-After; other keys are unaffected.
    let slow = bearer(slow_key);
    for i in 0..3 {
        assert_eq!(post(slow.clone()).await.status(), 200, "request {i} within the burst");
    }
    let limited = post(slow.clone()).await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let body: Value = limited.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(post(bearer(INFER_KEY)).await.status(), 200, "another key has its own bucket");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(post(slow).await.status(), 200, "the bucket refills at 0.5/s");
}

#[tokio::test]
async fn cors_is_off_unless_origins_are_configured() {
    let Some(model) = model_dir() else { return };
    let app = crate::helpers::shared_app().expect("shared app");
    let _ = model;
    let preflight = |app: &TestApp| {
        let url = app.url("/embed");
        async move {
            reqwest::Client::new()
                .request(reqwest::Method::OPTIONS, url)
                .header("origin", "https://dash.example")
                .header("access-control-request-method", "POST")
                .send()
                .await
                .expect("preflight")
        }
    };
    let r = preflight(app).await;
    assert!(!r.headers().contains_key("access-control-allow-origin"), "CORS must be off by default");

    let Some(model) = model_dir() else { return };
    let mut settings = test_settings(&model);
    settings.security.cors_origins = vec!["https://dash.example".into()];
    let with_cors = spawn_app(settings);
    let r = preflight(&with_cors).await;
    assert_eq!(
        r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap_or("")),
        Some("https://dash.example")
    );
}

#[tokio::test]
async fn tokens_never_appear_in_config_output() {
    let Some(_) = model_dir() else { return };
    let app = crate::helpers::shared_app().expect("shared app");
    let r = app.client().get(app.url("/performance/config")).send().await.expect("config");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("body");
    assert!(!text.contains(ADMIN_TOKEN), "the admin token leaked into GET /performance/config");
    assert!(text.contains("\"admin_token\":\"***\""), "{text}");
}
