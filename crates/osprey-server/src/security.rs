//! Who may call what.
//!
//! Every route falls in one [`Access`] class, decided by [`classify`] from
//! its method and route template. The classifier denies by default: a route
//! it does not name is an admin route, so a new route is protected until
//! someone decides otherwise (the OpenAPI test enumerates every operation).
//!
//! - **Public**: probes, `/metrics`, `/docs`, `/openapi.json`.
//! - **Observe**: `GET /performance/*` (except `config`), `/dashboard`. Open
//!   unless `security.public_observability = false`, then any valid key.
//! - **Infer**: inference and stored-data reads. Open until an inference key
//!   is configured (`--api-key` or the keys file); then a key is required.
//! - **Admin**: mutations under `/performance`, `/performance/config`,
//!   topic-set writes, aggregate refreshes. Always need an admin credential;
//!   with none configured they are refused, never open.
//!
//! Credentials come as `Authorization: Bearer <token>` or `X-API-Key: <key>`.
//! Configured keys are kept as SHA-256 digests only; a presented key is
//! hashed and compared with every digest in constant time, and no credential
//! is ever logged (the key's id is).
//!
//! Requests with a valid key are rate-limited per key (token bucket, 429 with
//! `Retry-After`); anonymous requests per client address when
//! `rate_limit.anonymous_requests_per_second > 0`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use osprey_types::error::ErrorCode;
use osprey_types::redact::Secret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// `[security]` in the settings file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecuritySettings {
    /// Bearer token for the admin routes (`--admin-token`, `OSPREY_ADMIN_TOKEN`).
    pub admin_token: Option<Secret>,
    /// Keys that grant the inference routes (`--api-key`, repeatable). Once
    /// any inference key exists, inference routes require one.
    pub api_keys: Vec<Secret>,
    /// A file of hashed keys, one per line: `<id> <admin|inference>
    /// <sha256-hex> [rps=N] [burst=N]` (`#` starts a comment). The digest is
    /// `printf %s "$KEY" | sha256sum`.
    pub keys_file: Option<PathBuf>,
    /// Serve `GET /performance/*` and `/dashboard` without a key.
    pub public_observability: bool,
    pub rate_limit: RateLimitSettings,
    /// Origins allowed to call the API from a browser. Empty (the default)
    /// sends no CORS headers at all.
    pub cors_origins: Vec<String>,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        Self {
            admin_token: None,
            api_keys: Vec::new(),
            keys_file: None,
            public_observability: true,
            rate_limit: RateLimitSettings::default(),
            cors_origins: Vec::new(),
        }
    }
}

impl SecuritySettings {
    pub fn validate(&self) -> Result<(), String> {
        self.rate_limit.validate()?;
        if self.admin_token.as_ref().is_some_and(|t| t.expose().len() < 16) {
            return Err("security.admin_token must be at least 16 characters".into());
        }
        if let Some(i) = self.api_keys.iter().position(|k| k.expose().len() < 16) {
            return Err(format!("security.api_keys[{i}] must be at least 16 characters"));
        }
        for origin in &self.cors_origins {
            if origin.trim() == "*" {
                return Err("security.cors_origins: list the origins; \"*\" is not accepted".into());
            }
            HeaderValue::from_str(origin)
                .map_err(|_| format!("security.cors_origins: {origin:?} is not a header value"))?;
        }
        Ok(())
    }
}

/// Token buckets: a key (or client address) may send `requests_per_second`
/// on average and `burst` at once. Tunable at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Per key; 0 turns key limits off.
    pub requests_per_second: f64,
    pub burst: u32,
    /// Per client address for requests without a key; 0 (the default) is off.
    pub anonymous_requests_per_second: f64,
    pub anonymous_burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self { requests_per_second: 100.0, burst: 200, anonymous_requests_per_second: 0.0, anonymous_burst: 100 }
    }
}

impl RateLimitSettings {
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate, burst) in [
            ("requests_per_second", self.requests_per_second, self.burst),
            ("anonymous_requests_per_second", self.anonymous_requests_per_second, self.anonymous_burst),
        ] {
            if !rate.is_finite() || rate < 0.0 || (rate > 0.0 && rate < MIN_RATE) {
                return Err(format!(
                    "security.rate_limit.{name} must be 0 (off) or a finite number of at least {MIN_RATE}"
                ));
            }
            if rate > 0.0 && burst == 0 {
                return Err(format!("security.rate_limit: a burst of 0 with {name} > 0 refuses everything"));
            }
        }
        Ok(())
    }
}

