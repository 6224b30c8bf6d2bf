//! The per-second timeline as CSV: one row per second (and per run, for suites).

use std::fmt::Write as _;

use super::Document;

pub const HEADER: &str =
    "run,t_s,target,sent,completed,ok,errors,missed,rps,p50_ms,p90_ms,p95_ms,p99_ms,max_ms,bytes_sent,bytes_received";

pub fn render(doc: &Document) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    for r in doc.runs() {
        let name = quote(&r.name);
        for row in &r.timeline {
            let _ = writeln!(
                out,
                "{name},{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{},{}",
                row.t,
                row.target,
                row.sent,
                row.completed,
                row.ok,
                row.errors,
                row.missed,
                row.rps,
                row.p50_ms,
                row.p90_ms,
                row.p95_ms,
                row.p99_ms,
                row.max_ms,
                row.bytes_sent,
                row.bytes_received
            );
        }
    }
    out
}

/// RFC 4180 quoting when needed.
fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
