//! The live dashboard at `/dashboard`: one HTML page, its script and style,
//! and the vendored uPlot charting library, all compiled into the binary so
//! the page works on closed networks and needs no build step at run time.
//!
//! The page reads `/performance/live` (Server-Sent Events) and draws from it;
//! this module only serves the static files. Every response carries a strict
//! Content-Security-Policy (no inline script or style, no other origins), an
//! `ETag` computed once per file so revalidation answers 304, and
//! `Cache-Control`: assets may be cached for an hour, the page is revalidated
//! each time so a new binary's page is picked up at once.
//!
//! # Layout
//! - [`ASSETS`]: the embedded files; [`asset`] looks one up by path.
//! - [`respond`]: the response for a file (200 or 304) with its headers;
//!   state-free so it is tested without a server.
//! - [`router`]: the two routes.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// The policy the page is written for: everything from this origin, nothing
/// inline, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Headers every dashboard response carries, errors included.
const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
];

const INDEX_CACHE: &str = "no-cache";
const ASSET_CACHE: &str = "public, max-age=3600";

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The path under `/dashboard/assets/` (the page itself is `index.html`).
    pub path: &'static str,
    pub content_type: &'static str,
    pub cache_control: &'static str,
    pub body: &'static [u8],
    /// A strong validator: the quoted xxh3 hash of `body`.
    pub etag: String,
}

impl Asset {
    fn new(path: &'static str, content_type: &'static str, body: &'static [u8]) -> Self {
        let cache_control = if path == "index.html" { INDEX_CACHE } else { ASSET_CACHE };
        let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(body));
        Self { path, content_type, cache_control, body, etag }
    }
}

macro_rules! embed {
    ($path:literal, $content_type:literal) => {
        Asset::new($path, $content_type, include_bytes!(concat!("../../assets/dashboard/", $path)))
    };
}

/// Every file the dashboard serves; hashes are computed on first use.
pub static ASSETS: LazyLock<[Asset; 8]> = LazyLock::new(|| {
    [
        embed!("index.html", "text/html; charset=utf-8"),
        embed!("app.js", "text/javascript; charset=utf-8"),
        embed!("app.css", "text/css; charset=utf-8"),
        embed!("favicon.svg", "image/svg+xml"),
        embed!("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
        embed!("vendor/uPlot.min.css", "text/css; charset=utf-8"),
        embed!("vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
        embed!("vendor/README.md", "text/markdown; charset=utf-8"),
    ]
});

/// The embedded file at `path`, if there is one.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The page itself.
pub fn index() -> &'static Asset {
    asset("index.html").expect("index.html is embedded")
}

/// Whether an `If-None-Match` header value names `etag` (or is `*`). Weak
/// comparison, as RFC 9110 asks for `If-None-Match`.
fn matches(if_none_match: &HeaderValue, etag: &str) -> bool {
    let Ok(list) = if_none_match.to_str() else { return false };
    list.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Adds the security headers to any response.
pub fn secure(mut resp: Response) -> Response {
    let headers = resp.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    resp
}

/// `asset` as a response: 304 when `if_none_match` names its current ETag,
/// the file otherwise; both with validators, caching and security headers.
pub fn respond(asset: &'static Asset, if_none_match: Option<&HeaderValue>) -> Response {
    let not_modified = if_none_match.is_some_and(|v| matches(v, &asset.etag));
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut resp = asset.body.into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        resp
    };
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(asset.cache_control));
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        headers.insert(header::ETAG, etag);
    }
    secure(resp)
}

async fn page(headers: HeaderMap) -> Response {
    respond(index(), headers.get(header::IF_NONE_MATCH))
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match asset(&path).filter(|a| a.path != "index.html") {
        Some(a) => respond(a, headers.get(header::IF_NONE_MATCH)),
        None => secure(ApiError::not_found(format!("no dashboard asset {path:?}")).into_response()),
    }
}

/// The routes, for any state: they need none.
fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/", get(page))
        .route("/dashboard/assets/{*path}", get(file))
}

