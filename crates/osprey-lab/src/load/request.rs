//! Requests ready to send: everything that can be built before the run is.
//! For HTTP/1.1 that is the bytes on the wire (request line, headers, body
//! and its `Content-Length`, per data record), so the request path writes a
//! slice; only bodies that use `{{@seq}}` are rendered per request, into the
//! connection's scratch buffer behind a head built once. For HTTP/2 the URI,
//! headers and bodies are built once and the request path clones
//! reference-counted parts.

use std::io::Write;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, HOST, TRANSFER_ENCODING, USER_AGENT};
use hyper::{Method, Request, Uri, Version};
use serde_json::Value;

use super::conn::Body;
use super::error::LoadError;
use super::h1::Encode;
use super::scenario::{Check, DataOrder, Scenario};
use super::target::Target;
use super::template::Template;

/// One request kind, prepared.
#[derive(Debug)]
pub struct PreparedKind {
    pub name: String,
    form: Form,
    pub check: Check,
}

#[derive(Debug)]
enum Form {
    H1(H1Kind),
    H2(Box<H2Kind>),
}

#[derive(Debug)]
struct H1Kind {
    wire: Wire,
    /// A `HEAD` request: its response has no body.
    head_request: bool,
}

#[derive(Debug)]
enum Wire {
    /// Whole requests, one per data record (or one).
    Ready(Vec<Box<[u8]>>),
    /// The head without `Content-Length` and the blank line; the body is
    /// rendered per request (it uses `{{@seq}}`).
    Dynamic { head: Box<[u8]>, template: Template, always_length: bool },
}

#[derive(Debug)]
struct H2Kind {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    bodies: Bodies,
}

#[derive(Debug)]
enum Bodies {
    None,
    /// One body per data record (or one when the template reads no fields).
    Rendered(Vec<Bytes>),
    /// Uses `{{@seq}}`: rendered per request.
    Dynamic(Template),
}

/// An HTTP/1.1 request of a kind, ready to write.
pub enum H1Request<'a> {
    Ready(&'a [u8]),
    Render {
        head: &'a [u8],
        template: &'a Template,
        always_length: bool,
        record: Option<&'a Value>,
        index: usize,
        seq: u64,
    },
}

impl Encode for H1Request<'_> {
    fn encode<'a>(&'a self, scratch: &'a mut Vec<u8>) -> &'a [u8] {
        match self {
            H1Request::Ready(bytes) => bytes,
            H1Request::Render { head, template, always_length, record, index, seq } => {
                scratch.clear();
                scratch.extend_from_slice(head);
                let at = scratch.len();
                // Checked against every record up front, so rendering cannot fail here.
                let _ = template.render(*record, *index, *seq, scratch);
                let mut tail = std::io::Cursor::new([0u8; 48]);
                end_head(&mut tail, scratch.len() - at, *always_length);
                let n = usize::try_from(tail.position()).unwrap_or(0);
                scratch.splice(at..at, tail.get_ref()[..n].iter().copied());
                scratch
            }
        }
    }
}

/// Appends the `Content-Length` field (when there is a body, or the method
/// expects one) and the blank line that ends a head.
fn end_head(out: &mut impl Write, body_len: usize, always_length: bool) {
    // Into a `Vec` or a buffer sized for the longest line: writing cannot fail.
    let _ = if body_len > 0 || always_length {
        write!(out, "content-length: {body_len}\r\n\r\n")
    } else {
        out.write_all(b"\r\n")
    };
}

