//! The live server: `--url` (loopback unless `--allow-remote`), one sample
//! or, with `--sample D`, two samples `D` apart.
//!
//! A sample is `GET /performance/stats` (required), plus
//! `GET /performance/cache/stats` (cumulative cache counters) and
//! `GET /performance/alerts` (rule values, e.g. the model fallback rate),
//! both optional: a server that refuses them is still analysed.
//! `/performance/config` is admin-only and never asked for.

use std::net::{IpAddr, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Url;
use serde_json::Value;

use super::stats::RawSample;
use crate::error::AnalyzeError;

/// Per request: a stats endpoint that takes longer is not answering.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Shortest and longest `--sample`.
pub const MIN_SAMPLE: Duration = Duration::from_secs(1);
pub const MAX_SAMPLE: Duration = Duration::from_secs(600);

/// Validates `--url`: `http://`, and a loopback host unless `allow_remote`.
/// Returns the base URL the endpoints are joined to (a trailing
/// `/performance/stats` is accepted and dropped).
pub fn check_target(url: &str, allow_remote: bool) -> Result<Url, AnalyzeError> {
    let refuse = |reason: String| AnalyzeError::Target { url: url.to_string(), reason };
    let mut parsed = Url::parse(url).map_err(|e| refuse(format!("not a URL ({e})")))?;
    if parsed.scheme() != "http" {
        return Err(refuse(format!("only http:// is supported, not {}://", parsed.scheme())));
    }
    let host = parsed.host_str().ok_or_else(|| refuse("no host".into()))?.to_string();
    if !allow_remote {
        let port = parsed.port_or_known_default().unwrap_or(80);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = match bare.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => {
                let addrs: Vec<_> = (bare, port)
                    .to_socket_addrs()
                    .map_err(|e| refuse(format!("cannot resolve {bare} ({e})")))?
                    .collect();
                !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
            }
        };
        if !loopback {
            return Err(refuse(format!(
                "{host} is not a loopback address; pass --allow-remote to analyse a remote server"
            )));
        }
    }
    let path = parsed.path().trim_end_matches('/').trim_end_matches("/performance/stats").to_string();
    parsed.set_path(&format!("{path}/"));
    parsed.set_query(None);
    parsed.set_fragment(None);
    Ok(parsed)
}

/// Takes one sample, or two `sample` apart, printing progress to stderr.
pub fn collect(base: &Url, sample: Option<Duration>) -> Result<Vec<RawSample>, AnalyzeError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        AnalyzeError::Fetch { url: base.to_string(), message: format!("cannot start the HTTP runtime: {e}") }
    })?;
    runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).no_proxy().build().map_err(|e| {
            AnalyzeError::Fetch { url: base.to_string(), message: format!("cannot build an HTTP client: {e}") }
        })?;
        let first = take(&client, base).await?;
        let Some(wait) = sample else { return Ok(vec![first]) };
        eprintln!("osprey analyze: sampling {base} again in {}", humantime::format_duration(wait));
        tokio::time::sleep(wait).await;
        let second = take(&client, base).await?;
        Ok(vec![first, second])
    })
}

async fn take(client: &reqwest::Client, base: &Url) -> Result<RawSample, AnalyzeError> {
    let taken_at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64);
    let stats = get(client, base, "performance/stats").await?;
    let cache_stats = get(client, base, "performance/cache/stats").await.ok();
    let alerts = get(client, base, "performance/alerts").await.ok();
    Ok(RawSample { taken_at_ms: Some(taken_at_ms), stats, cache_stats, alerts })
}

async fn get(client: &reqwest::Client, base: &Url, path: &str) -> Result<Value, AnalyzeError> {
    let url = base.join(path).map_err(|e| AnalyzeError::Fetch { url: base.to_string(), message: e.to_string() })?;
    let fail = |message: String| AnalyzeError::Fetch { url: url.to_string(), message };
    let response = client.get(url.clone()).send().await.map_err(|e| fail(chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(fail(format!("status {status}")));
    }
    response.json::<Value>().await.map_err(|e| fail(format!("not JSON: {}", chain(&e))))
}

/// An error with its causes: reqwest's own message hides "connection refused".
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_are_accepted_and_normalised() {
        for (url, base) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/"),
            ("http://127.0.0.1:8080/performance/stats", "http://127.0.0.1:8080/"),
            ("http://[::1]:9000/osprey/", "http://[::1]:9000/osprey/"),
            ("http://localhost:1/?x=1", "http://localhost:1/"),
        ] {
            assert_eq!(check_target(url, false).expect(url).as_str(), base);
        }
    }

    #[test]
    fn remote_targets_are_refused_unless_allowed() {
        for url in ["http://10.1.2.3:8080", "http://192.168.0.10/", "http://[2001:db8::1]:80"] {
            let e = check_target(url, false).expect_err(url).to_string();
            assert!(e.contains("--allow-remote"), "{e}");
            assert!(check_target(url, true).is_ok(), "{url} with --allow-remote");
        }
    }

    #[test]
    fn unusable_urls_are_refused_with_a_reason() {
        let e = check_target("https://127.0.0.1", true).expect_err("https").to_string();
        assert!(e.contains("only http://"), "{e}");
        assert!(check_target("127.0.0.1:8080", false).is_err());
    }
}
