//! Scenarios: weighted requests, their checks, a data file and thresholds,
//! read from TOML (see `docs/load.md` for the format) or built in.
//!
//! Everything is validated here, once: methods, header names, templates
//! against every data record, threshold syntax. The engine never re-checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use hyper::Method;
use serde::Deserialize;
use serde_json::Value;

use super::error::LoadError;
use super::template::Template;
use super::threshold::Threshold;

/// `--scenario builtin:osprey`: osprey's own routes over an embedded corpus.
const BUILTIN_OSPREY: &str = include_str!("../../assets/osprey.toml");
const BUILTIN_POSTS: &str = include_str!("../../assets/posts.jsonl");

/// Most records a data file may hold (bodies are pre-rendered per record).
pub const MAX_RECORDS: usize = 1_000_000;

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub requests: Vec<RequestSpec>,
    /// Records of the data file (empty without one).
    pub records: Arc<Vec<Value>>,
    pub data_order: DataOrder,
    pub think_time: Option<Duration>,
    pub thresholds: Vec<Threshold>,
    /// The one request built from flags: it goes to the `--url`'s own path and query.
    pub url_path_only: bool,
}

/// One kind of request in a scenario.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// Names per-kind figures and scopes thresholds (`embed.p95 < 100ms`).
    pub name: String,
    pub weight: u32,
    pub method: Method,
    /// Appended to the target URL's path.
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Template>,
    pub check: Check,
}

/// What makes a response a success.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Check {
    pub status: StatusCheck,
    /// JSON pointers (converted from `a.b.0`) that must be present in the body.
    pub json: Vec<String>,
    pub body_contains: Option<Vec<u8>>,
}

impl Check {
    /// Whether the body must be buffered to run the check.
    pub fn needs_body(&self) -> bool {
        !self.json.is_empty() || self.body_contains.is_some()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum StatusCheck {
    /// Any status below 400.
    #[default]
    NotError,
    Exact(u16),
    /// `2xx` is `Class(2)`.
    Class(u16),
}

impl StatusCheck {
    pub fn accepts(self, status: u16) -> bool {
        match self {
            StatusCheck::NotError => status < 400,
            StatusCheck::Exact(s) => s == status,
            StatusCheck::Class(c) => status / 100 == c,
        }
    }
}

/// How requests walk the data records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataOrder {
    /// Record 0, 1, 2, … per generator thread, wrapping around.
    #[default]
    Sequential,
    Random,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: Option<String>,
    data: Option<PathBuf>,
    #[serde(default)]
    data_order: DataOrder,
    #[serde(default, with = "humantime_serde")]
    think_time: Option<Duration>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    thresholds: Vec<ThresholdEntry>,
    #[serde(default, rename = "request")]
    requests: Vec<RequestEntry>,
}

/// A threshold as written in TOML: `"p95 < 300ms"` or `{ expr = "...", abort = true }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ThresholdEntry {
    Expr(String),
    Table {
        expr: String,
        #[serde(default)]
        abort: bool,
    },
}

