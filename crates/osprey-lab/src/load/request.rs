//! Requests ready to send: everything that can be built before the run is
//! (URI, headers, bodies rendered per data record), so the request path only
//! clones reference-counted parts.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderValue, HOST, USER_AGENT};
use hyper::{Method, Request, Uri, Version};
use serde_json::Value;

use super::conn::Body;
use super::error::LoadError;
use super::scenario::{Check, DataOrder, Scenario};
use super::target::Target;
use super::template::Template;

/// One request kind, prepared.
#[derive(Debug)]
pub struct PreparedKind {
    pub name: String,
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    bodies: Bodies,
    pub check: Check,
}

#[derive(Debug)]
enum Bodies {
    None,
    /// One body per data record (or one when the template reads no fields).
    Rendered(Vec<Bytes>),
    /// Uses `{{@seq}}`: rendered per request.
    Dynamic(Template),
}

impl PreparedKind {
    /// Prepares every request of `scenario` for `target`.
    pub fn prepare_all(scenario: &Scenario, target: &Target, http2: bool) -> Result<Vec<PreparedKind>, LoadError> {
        scenario.requests.iter().map(|r| Self::prepare(r, scenario, target, http2)).collect()
    }

    fn prepare(
        spec: &super::scenario::RequestSpec,
        scenario: &Scenario,
        target: &Target,
        http2: bool,
    ) -> Result<PreparedKind, LoadError> {
        let path = if scenario.url_path_only { target.path_and_query.clone() } else { target.join(&spec.path) };
        // HTTP/2 needs `:scheme` and `:authority`, so the absolute form; HTTP/1.1 the origin form.
        let uri_text = if http2 { format!("http://{}{}", target.authority, path) } else { path.clone() };
        let uri: Uri =
            uri_text.parse().map_err(|e| LoadError::invalid(format!("request `{}`: path `{path}`: {e}", spec.name)))?;
        let mut headers = HeaderMap::with_capacity(spec.headers.len() + 2);
        if !http2 {
            headers.insert(HOST, target.host_header.clone());
        }
        headers.insert(USER_AGENT, HeaderValue::from_static(concat!("osprey-load/", env!("CARGO_PKG_VERSION"))));
        for (k, v) in &spec.headers {
            headers.insert(k.clone(), v.clone());
        }
        let bodies = match &spec.body {
            None => Bodies::None,
            Some(t) if t.is_dynamic() => Bodies::Dynamic(t.clone()),
            Some(t) => {
                let records: Vec<Option<&Value>> = if t.uses_fields() || !scenario.records.is_empty() {
                    scenario.records.iter().map(Some).collect()
                } else {
                    vec![None]
                };
                let mut out = Vec::with_capacity(records.len().max(1));
                for (i, r) in records.iter().enumerate() {
                    let mut buf = Vec::new();
                    t.render(*r, i, 0, &mut buf)
                        .map_err(|e| LoadError::invalid(format!("request `{}`: {e}", spec.name)))?;
                    out.push(Bytes::from(buf));
                }
                if out.is_empty() {
                    out.push(Bytes::new());
                }
                Bodies::Rendered(out)
            }
        };
        Ok(PreparedKind {
            name: spec.name.clone(),
            method: spec.method.clone(),
            uri,
            version: if http2 { Version::HTTP_2 } else { Version::HTTP_11 },
            headers,
            bodies,
            check: spec.check.clone(),
        })
    }

    /// The request for data record `record` and request number `seq`.
    pub fn build(&self, records: &[Value], record: usize, seq: u64) -> Request<Body> {
        let body = match &self.bodies {
            Bodies::None => Bytes::new(),
            Bodies::Rendered(b) => b[record % b.len()].clone(),
            Bodies::Dynamic(t) => {
                let mut buf = Vec::with_capacity(256);
                let rec = if records.is_empty() { None } else { records.get(record % records.len()) };
                // Checked against every record up front, so rendering cannot fail here.
                let _ = t.render(rec, record, seq, &mut buf);
                Bytes::from(buf)
            }
        };
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// Chooses the next request kind (by weight) and data record.
#[derive(Debug, Clone)]
pub struct Picker {
    cumulative: Vec<u32>,
    records: usize,
    order: DataOrder,
}

impl Picker {
    pub fn new(scenario: &Scenario) -> Self {
        let mut acc = 0;
        let cumulative = scenario
            .requests
            .iter()
            .map(|r| {
                acc += r.weight;
                acc
            })
            .collect();
        Picker { cumulative, records: scenario.records.len().max(1), order: scenario.data_order }
    }

    /// `(kind, record)` for request `seq` of generator thread `thread` of `threads`.
    pub fn pick(&self, rng: &mut fastrand::Rng, seq: u64, thread: usize, threads: usize) -> (usize, usize) {
        let kind = match self.cumulative.as_slice() {
            [_] => 0,
            all => {
                let total = *all.last().unwrap_or(&1);
                let r = rng.u32(..total);
                all.partition_point(|c| *c <= r)
            }
        };
        let record = match self.order {
            DataOrder::Sequential => ((seq as usize).wrapping_mul(threads).wrapping_add(thread)) % self.records,
            DataOrder::Random => rng.usize(..self.records),
        };
        (kind, record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_respected() {
        let toml = r#"
            [[request]]
            name = "a"
            weight = 3
            [[request]]
            name = "b"
            weight = 1
        "#;
        let s = Scenario::from_toml_str(toml, "t.toml", std::path::Path::new(".")).expect("parses");
        let p = Picker::new(&s);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut counts = [0u32; 2];
        for seq in 0..40_000 {
            counts[p.pick(&mut rng, seq, 0, 1).0] += 1;
        }
        let share = f64::from(counts[0]) / 40_000.0;
        assert!((share - 0.75).abs() < 0.02, "{counts:?}");
    }
}
