//! Request-body templates: `{{field}}` placeholders filled from the current
//! data record.
//!
//! A placeholder normally sits inside a JSON string (`"text": "{{title}}"`),
//! so the value is written JSON-escaped and without quotes; a value that is
//! not a string is written as its JSON text, escaped the same way.
//! `{{json:field}}` writes the value as raw JSON instead (numbers, arrays,
//! objects). `{{a.b}}` reads nested fields and `{{tags.0}}` array elements.
//! Two built-ins do not read the record: `{{@index}}`, the record's line
//! number, and `{{@seq}}`, a per-request counter. Bodies without `{{@seq}}`
//! are rendered once per record before the run starts, so the hot path only
//! clones a reference-counted buffer.

use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Field { path: Vec<String>, raw: bool },
    Index,
    Seq,
}

/// A template that does not parse or does not fit a record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("unterminated placeholder starting at byte {0}")]
    Unterminated(usize),
    #[error("empty placeholder at byte {0}")]
    Empty(usize),
    #[error("unknown built-in `{{{{@{0}}}}}` (known: @index, @seq)")]
    UnknownBuiltin(String),
    #[error("the template uses `{{{{{0}}}}}` but no data file is set")]
    NoData(String),
    #[error("record {record} has no field `{field}`")]
    MissingField { record: usize, field: String },
}

impl Template {
    pub fn parse(s: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = s;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or(TemplateError::Unterminated(offset + open))?;
            let name = after[..close].trim();
            if name.is_empty() {
                return Err(TemplateError::Empty(offset + open));
            }
            parts.push(match name {
                "@index" => Part::Index,
                "@seq" => Part::Seq,
                n if n.starts_with('@') => return Err(TemplateError::UnknownBuiltin(n[1..].to_string())),
                n => {
                    let (raw, field) = match n.strip_prefix("json:") {
                        Some(f) => (true, f.trim()),
                        None => (false, n),
                    };
                    Part::Field { path: field.split('.').map(str::to_string).collect(), raw }
                }
            });
            let consumed = open + 2 + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// Whether the output changes per request (uses `{{@seq}}`).
    pub fn is_dynamic(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Seq))
    }

    /// Whether the template reads record fields.
    pub fn uses_fields(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Field { .. }))
    }

    /// Checks the template against a data set (or its absence) once, up front.
    pub fn check(&self, records: &[Value], has_data: bool) -> Result<(), TemplateError> {
        if !has_data {
            if let Some(Part::Field { path, .. }) = self.parts.iter().find(|p| matches!(p, Part::Field { .. })) {
                return Err(TemplateError::NoData(path.join(".")));
            }
        }
        let mut scratch = Vec::new();
        for (i, r) in records.iter().enumerate() {
            scratch.clear();
            self.render(Some(r), i, 0, &mut scratch)?;
        }
        Ok(())
    }

    /// Appends the rendering for `record` (line `index`) and request `seq` to `out`.
    pub fn render(
        &self,
        record: Option<&Value>,
        index: usize,
        seq: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), TemplateError> {
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
                Part::Index => out.extend_from_slice(index.to_string().as_bytes()),
                Part::Seq => out.extend_from_slice(seq.to_string().as_bytes()),
                Part::Field { path, raw } => {
                    let value = record
                        .and_then(|r| lookup(r, path))
                        .ok_or_else(|| TemplateError::MissingField { record: index + 1, field: path.join(".") })?;
                    match (value, raw) {
                        (Value::String(s), false) => escape_json_into(s, out),
                        (v, false) => escape_json_into(&v.to_string(), out),
                        (v, true) => out.extend_from_slice(v.to_string().as_bytes()),
                    }
                }
            }
        }
        Ok(())
    }
}

fn lookup<'a>(mut value: &'a Value, path: &[String]) -> Option<&'a Value> {
    for key in path {
        value = match value {
            Value::Object(map) => map.get(key)?,
            Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Writes `s` as the inside of a JSON string literal (RFC 8259 escaping).
pub fn escape_json_into(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escaped {
            Some(e) => out.extend_from_slice(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, record: &Value) -> String {
        let mut out = Vec::new();
        Template::parse(t).expect("parses").render(Some(record), 0, 7, &mut out).expect("renders");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn fills_and_escapes_fields() {
        let rec =
            json!({"title": "He said \"hi\"\nthen\tleft \\ \u{1}", "n": 3, "tags": ["a", "b"], "a": {"b": "deep"}});
        let body = render(
            r#"{"t": "{{title}}", "n": {{json:n}}, "tag": "{{ tags.1 }}", "d": "{{a.b}}", "s": {{@seq}}}"#,
            &rec,
        );
        let parsed: Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(parsed["t"], rec["title"]);
        assert_eq!(parsed["n"], 3);
        assert_eq!(parsed["tag"], "b");
        assert_eq!(parsed["d"], "deep");
        assert_eq!(parsed["s"], 7);
        assert!(body.contains(r#"\u0001"#));
    }

    #[test]
    fn non_strings_inside_quotes_stay_valid() {
        let rec = json!({"obj": {"k": "v\""}});
        let body = render(r#"{"x": "{{obj}}"}"#, &rec);
        let parsed: Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(parsed["x"], r#"{"k":"v\""}"#);
    }

    #[test]
    fn reports_mistakes() {
        assert_eq!(Template::parse("{{oops").expect_err("refused"), TemplateError::Unterminated(0));
        assert_eq!(Template::parse("a {{ }}").expect_err("refused"), TemplateError::Empty(2));
        assert!(matches!(Template::parse("{{@now}}"), Err(TemplateError::UnknownBuiltin(_))));
        let t = Template::parse("{{missing}}").expect("parses");
        assert!(matches!(t.check(&[json!({"x": 1})], true), Err(TemplateError::MissingField { record: 1, .. })));
        assert!(matches!(t.check(&[], false), Err(TemplateError::NoData(_))));
        assert!(Template::parse("{{@seq}}").expect("parses").is_dynamic());
    }
}
