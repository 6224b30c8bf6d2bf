//! The live dashboard in a real browser: headless Chromium, driven over the
//! DevTools protocol ([`crate::cdp`]), opens `/dashboard` on a real server,
//! traffic is sent, and the page's own read-only hook (`window.__osprey`)
//! and DOM show the charts' data advancing and a forced alert appearing.
//!
//! Chromium comes from `scripts/install-chromium` (Debian's `chromium`), or
//! `$CHROMIUM`. Without it these tests skip loudly, except under `CI=true`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use osprey_perf::{AlertRule, Comparison, Severity};
use serde_json::json;

use crate::cdp::{self, Browser};
use crate::helpers::{model_dir, shared_app, spawn_app, test_settings, TestApp};

/// The rule forced to fire: any request at all is slower than a microsecond.
const FORCED_RULE: &str = "latency_p95_high";
/// The payload target of the page as loaded (document and every asset).
const MAX_PAYLOAD_BYTES: u64 = 300 * 1000;
/// How long the page may take to show what the test waits for.
const PATIENCE: Duration = Duration::from_secs(30);

/// The browser, or `None` after a loud message; under `CI=true` a missing
/// browser fails the test.
fn chromium_or_skip() -> Option<std::path::PathBuf> {
    if let Some(path) = cdp::find_chromium() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("chromium not found (set $CHROMIUM or run scripts/install-chromium)");
    }
    eprintln!("SKIPPED: chromium not found; run scripts/install-chromium or set $CHROMIUM");
    None
}

fn forced_rule() -> AlertRule {
    AlertRule {
        name: FORCED_RULE.into(),
        signal: "latency_p95_ms".into(),
        description: "forced low by the dashboard test".into(),
        comparison: Comparison::Above,
        raise: 0.001,
        clear: 0.0005,
        hold: Duration::ZERO,
        window: Duration::from_secs(5),
        severity: Severity::Warning,
        enabled: true,
    }
}