pub fn router() -> Router<AppState> {
    routes()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;

    async fn get_path(path: &str, if_none_match: Option<&str>) -> Response {
        let mut req = Request::get(path);
        if let Some(tag) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        routes::<()>().oneshot(req.body(Body::empty()).expect("request")).await.expect("infallible")
    }

    fn header_of<'a>(resp: &'a Response, name: &str) -> &'a str {
        resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    async fn body_of(resp: Response) -> Vec<u8> {
        axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body").to_vec()
    }

    fn assert_secure(resp: &Response) {
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(header_of(resp, name), value, "{name}");
        }
    }

    #[test]
    fn every_asset_is_present_hashed_and_distinct() {
        let mut tags: Vec<&str> = ASSETS.iter().map(|a| a.etag.as_str()).collect();
        for a in ASSETS.iter() {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
            assert_eq!(a.etag.len(), 18, "{}", a.etag);
        }
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), ASSETS.len());
        assert!(asset("app.js").is_some());
        assert!(asset("vendor/uPlot.iife.min.js").is_some());
        assert!(asset("../Cargo.toml").is_none());
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = std::str::from_utf8(index().body).expect("utf-8");
        assert!(!html.contains("<script>"), "inline script");
        assert!(!html.contains("<style"), "inline style");
        assert!(!html.contains("style="), "inline style attribute");
        let handler = html.match_indices(" on").any(|(i, _)| {
            let rest = &html[i + 3..];
            let name_len = rest.find(|c: char| !c.is_ascii_lowercase()).unwrap_or(rest.len());
            name_len > 0 && rest[name_len..].starts_with('=')
        });
        assert!(!handler, "inline event handler");
        // Everything the page loads is embedded here.
        for src in html.split("/dashboard/assets/").skip(1) {
            let path = src.split('"').next().unwrap_or_default();
            assert!(asset(path).is_some(), "the page refers to {path}, which is not embedded");
        }
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let tag = "\"00000000000000ab\"";
        assert!(matches(&HeaderValue::from_static("\"00000000000000ab\""), tag));
        assert!(matches(&HeaderValue::from_static("\"x\", W/\"00000000000000ab\""), tag));
        assert!(matches(&HeaderValue::from_static("*"), tag));
        assert!(!matches(&HeaderValue::from_static("\"00000000000000ac\""), tag));
        assert!(!matches(&HeaderValue::from_static(""), tag));
    }

    #[tokio::test]
    async fn the_page_is_served_at_both_paths_and_revalidated() {
        for path in ["/dashboard", "/dashboard/"] {
            let resp = get_path(path, None).await;
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(header_of(&resp, "content-type"), "text/html; charset=utf-8");
            assert_eq!(header_of(&resp, "cache-control"), "no-cache");
            assert_eq!(header_of(&resp, "etag"), index().etag);
            assert_secure(&resp);
            assert_eq!(body_of(resp).await, index().body);
        }
        let resp = get_path("/dashboard", Some(&index().etag)).await;
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header_of(&resp, "etag"), index().etag);
        assert_secure(&resp);
        assert!(body_of(resp).await.is_empty());
    }

    #[tokio::test]
    async fn assets_have_their_type_caching_and_etag() {
        for (path, ty) in [
            ("app.js", "text/javascript; charset=utf-8"),
            ("app.css", "text/css; charset=utf-8"),
            ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
            ("vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
        ] {
            let resp = get_path(&format!("/dashboard/assets/{path}"), None).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            assert_eq!(header_of(&resp, "content-type"), ty);
            assert_eq!(header_of(&resp, "cache-control"), "public, max-age=3600");
            let etag = header_of(&resp, "etag").to_string();
            assert_secure(&resp);
            let stale = get_path(&format!("/dashboard/assets/{path}"), Some("\"stale\"")).await;
            assert_eq!(stale.status(), StatusCode::OK);
            let fresh = get_path(&format!("/dashboard/assets/{path}"), Some(&etag)).await;
            assert_eq!(fresh.status(), StatusCode::NOT_MODIFIED);
        }
    }

    #[tokio::test]
    async fn an_unknown_asset_is_a_json_404_with_the_same_headers() {
        for path in ["/dashboard/assets/nope.js", "/dashboard/assets/index.html", "/dashboard/assets/../app.js"] {
            let resp = get_path(path, None).await;
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(header_of(&resp, "content-type"), "application/json");
            assert_secure(&resp);
            let body: serde_json::Value = serde_json::from_slice(&body_of(resp).await).expect("json");
            assert_eq!(body["error"]["code"], "not_found");
        }
    }
}