/// The slowest refill accepted (one request per 1000 s); slower rates would
/// make waits too long to state.
pub const MIN_RATE: f64 = 0.001;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Public,
    Observe,
    Infer,
    Admin,
}

/// The access class of `method` on the route template `route`.
pub fn classify(method: &Method, route: &str) -> Access {
    let read = method == Method::GET || method == Method::HEAD;
    match route {
        "/health" | "/ready" | "/metrics" | "/openapi.json" | "/docs" if read => Access::Public,
        "/performance/config" => Access::Admin,
        r if read && (r.starts_with("/performance/") || r == "/dashboard" || r.starts_with("/dashboard/")) => {
            Access::Observe
        }
        "/embed" | "/similarity" | "/tokenize" | "/v1/embeddings" | "/v1/sentiment" | "/v1/emotion"
        | "/v1/trajectory" | "/v1/summarize" | "/v1/filter" | "/v1/analyze" | "/v1/ingest/{name}" | "/v1/jobs"
            if method == Method::POST =>
        {
            Access::Infer
        }
        "/info" | "/v1/topics" | "/v1/topics/{name}" | "/v1/posts" | "/v1/posts/{id}" | "/v1/analyses/{id}"
        | "/v1/stats/emotions" | "/v1/jobs" | "/v1/jobs/{id}"
            if read =>
        {
            Access::Infer
        }
        // Whoever may submit a job may cancel it.
        "/v1/jobs/{id}" if method == Method::DELETE => Access::Infer,
        "/v1/watches" | "/v1/watches/{name}" if read => Access::Observe,
        _ => Access::Admin,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Inference,
}

/// One configured credential: its id (safe to log), role, digest and
/// optional own rate.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub id: Arc<str>,
    pub role: Role,
    digest: [u8; 32],
    rate: Option<(f64, u32)>,
}

/// Every configured credential, as digests.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    entries: Vec<KeyEntry>,
}

impl KeyRing {
    /// From the settings: the admin token, the API keys and the keys file.
    pub fn load(settings: &SecuritySettings) -> Result<Self, String> {
        let mut entries = Vec::new();
        if let Some(token) = &settings.admin_token {
            entries.push(KeyEntry {
                id: "admin-token".into(),
                role: Role::Admin,
                digest: digest(token.expose()),
                rate: None,
            });
        }
        for (i, key) in settings.api_keys.iter().enumerate() {
            entries.push(KeyEntry {
                id: format!("api-key-{}", i + 1).into(),
                role: Role::Inference,
                digest: digest(key.expose()),
                rate: None,
            });
        }
        if let Some(path) = &settings.keys_file {
            entries.extend(parse_keys_file(path)?);
        }
        let mut ids: Vec<&str> = entries.iter().map(|e| &*e.id).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("security: key id {:?} is configured twice", w[0]));
        }
        Ok(Self { entries })
    }

    pub fn has_admin(&self) -> bool {
        self.entries.iter().any(|e| e.role == Role::Admin)
    }

    pub fn has_inference(&self) -> bool {
        self.entries.iter().any(|e| e.role == Role::Inference)
    }

    /// The entry whose key is `presented`. Every digest is compared, in
    /// constant time, whatever matches, so timing says nothing about which
    /// (or whether a) key matched.
    pub fn find(&self, presented: &str) -> Option<&KeyEntry> {
        let d = digest(presented);
        let mut found = None;
        for e in &self.entries {
            if bool::from(e.digest.ct_eq(&d)) {
                found = Some(e);
            }
        }
        found
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn parse_keys_file(path: &Path) -> Result<Vec<KeyEntry>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("security.keys_file {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |msg: &str| format!("security.keys_file {} line {}: {msg}", path.display(), n + 1);
        let mut fields = line.split_whitespace();
        let (Some(id), Some(role), Some(hex)) = (fields.next(), fields.next(), fields.next()) else {
            return Err(at("expected `<id> <admin|inference> <sha256-hex> [rps=N] [burst=N]`"));
        };
        let role = match role {
            "admin" => Role::Admin,
            "inference" => Role::Inference,
            other => return Err(at(&format!("role {other:?} is not admin or inference"))),
        };
        let digest =
            parse_hex32(hex.trim_start_matches("sha256:")).ok_or_else(|| at("the digest is not 64 hex digits"))?;
        let (mut rps, mut burst) = (None, None);
        for opt in fields {
            match opt.split_once('=') {
                Some(("rps", v)) => rps = Some(v.parse::<f64>().ok().filter(|r| r.is_finite() && *r >= MIN_RATE)),
                Some(("burst", v)) => burst = Some(v.parse::<u32>().ok().filter(|b| *b > 0)),
                _ => return Err(at(&format!("unknown option {opt:?}"))),
            }
        }
        let rate = match (rps, burst) {
            (None, None) => None,
            (Some(Some(r)), Some(Some(b))) => Some((r, b)),
            (Some(Some(r)), None) => Some((r, (r * 2.0).ceil().max(1.0) as u32)),
            _ => return Err(at("rps must be at least 0.001 and burst a whole number > 0, and burst needs rps")),
        };
        out.push(KeyEntry { id: id.into(), role, digest, rate });
    }
    Ok(out)
}

fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Per-key (and per-address) token buckets.
pub struct RateLimiter {
    settings: RwLock<RateLimitSettings>,
    buckets: Mutex<HashMap<BucketKey, Bucket>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum BucketKey {
    Key(Arc<str>),
    Addr(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// This bucket's own refill rate and size, so pruning judges it by them.
    rate: f64,
    burst: f64,
}

/// Buckets kept before idle, full ones are pruned.
const MAX_BUCKETS: usize = 10_000;

impl RateLimiter {
    pub fn new(settings: RateLimitSettings) -> Self {
        Self { settings: RwLock::new(settings), buckets: Mutex::new(HashMap::new()) }
    }

    pub fn settings(&self) -> RateLimitSettings {
        self.settings.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// New limits apply to the next request of every bucket.
    pub fn set_settings(&self, settings: RateLimitSettings) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = settings;
    }

    /// Takes one token for a key; `Err(wait)` when the bucket is empty.
    pub fn check_key(&self, key: &KeyEntry, now: Instant) -> Result<(), Duration> {
        let s = self.settings();
        let (rate, burst) = key.rate.unwrap_or((s.requests_per_second, s.burst));
        self.take(BucketKey::Key(Arc::clone(&key.id)), rate, burst, now)
    }

    /// Takes one token for an anonymous client address.
    pub fn check_addr(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let s = self.settings();
        self.take(BucketKey::Addr(addr), s.anonymous_requests_per_second, s.anonymous_burst, now)
    }

    fn take(&self, key: BucketKey, rate: f64, burst: u32, now: Instant) -> Result<(), Duration> {
        if rate <= 0.0 {
            return Ok(());
        }
        let burst = f64::from(burst.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&key) {
            // Drop buckets that would be full by now: forgetting them changes nothing.
            buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * b.rate < b.burst);
            if buckets.len() >= MAX_BUCKETS {
                // Still full (a flood of addresses): forget the least recently
                // used half. Their clients start again from a full bucket.
                let mut ats: Vec<Instant> = buckets.values().map(|b| b.at).collect();
                ats.sort_unstable();
                let cut = ats[ats.len() / 2];
                buckets.retain(|_, b| b.at > cut);
            }
        }
        let b = buckets.entry(key).or_insert(Bucket { tokens: burst, at: now, rate, burst });
        b.rate = rate;
        b.burst = burst;
        b.tokens = (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::try_from_secs_f64((1.0 - b.tokens) / rate).unwrap_or(Duration::from_secs(1000)))
        }
    }
}

/// What handlers can learn about the caller (inserted as an extension).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key id, or `None` for an anonymous caller.
    pub key_id: Option<Arc<str>>,
}