/// Sends embedding and sentiment requests until `stop` is set.
fn traffic(app: &TestApp, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<usize> {
    let (client, embed, sentiment) = (app.client(), app.url("/embed"), app.url("/v1/sentiment"));
    tokio::spawn(async move {
        let mut ok = 0;
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let text = format!("the dashboard test sends request number {i}");
            for (url, body) in [(&embed, json!({ "inputs": [text] })), (&sentiment, json!({ "inputs": [text] }))] {
                if let Ok(r) = client.post(url.as_str()).json(&body).send().await {
                    ok += usize::from(r.status().is_success());
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ok
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_live_data_and_a_forced_alert() {
    let Some(model) = model_dir() else { return };
    let Some(chromium) = chromium_or_skip() else { return };
    let mut settings = test_settings(&model);
    settings.alerts.rules.retain(|r| r.name != FORCED_RULE);
    settings.alerts.rules.push(forced_rule());
    let app = spawn_app(settings);

    let browser = Browser::launch(&chromium).await.expect("launch chromium");
    browser.navigate(&app.url("/dashboard")).await.expect("open the dashboard");
    browser.wait_until("typeof window.__osprey === 'object'", PATIENCE).await.expect("the page's hook");

    // Size is asserted, time only reported: tests never assert wall-clock time.
    let load = browser.load_metrics("/performance/live").await.expect("load metrics");
    for r in &load.resources {
        println!(
            "dashboard payload: {:>7} B encoded, {:>7} B transferred  {}",
            r.encoded_bytes, r.transfer_bytes, r.name
        );
    }
    println!(
        "dashboard: first contentful paint {} ms; payload {} B encoded, {} B transferred",
        load.first_contentful_paint_ms.map_or("n/a".into(), |ms| format!("{ms:.0}")),
        load.encoded_bytes(),
        load.transfer_bytes()
    );
    assert!(load.resources.len() >= 5, "document, script, style and uPlot should all be loaded: {:?}", load.resources);
    assert!(
        load.encoded_bytes() <= MAX_PAYLOAD_BYTES,
        "dashboard payload {} B is over {MAX_PAYLOAD_BYTES} B: {:?}",
        load.encoded_bytes(),
        load.resources
    );

    let start = browser.evaluate("window.__osprey.points()").await.expect("points").as_u64().expect("a count");
    let stop = Arc::new(AtomicBool::new(false));
    let sender = traffic(&app, Arc::clone(&stop));

    // The charts' data advance, and carry the traffic.
    let advanced = format!(
        "window.__osprey.points() >= {} && window.__osprey.series('rps').some(v => v > 0) && window.__osprey.lastTs()",
        start + 3
    );
    let last_ts = browser.wait_until(&advanced, PATIENCE).await.expect("the charts' data advance with traffic");
    let rps = browser.evaluate("window.__osprey.series('rps')").await.expect("rps");
    println!(
        "dashboard: {} snapshots since open, last at {last_ts}; rps series tail {:?}",
        browser.evaluate("window.__osprey.points()").await.expect("points").as_u64().unwrap_or(0).saturating_sub(start),
        rps.as_array().map(|a| &a[a.len().saturating_sub(5)..])
    );
    let drawn =
        browser.evaluate("window.__osprey.series('p95').filter(v => v !== null).length").await.expect("p95 series");
    assert!(drawn.as_u64().unwrap_or(0) >= 1, "no p95 latency point was received");

    // The forced alert reaches the hook and the alert list.
    let alert = format!(
        "window.__osprey.alerts().includes('{FORCED_RULE}') && \
         !!document.querySelector('#alerts tbody tr[data-rule=\"{FORCED_RULE}\"]') && \
         document.querySelector('#alerts tbody tr[data-rule=\"{FORCED_RULE}\"]').textContent"
    );
    let row = browser.wait_until(&alert, PATIENCE).await.expect("the forced alert appears in the alert list");
    println!("dashboard: alert row {row}");
    let gauge = browser.evaluate("document.getElementById('gauge-latency').textContent").await.expect("gauge");
    println!("dashboard: latency gauge {gauge}");

    stop.store(true, Ordering::Relaxed);
    let sent = sender.await.expect("traffic task");
    assert!(sent > 0, "no request succeeded");

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard/dashboard.png");
    browser.screenshot(&shot).await.expect("screenshot");
    println!("dashboard: screenshot at {}", shot.display());

    for e in browser.console() {
        println!("dashboard console [{}]: {}", e.level, e.text);
    }
    let errors = browser.errors();
    assert!(errors.is_empty(), "the page logged errors: {errors:#?}");
}

#[tokio::test]
async fn every_dashboard_response_carries_the_security_headers() {
    let Some(app) = shared_app() else { return };
    let client = app.client();
    let page = client.get(app.url("/dashboard")).send().await.expect("page");
    let html = page.text().await.expect("html");
    let mut paths: Vec<String> = vec!["/dashboard".into(), "/dashboard/".into()];
    paths.extend(
        html.split("\"/dashboard/assets/")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .map(|p| format!("/dashboard/assets/{p}")),
    );
    assert!(paths.len() >= 6, "the page should load its script, style and uPlot: {paths:?}");
    for path in &paths {
        let r = client.get(app.url(path)).send().await.expect("request");
        assert_eq!(r.status(), 200, "{path}");
        assert_security_headers(&r, path);
        let etag = r.headers()["etag"].clone();
        let again = client.get(app.url(path)).header("if-none-match", etag).send().await.expect("revalidate");
        assert_eq!(again.status(), 304, "{path}");
        assert_security_headers(&again, path);
    }

    let missing = client.get(app.url("/dashboard/assets/missing.js")).send().await.expect("request");
    assert_eq!(missing.status(), 404);
    assert_security_headers(&missing, "missing.js");
    assert!(header(&missing, "content-type").starts_with("application/json"));
    let body: serde_json::Value = missing.json().await.expect("json body");
    assert_eq!(body["error"]["code"], "not_found");
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn assert_security_headers(r: &reqwest::Response, path: &str) {
    let csp = header(r, "content-security-policy");
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{path}: CSP {csp:?}");
    assert!(csp.contains("frame-ancestors 'none'"), "{path}: CSP {csp:?}");
    assert_eq!(header(r, "x-content-type-options"), "nosniff", "{path}");
    assert_eq!(header(r, "x-frame-options"), "DENY", "{path}");
    assert_eq!(header(r, "referrer-policy"), "no-referrer", "{path}");
}