/// The request line and header fields of an HTTP/1.1 request, without the blank line.
fn h1_head(method: &Method, target: &str, headers: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        // The framing is the tool's: set from the body actually sent.
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
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
        let method = spec.method.clone();
        let form = if http2 {
            Form::H2(Box::new(H2Kind { method, uri, headers, bodies }))
        } else {
            let head = h1_head(&method, uri.path_and_query().map_or("/", |p| p.as_str()), &headers);
            // A method that defines a meaning for content says how long it is, even when empty.
            let always_length = method == Method::POST || method == Method::PUT || method == Method::PATCH;
            let whole = |body: &[u8]| {
                let mut msg = head.clone();
                end_head(&mut msg, body.len(), always_length);
                msg.extend_from_slice(body);
                msg.into_boxed_slice()
            };
            let wire = match bodies {
                Bodies::None => Wire::Ready(vec![whole(b"")]),
                Bodies::Rendered(b) => Wire::Ready(b.iter().map(|b| whole(b)).collect()),
                Bodies::Dynamic(template) => Wire::Dynamic { head: head.into_boxed_slice(), template, always_length },
            };
            Form::H1(H1Kind { wire, head_request: method == Method::HEAD })
        };
        Ok(PreparedKind { name: spec.name.clone(), form, check: spec.check.clone() })
    }

    /// The HTTP/1.1 request for data record `record` and request number
    /// `seq`, and whether it is a `HEAD`; `None` for a kind prepared for HTTP/2.
    pub fn h1<'a>(&'a self, records: &'a [Value], record: usize, seq: u64) -> Option<(H1Request<'a>, bool)> {
        let Form::H1(k) = &self.form else { return None };
        let req = match &k.wire {
            Wire::Ready(all) => H1Request::Ready(&all[record % all.len()]),
            Wire::Dynamic { head, template, always_length } => H1Request::Render {
                head,
                template,
                always_length: *always_length,
                record: if records.is_empty() { None } else { records.get(record % records.len()) },
                index: record,
                seq,
            },
        };
        Some((req, k.head_request))
    }

    /// The HTTP/2 request for data record `record` and request number `seq`;
    /// `None` for a kind prepared for HTTP/1.1.
    pub fn h2(&self, records: &[Value], record: usize, seq: u64) -> Option<Request<Body>> {
        let Form::H2(k) = &self.form else { return None };
        let body = match &k.bodies {
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
        *req.method_mut() = k.method.clone();
        *req.uri_mut() = k.uri.clone();
        *req.version_mut() = Version::HTTP_2;
        *req.headers_mut() = k.headers.clone();
        Some(req)
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

    fn wire(toml: &str, http2: bool) -> Vec<PreparedKind> {
        let s = Scenario::from_toml_str(toml, "t.toml", std::path::Path::new(".")).expect("parses");
        let t = Target::resolve("http://127.0.0.1:8089/api/", false).expect("target");
        PreparedKind::prepare_all(&s, &t, http2).expect("prepares")
    }

    fn text(kind: &PreparedKind, seq: u64) -> (String, bool) {
        let (req, head) = kind.h1(&[], 0, seq).expect("an HTTP/1.1 kind");
        let mut scratch = b"stale".to_vec();
        (String::from_utf8(req.encode(&mut scratch).to_vec()).expect("utf-8"), head)
    }

    #[test]
    fn http1_requests_are_serialized_once() {
        let kinds = wire(
            r#"
            [[request]]
            name = "get"
            path = "/x?y=1"
            headers = { "content-length" = "99", "Host" = "example.test", "x-a" = "b" }
            [[request]]
            name = "empty-post"
            method = "POST"
            [[request]]
            name = "head"
            method = "HEAD"
            [[request]]
            name = "body"
            path = "/echo"
            body = '{"a": 1}'
            [[request]]
            name = "seq"
            method = "PUT"
            body = '{"seq": {{@seq}}}'
            "#,
            false,
        );
        let ua = concat!("user-agent: osprey-load/", env!("CARGO_PKG_VERSION"), "\r\n");
        assert_eq!(
            text(&kinds[0], 0).0,
            format!("GET /api/x?y=1 HTTP/1.1\r\nhost: example.test\r\n{ua}x-a: b\r\n\r\n")
        );
        assert_eq!(
            text(&kinds[1], 0).0,
            format!("POST /api/ HTTP/1.1\r\nhost: 127.0.0.1:8089\r\n{ua}content-length: 0\r\n\r\n")
        );
        assert_eq!(text(&kinds[2], 0), (format!("HEAD /api/ HTTP/1.1\r\nhost: 127.0.0.1:8089\r\n{ua}\r\n"), true));
        assert_eq!(
            text(&kinds[3], 0).0,
            format!(
                "POST /api/echo HTTP/1.1\r\nhost: 127.0.0.1:8089\r\n{ua}content-type: application/json\r\ncontent-length: 8\r\n\r\n{{\"a\": 1}}"
            )
        );
        for (seq, len) in [(7, 10), (123_456, 15)] {
            let (t, head) = text(&kinds[4], seq);
            let expected = format!(
                "PUT /api/ HTTP/1.1\r\nhost: 127.0.0.1:8089\r\n{ua}content-type: application/json\r\ncontent-length: {len}\r\n\r\n{{\"seq\": {seq}}}"
            );
            assert_eq!((t, head), (expected, false));
        }
        assert!(kinds[0].h2(&[], 0, 0).is_none(), "prepared for one version");
    }

    #[test]
    fn http2_requests_use_the_absolute_form() {
        let kinds = wire("[[request]]\nname = \"p\"\nbody = 'x{{@seq}}'\n", true);
        let req = kinds[0].h2(&[], 0, 42).expect("an HTTP/2 kind");
        assert_eq!(req.uri(), "http://127.0.0.1:8089/api/");
        assert_eq!((req.method(), req.version()), (&Method::POST, Version::HTTP_2));
        assert!(req.headers().get(HOST).is_none());
        assert!(kinds[0].h1(&[], 0, 0).is_none());
    }

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