/// The middleware: classifies the route, checks the credential and the rate.
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let Some(route) = route else {
        // No route matched: the fallback answers 404 or 405 and reveals nothing.
        return next.run(req).await;
    };
    let access = classify(req.method(), &route);
    let sec = &state.security;
    if access == Access::Admin && !sec.keys.has_admin() {
        return unauthorized(
            "admin routes are disabled: no admin credential is configured \
             (--admin-token, security.admin_token or an admin line in security.keys_file)",
        );
    }
    let key = match credential(req.headers()) {
        Some(p) => match sec.keys.find(p) {
            Some(k) => Some(k.clone()),
            None => {
                tracing::info!(route, "request with an unknown credential refused");
                return unauthorized("the credential is not valid");
            }
        },
        None => None,
    };
    let needs_key = match access {
        Access::Public => false,
        Access::Observe => !sec.public_observability,
        Access::Infer => sec.keys.has_inference(),
        Access::Admin => true,
    };
    match (&key, needs_key) {
        (None, true) => {
            return unauthorized(if access == Access::Admin {
                "this route needs an admin credential: Authorization: Bearer <token>"
            } else {
                "this route needs an API key: Authorization: Bearer <key> or X-API-Key: <key>"
            })
        }
        (Some(k), _) if access == Access::Admin && k.role != Role::Admin => {
            return ApiError::new(ErrorCode::Forbidden, format!("key {:?} may not use admin routes", k.id))
                .into_response();
        }
        _ => {}
    }
    if access != Access::Public {
        let now = Instant::now();
        let verdict = match &key {
            Some(k) => sec.limiter.check_key(k, now),
            None => match req.extensions().get::<ConnectInfo<SocketAddr>>() {
                Some(ConnectInfo(addr)) => sec.limiter.check_addr(addr.ip(), now),
                None => Ok(()),
            },
        };
        if let Err(wait) = verdict {
            metrics::counter!(osprey_types::metrics::REQUESTS_REJECTED_TOTAL, "reason" => "rate_limited").increment(1);
            return rate_limited(wait);
        }
    }
    req.extensions_mut().insert(Caller { key_id: key.map(|k| k.id) });
    next.run(req).await
}

/// The credential a request presents, if any.
fn credential(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() {
            return Some(rest.trim());
        }
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim).filter(|k| !k.is_empty())
}

fn unauthorized(message: &str) -> Response {
    let mut r = ApiError::new(ErrorCode::Unauthorized, message).into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"osprey\""));
    r
}

fn rate_limited(wait: Duration) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut r = ApiError::new(ErrorCode::RateLimited, format!("rate limit reached; retry in {secs} s")).into_response();
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// The security state handlers share.
pub struct Security {
    pub keys: KeyRing,
    pub limiter: RateLimiter,
    pub public_observability: bool,
}

impl Security {
    pub fn new(settings: &SecuritySettings) -> Result<Self, String> {
        Ok(Self {
            keys: KeyRing::load(settings)?,
            limiter: RateLimiter::new(settings.rate_limit.clone()),
            public_observability: settings.public_observability,
        })
    }
}