impl ThresholdEntry {
    pub fn parse(&self) -> Result<Threshold, LoadError> {
        match self {
            ThresholdEntry::Expr(e) => Threshold::parse(e),
            ThresholdEntry::Table { expr, abort } => Ok(Threshold { abort: *abort, ..Threshold::parse(expr)? }),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestEntry {
    name: Option<String>,
    #[serde(default = "one")]
    weight: u32,
    method: Option<String>,
    #[serde(default = "root")]
    path: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<String>,
    body_file: Option<PathBuf>,
    #[serde(default)]
    check: CheckEntry,
}

fn one() -> u32 {
    1
}

fn root() -> String {
    "/".to_string()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckEntry {
    status: Option<StatusEntry>,
    #[serde(default)]
    json: Vec<String>,
    body_contains: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StatusEntry {
    Code(u16),
    Text(String),
}

/// Where a scenario's data comes from.
enum DataSource<'a> {
    /// A path relative to the scenario file's directory.
    Files(&'a Path),
    /// The built-in corpus.
    Inline(&'a str),
}

impl Scenario {
    /// Loads `builtin:NAME` or a TOML file.
    pub fn load(spec: &str) -> Result<Self, LoadError> {
        if let Some(name) = spec.strip_prefix("builtin:") {
            return Self::builtin(name);
        }
        let path = Path::new(spec);
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.into(), source })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, spec, DataSource::Files(dir))
    }

    /// A built-in scenario by name (`osprey`).
    pub fn builtin(name: &str) -> Result<Self, LoadError> {
        match name {
            "osprey" => Self::parse(BUILTIN_OSPREY, "builtin:osprey", DataSource::Inline(BUILTIN_POSTS)),
            other => Err(LoadError::invalid(format!("unknown built-in scenario `{other}` (known: builtin:osprey)"))),
        }
    }

    /// Parses scenario TOML; a `data` path is resolved against `base_dir`.
    pub fn from_toml_str(text: &str, origin: &str, base_dir: &Path) -> Result<Self, LoadError> {
        Self::parse(text, origin, DataSource::Files(base_dir))
    }

    /// The one-request scenario that `--method`, `--header` and `--body` describe.
    pub fn single(method: Option<&str>, headers: &[String], body: Option<&str>) -> Result<Self, LoadError> {
        let mut parsed = BTreeMap::new();
        for h in headers {
            let (k, v) =
                h.split_once(':').ok_or_else(|| LoadError::invalid(format!("header `{h}` is not NAME: VALUE")))?;
            parsed.insert(k.trim().to_string(), v.trim().to_string());
        }
        let entry = RequestEntry {
            name: Some("default".into()),
            weight: 1,
            method: method.map(str::to_string),
            path: "/".to_string(),
            headers: parsed,
            body: body.map(str::to_string),
            body_file: None,
            check: CheckEntry::default(),
        };
        let request = build_request(entry, 0, &BTreeMap::new(), &[], false, "--body", Path::new("."))?;
        Ok(Scenario {
            name: "default".into(),
            requests: vec![request],
            records: Arc::new(Vec::new()),
            data_order: DataOrder::Sequential,
            think_time: None,
            thresholds: Vec::new(),
            url_path_only: true,
        })
    }

    fn parse(text: &str, origin: &str, data: DataSource<'_>) -> Result<Self, LoadError> {
        let file: ScenarioFile = toml::from_str(text).map_err(|e| LoadError::file(origin, e))?;
        let (records, has_data, base) = match (&file.data, data) {
            (None, DataSource::Files(dir)) => (Vec::new(), false, dir.to_path_buf()),
            (Some(rel), DataSource::Files(dir)) => {
                let path = dir.join(rel);
                let text =
                    std::fs::read_to_string(&path).map_err(|source| LoadError::Read { path: path.clone(), source })?;
                (parse_records(&text, &path.display().to_string())?, true, dir.to_path_buf())
            }
            (_, DataSource::Inline(text)) => (parse_records(text, origin)?, true, PathBuf::from(".")),
        };
        if file.requests.is_empty() {
            return Err(LoadError::file(origin, "a scenario needs at least one [[request]]"));
        }
        let mut requests = Vec::with_capacity(file.requests.len());
        for (i, entry) in file.requests.into_iter().enumerate() {
            requests.push(build_request(entry, i, &file.headers, &records, has_data, origin, &base)?);
        }
        for (i, r) in requests.iter().enumerate() {
            if requests[..i].iter().any(|o| o.name == r.name) {
                return Err(LoadError::file(origin, format!("two requests are named `{}`", r.name)));
            }
        }
        let thresholds = file.thresholds.iter().map(ThresholdEntry::parse).collect::<Result<Vec<_>, _>>()?;
        for t in &thresholds {
            if let Some(kind) = &t.kind {
                if !requests.iter().any(|r| &r.name == kind) {
                    return Err(LoadError::file(origin, format!("threshold `{}` names no request", t.expr)));
                }
            }
        }
        Ok(Scenario {
            name: file.name.unwrap_or_else(|| origin.to_string()),
            requests,
            records: Arc::new(records),
            data_order: file.data_order,
            think_time: file.think_time,
            thresholds,
            url_path_only: false,
        })
    }
}

fn build_request(
    entry: RequestEntry,
    index: usize,
    common: &BTreeMap<String, String>,
    records: &[Value],
    has_data: bool,
    origin: &str,
    base: &Path,
) -> Result<RequestSpec, LoadError> {
    let name = entry.name.unwrap_or_else(|| format!("request{}", index + 1));
    let here = |msg: String| LoadError::file(origin, format!("request `{name}`: {msg}"));
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(here("names may use only letters, digits, `_` and `-`".into()));
    }
    if entry.weight == 0 {
        return Err(here("weight must be at least 1".into()));
    }
    let body_text = match (entry.body, entry.body_file) {
        (Some(_), Some(_)) => return Err(here("give `body` or `body_file`, not both".into())),
        (Some(b), None) => Some(b),
        (None, Some(f)) => {
            let path = base.join(f);
            Some(std::fs::read_to_string(&path).map_err(|source| LoadError::Read { path, source })?)
        }
        (None, None) => None,
    };
    let method_text = entry.method.unwrap_or_else(|| if body_text.is_some() { "POST" } else { "GET" }.into());
    let method = Method::from_bytes(method_text.to_ascii_uppercase().as_bytes())
        .map_err(|_| here(format!("bad method `{method_text}`")))?;
    if !entry.path.starts_with('/') {
        return Err(here(format!("path `{}` must start with /", entry.path)));
    }
    let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
    for (k, v) in common.iter().chain(entry.headers.iter()) {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| here(format!("bad header name `{k}`")))?;
        let value = HeaderValue::from_str(v).map_err(|_| here(format!("bad value for header `{k}`")))?;
        headers.retain(|(n, _)| n != name);
        headers.push((name, value));
    }
    let body = match body_text {
        Some(text) => {
            let t = Template::parse(&text).map_err(|e| here(e.to_string()))?;
            t.check(records, has_data).map_err(|e| here(e.to_string()))?;
            if !headers.iter().any(|(n, _)| n == hyper::header::CONTENT_TYPE) {
                headers.push((hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
            }
            Some(t)
        }
        None => None,
    };
    let status = match entry.check.status {
        None => StatusCheck::NotError,
        Some(StatusEntry::Code(c)) if (100..600).contains(&c) => StatusCheck::Exact(c),
        Some(StatusEntry::Text(t)) if t.len() == 3 && t.ends_with("xx") => {
            let class = t[..1].parse::<u16>().ok().filter(|c| (1..=5).contains(c));
            StatusCheck::Class(class.ok_or_else(|| here(format!("bad status class `{t}`")))?)
        }
        Some(StatusEntry::Text(t)) => StatusCheck::Exact(
            t.parse().ok().filter(|c| (100..600).contains(c)).ok_or_else(|| here(format!("bad status `{t}`")))?,
        ),
        Some(StatusEntry::Code(c)) => return Err(here(format!("bad status {c}"))),
    };
    let json = entry.check.json.iter().map(|p| to_pointer(p)).collect();
    Ok(RequestSpec {
        name,
        weight: entry.weight,
        method,
        path: entry.path,
        headers,
        body,
        check: Check { status, json, body_contains: entry.check.body_contains.map(String::into_bytes) },
    })
}

/// `results.0.label` → `/results/0/label` (a JSON pointer); pointers pass through.
fn to_pointer(path: &str) -> String {
    if path.starts_with('/') || path.is_empty() {
        return path.to_string();
    }
    path.split('.').fold(String::new(), |mut acc, seg| {
        acc.push('/');
        acc.push_str(&seg.replace('~', "~0").replace('/', "~1"));
        acc
    })
}

/// JSONL (one value per line; blank lines and `#` comments skipped) or one JSON array.
fn parse_records(text: &str, origin: &str) -> Result<Vec<Value>, LoadError> {
    let trimmed = text.trim_start();
    let records: Vec<Value> = if trimmed.starts_with('[') {
        serde_json::from_str(trimmed).map_err(|e| LoadError::file(origin, e))?
    } else {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.push(serde_json::from_str(line).map_err(|e| LoadError::file(origin, format!("line {}: {e}", i + 1)))?);
        }
        out
    };
    if records.is_empty() {
        return Err(LoadError::file(origin, "the data file holds no records"));
    }
    if records.len() > MAX_RECORDS {
        return Err(LoadError::file(origin, format!("more than {MAX_RECORDS} records")));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_osprey_matches_the_api_shapes() {
        let s = Scenario::builtin("osprey").expect("builtin parses");
        assert!(s.records.len() >= 50, "corpus has {} posts", s.records.len());
        let names: Vec<_> = s.requests.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["embed", "sentiment", "emotion", "analyze"]);
        for r in &s.requests {
            let t = r.body.as_ref().expect("every builtin request has a body");
            for (i, rec) in s.records.iter().enumerate() {
                let mut out = Vec::new();
                t.render(Some(rec), i, 0, &mut out).expect("renders");
                let v: Value = serde_json::from_slice(&out).expect("valid JSON");
                match r.name.as_str() {
                    "embed" | "sentiment" | "emotion" => assert!(v["inputs"].is_array()),
                    _ => {
                        assert_eq!(v["tasks"], serde_json::json!(["sentiment", "emotion"]));
                        assert!(v["posts"][0]["id"].is_string() && v["posts"][0]["title"].is_string());
                    }
                }
            }
        }
    }

    #[test]
    fn pointers_convert() {
        assert_eq!(to_pointer("results.0.label"), "/results/0/label");
        assert_eq!(to_pointer("/a/b"), "/a/b");
        assert_eq!(to_pointer("a/b"), "/a~1b");
    }

    #[test]
    fn status_checks() {
        assert!(StatusCheck::NotError.accepts(302) && !StatusCheck::NotError.accepts(404));
        assert!(StatusCheck::Class(2).accepts(204) && !StatusCheck::Class(2).accepts(301));
        assert!(StatusCheck::Exact(404).accepts(404));
    }
}
