//! The summary printed at the end of a run.

use std::fmt::Write as _;

use super::{Document, Report};
use crate::load::hist::LatencySummary;
use crate::load::live::fmt_ms;

/// A human-readable summary of every run in `doc`.
pub fn render(doc: &Document) -> String {
    let mut out = String::new();
    for r in doc.runs() {
        run(&mut out, r);
    }
    if let Document::Suite(s) = doc {
        let _ = writeln!(
            out,
            "suite {}: {} runs, {} (exit code {})",
            s.name,
            s.runs.len(),
            if s.passed { "passed" } else { "FAILED" },
            s.exit_code
        );
    }
    out
}

fn latency_line(label: &str, l: &LatencySummary) -> String {
    format!(
        "  {label:<22} p50 {:>8}  p90 {:>8}  p95 {:>8}  p99 {:>8}  p99.9 {:>8}  max {:>8}",
        fmt_ms(l.p50),
        fmt_ms(l.p90),
        fmt_ms(l.p95),
        fmt_ms(l.p99),
        fmt_ms(l.p999),
        fmt_ms(l.max)
    )
}

fn run(out: &mut String, r: &Report) {
    let model = match r.model.kind.as_str() {
        "open" => format!(
            "open model, peak {:.0} req/s",
            r.model.stages.iter().map(|s| s.target).fold(r.model.start, f64::max)
        ),
        _ => format!(
            "closed model, peak {:.0} VUs",
            r.model.stages.iter().map(|s| s.target).fold(r.model.start, f64::max)
        ),
    };
    let _ = writeln!(out, "\n{} — {} ({model}, {:.1}s, scenario {})", r.name, r.target.url, r.duration_s, r.scenario);
    if let Some(s) = r.shard {
        let _ = writeln!(out, "  shard {}/{} (merge with `osprey load merge`)", s.index, s.count);
    }
    let q = &r.requests;
    let _ = writeln!(
        out,
        "  requests  {:.1}/s   sent {}   ok {}   errors {} ({:.2}%)   missed {}   cancelled {}",
        r.rps,
        q.sent,
        q.ok,
        q.errors,
        r.error_rate * 100.0,
        q.missed,
        q.cancelled
    );
    let corrected = if r.model.kind == "open" { "latency (from schedule)" } else { "latency (corrected)" };
    let _ = writeln!(out, "{}", latency_line(corrected, &r.latency_ms));
    let _ = writeln!(out, "{}", latency_line("latency (uncorrected)", &r.latency_uncorrected_ms));
    if r.kinds.len() > 1 {
        for k in &r.kinds {
            let _ = writeln!(out, "{}", latency_line(&format!("{} ({:.0}/s)", k.name, k.rps), &k.latency_ms));
        }
    }
    let e = &r.errors;
    if e.connect + e.timeout + e.status_4xx + e.status_5xx + e.check + e.io > 0 {
        let _ = writeln!(
            out,
            "  errors    connect {}  timeout {}  4xx {}  5xx {}  check {}  io {}",
            e.connect, e.timeout, e.status_4xx, e.status_5xx, e.check, e.io
        );
        for s in r.error_samples.iter().take(3) {
            let _ = writeln!(out, "    e.g. {s}");
        }
    }
    let _ = writeln!(
        out,
        "  traffic   {} connections ({:.1} requests each){}   {} B sent   {} B received",
        r.connections.opened,
        r.connections.requests_per_connection,
        if r.connections.http2 { ", HTTP/2" } else { "" },
        r.bytes.sent,
        r.bytes.received
    );
    if let Some(st) = &r.server_timing {
        let b = |n: &str| st.breakdown.get(n).map_or("-".into(), |l| fmt_ms(l.p50));
        let _ = writeln!(
            out,
            "  server    {} responses with Server-Timing; p50 network {}  queueing {}  service {}",
            st.responses,
            b("network"),
            b("queueing"),
            b("service")
        );
    }
    let c = &r.client;
    let _ = writeln!(
        out,
        "  client    {} threads, {} cores used, busiest thread {}, peak RSS {}",
        c.threads,
        c.cpu_cores_used.map_or("?".into(), |v| format!("{v:.2}")),
        c.busiest_thread_cpu.map_or("?".into(), |v| format!("{:.0}%", v * 100.0)),
        c.peak_rss_bytes.map_or("?".into(), |b| format!("{:.1} MB", b as f64 / 1e6))
    );
    for w in &c.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    if let Some(b) = &r.breakpoint {
        let _ = writeln!(
            out,
            "  breakpoint {}: last passing rate {}{}",
            if b.found { format!("found ({})", b.failed.join(", ")) } else { "not reached".into() },
            b.last_passing_rate.map_or("none".into(), |v| format!("{v:.0} req/s")),
            b.broken_at_rate.map_or(String::new(), |v| format!(", broke at {v:.0} req/s"))
        );
    }
    if let Some(a) = &r.aborted {
        let _ = writeln!(out, "  aborted: {}", a.reason);
    }
    for t in &r.thresholds {
        let _ = writeln!(
            out,
            "  {} {:<28} [{}] observed {} (exit code {})",
            if t.passed { "PASS" } else { "FAIL" },
            t.expr,
            t.scope,
            t.observed.map_or("nothing".into(), |v| if t.unit == "ratio" {
                format!("{:.3}%", v * 100.0)
            } else {
                format!("{v:.3} {}", t.unit)
            }),
            t.exit_code
        );
    }
    let _ = writeln!(out, "  exit code {}", r.exit_code);
}