/// CORS: nothing unless origins are configured.
pub fn cors(settings: &SecuritySettings) -> Option<tower_http::cors::CorsLayer> {
    if settings.cors_origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> =
        settings.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::HeaderName::from_static("x-api-key")])
            .max_age(Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(lines: &str) -> Result<KeyRing, String> {
        let dir = std::env::temp_dir().join(format!("osprey-keys-{}-{}", std::process::id(), fastrand_u64()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let path = dir.join("keys");
        std::fs::write(&path, lines).map_err(|e| e.to_string())?;
        let settings = SecuritySettings { keys_file: Some(path), ..SecuritySettings::default() };
        let r = KeyRing::load(&settings);
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    fn fastrand_u64() -> u128 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
    }

    fn hex(key: &str) -> String {
        digest(key).iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn unknown_routes_are_admin_and_known_ones_are_classified() {
        assert_eq!(classify(&Method::GET, "/health"), Access::Public);
        assert_eq!(classify(&Method::POST, "/embed"), Access::Infer);
        assert_eq!(classify(&Method::GET, "/v1/posts/{id}"), Access::Infer);
        assert_eq!(classify(&Method::GET, "/performance/cache/stats"), Access::Observe);
        assert_eq!(classify(&Method::GET, "/performance/config"), Access::Admin);
        assert_eq!(classify(&Method::POST, "/performance/cache/clear"), Access::Admin);
        assert_eq!(classify(&Method::PUT, "/v1/topics/{name}"), Access::Admin);
        assert_eq!(classify(&Method::DELETE, "/v1/topics/{name}"), Access::Admin);
        assert_eq!(classify(&Method::POST, "/v1/stats/emotions/refresh"), Access::Admin);
        assert_eq!(classify(&Method::POST, "/v1/brand-new"), Access::Admin);
        assert_eq!(classify(&Method::POST, "/health"), Access::Admin);
    }

    #[test]
    fn keys_file_lines_parse_and_match_in_constant_time() {
        let text = format!(
            "# ops\nci admin sha256:{}\ndash inference {} rps=5 burst=10  # comment\n",
            hex("admin-secret-0123456789"),
            hex("dash-secret-0123456789")
        );
        let ring = ring(&text).expect("parses");
        assert!(ring.has_admin() && ring.has_inference());
        let ci = ring.find("admin-secret-0123456789").expect("admin key");
        assert_eq!((&*ci.id, ci.role), ("ci", Role::Admin));
        let dash = ring.find("dash-secret-0123456789").expect("inference key");
        assert_eq!((dash.role, dash.rate), (Role::Inference, Some((5.0, 10))));
        assert!(ring.find("dash-secret-012345678").is_none());
        assert!(ring.find("").is_none());
    }

    #[test]
    fn bad_keys_files_say_which_line() {
        let zeros = "0".repeat(64);
        let cases: Vec<(String, &str)> = vec![
            ("a admin abc".into(), "64 hex"),
            (format!("a root {zeros}"), "role"),
            (format!("a admin {zeros} speed=3"), "unknown option"),
            (format!("a admin {zeros}\na inference {}", "1".repeat(64)), "twice"),
            ("onlyid".into(), "expected"),
        ];
        for (text, needle) in cases {
            let err = ring(&text).expect_err(&text);
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn buckets_allow_the_burst_then_refuse_with_the_wait() {
        let limiter = RateLimiter::new(RateLimitSettings { requests_per_second: 10.0, burst: 3, ..Default::default() });
        let key = KeyEntry { id: "k".into(), role: Role::Inference, digest: [0; 32], rate: None };
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_key(&key, t0).is_ok());
        }
        let wait = limiter.check_key(&key, t0).expect_err("bucket empty");
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        assert!(limiter.check_key(&key, t0 + Duration::from_millis(100)).is_ok());
        // Another key has its own bucket; a key's own rate wins over the default.
        let slow = KeyEntry { id: "s".into(), rate: Some((1.0, 1)), ..key.clone() };
        assert!(limiter.check_key(&slow, t0).is_ok());
        assert!(limiter.check_key(&slow, t0 + Duration::from_millis(500)).is_err());
        limiter.set_settings(RateLimitSettings { requests_per_second: 0.0, ..Default::default() });
        assert!(limiter.check_key(&key, t0).is_ok(), "0 turns limits off");
    }

    #[test]
    fn credentials_come_from_bearer_or_x_api_key() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer  tok "));
        assert_eq!(credential(&h), Some("tok"));
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("k1"));
        assert_eq!(credential(&h), Some("k1"));
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(credential(&h), None);
    }

    #[test]
    fn settings_refuse_short_tokens_and_zero_bursts() {
        let s = SecuritySettings { admin_token: Some(Secret::new("short")), ..Default::default() };
        assert!(s.validate().is_err());
        let s = SecuritySettings {
            rate_limit: RateLimitSettings { requests_per_second: 5.0, burst: 0, ..Default::default() },
            ..Default::default()
        };
        assert!(s.validate().is_err());
        let s = SecuritySettings {
            rate_limit: RateLimitSettings { requests_per_second: 1e-300, ..Default::default() },
            ..Default::default()
        };
        assert!(s.validate().is_err(), "a rate too slow to state a wait is refused");
        let s = SecuritySettings { cors_origins: vec!["*".into()], ..Default::default() };
        assert!(s.validate().is_err(), "CORS lists origins");
        assert!(SecuritySettings::default().validate().is_ok());
    }

    #[test]
    fn a_flood_of_addresses_stays_bounded_and_keeps_limiting() {
        let limiter = RateLimiter::new(RateLimitSettings {
            anonymous_requests_per_second: 1.0,
            anonymous_burst: 1,
            ..Default::default()
        });
        let t0 = Instant::now();
        for i in 0..(MAX_BUCKETS as u32 + 500) {
            let addr = IpAddr::from(i.to_be_bytes());
            assert!(limiter.check_addr(addr, t0).is_ok());
        }
        let held = limiter.buckets.lock().map(|b| b.len()).unwrap_or(usize::MAX);
        assert!(held <= MAX_BUCKETS, "{held} buckets");
        let last = IpAddr::from((MAX_BUCKETS as u32 + 499).to_be_bytes());
        assert!(limiter.check_addr(last, t0).is_err(), "a recent bucket is kept and still empty");
    }
}
