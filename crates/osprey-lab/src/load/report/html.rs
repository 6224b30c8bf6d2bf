//! The self-contained HTML report: tables and inline SVG charts, no scripts,
//! no external resources (the only URL in it is the target's, as text).

use std::fmt::Write as _;

use super::svg::{bar_chart, escape, line_chart, Series, XAxis};
use super::{Document, Report};
use crate::load::hist::LatencySummary;
use crate::load::live::fmt_ms;

const STYLE: &str =
    "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:980px;color:#222;padding:0 12px}\
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}h3{font-size:15px}\
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}\
th:first-child,td:first-child{text-align:left}.pass{color:#17803d;font-weight:600}.fail{color:#b42318;font-weight:600}\
.warn{background:#fff4e5;border-left:4px solid #f79009;padding:6px 10px;margin:6px 0}\
svg.chart{display:block;margin:10px 0;max-width:100%;height:auto}.ct{font-weight:600;font-size:13px}\
.tick{font-size:11px;fill:#555}.al{font-size:11px;fill:#333}.grid{stroke:#eee}.frame{fill:none;stroke:#bbb}\
code{background:#f4f4f4;padding:1px 4px}";

pub fn render(doc: &Document) -> String {
    render_with(doc, None)
}

/// The page, with `extra` (a self-contained HTML section) after the runs.
pub fn render_with(doc: &Document, extra: Option<&str>) -> String {
    let title = match doc {
        Document::Run(r) => format!("osprey load: {}", r.name),
        Document::Suite(s) => format!("osprey load suite: {}", s.name),
    };
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1>",
        escape(&title),
        escape(&title)
    );
    if let Document::Suite(s) = doc {
        let _ = write!(
            out,
            "<p>{} runs, started {}, {:.1} s, <span class=\"{}\">{}</span> (exit code {})</p>",
            s.runs.len(),
            escape(&s.started_at),
            s.duration_s,
            if s.passed { "pass" } else { "fail" },
            if s.passed { "passed" } else { "failed" },
            s.exit_code
        );
    }
    for r in doc.runs() {
        run(&mut out, r, matches!(doc, Document::Suite(_)));
    }
    if let Some(extra) = extra {
        out.push_str(extra);
    }
    out.push_str("</body></html>\n");
    out
}

fn lat_cells(l: &LatencySummary) -> String {
    [l.p50, l.p90, l.p95, l.p99, l.p999, l.max].iter().map(|v| format!("<td>{}</td>", fmt_ms(*v))).collect()
}

const LAT_HEAD: &str = "<th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th>";

fn run(out: &mut String, r: &Report, in_suite: bool) {
    if in_suite {
        let _ = write!(out, "<h2>{}</h2>", escape(&r.name));
    }
    let q = &r.requests;
    let _ = write!(
        out,
        "<p>Target <code>{}</code>{} · scenario <code>{}</code> · {} model{} · started {} · {:.1} s · {} threads</p>",
        escape(&r.target.url),
        if r.target.http2 { " (HTTP/2)" } else { "" },
        escape(&r.scenario),
        escape(&r.model.kind),
        r.model.profile.as_ref().map_or(String::new(), |p| format!(", profile {}", escape(p))),
        escape(&r.started_at),
        r.duration_s,
        r.model.threads
    );
    let verdict = if r.passed { "<span class=\"pass\">passed</span>" } else { "<span class=\"fail\">failed</span>" };
    let _ = write!(
        out,
        "<table><tr><th>req/s</th><th>scheduled</th><th>sent</th><th>ok</th><th>errors</th><th>error rate</th><th>missed</th><th>cancelled</th><th>result</th></tr>\
         <tr><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3}%</td><td>{}</td><td>{}</td><td>{verdict} (exit {})</td></tr></table>",
        r.rps, q.scheduled, q.sent, q.ok, q.errors, r.error_rate * 100.0, q.missed, q.cancelled, r.exit_code
    );
    for w in &r.client.warnings {
        let _ = write!(out, "<div class=\"warn\">{}</div>", escape(w));
    }
    if let Some(a) = &r.aborted {
        let _ = write!(out, "<div class=\"warn\">Aborted: {}</div>", escape(&a.reason));
    }
    if let Some(b) = &r.breakpoint {
        let _ = write!(
            out,
            "<p><b>Breakpoint</b>: {}; last passing rate {}; broke at {}.</p>",
            if b.found { format!("found ({})", escape(&b.failed.join(", "))) } else { "not reached".into() },
            b.last_passing_rate.map_or("none".into(), |v| format!("{v:.0} req/s")),
            b.broken_at_rate.map_or("-".into(), |v| format!("{v:.0} req/s"))
        );
    }

    let _ = write!(out, "<h3>Latency</h3><table><tr><th></th>{LAT_HEAD}</tr>");
    let corrected = if r.model.kind == "open" { "from intended send time" } else { "corrected" };
    let _ = write!(out, "<tr><td>all, {corrected}</td>{}</tr>", lat_cells(&r.latency_ms));
    let _ = write!(out, "<tr><td>all, uncorrected</td>{}</tr>", lat_cells(&r.latency_uncorrected_ms));
    for k in &r.kinds {
        let _ = write!(out, "<tr><td>{} {}</td>{}</tr>", escape(&k.method), escape(&k.path), lat_cells(&k.latency_ms));
    }
    out.push_str("</table>");

    let t =
        |f: fn(&super::TimelineRow) -> f64| r.timeline.iter().map(|row| (f64::from(row.t), f(row))).collect::<Vec<_>>();
    out.push_str(&line_chart(
        "Latency over time",
        "seconds",
        "ms",
        &[
            Series { name: "p50", color: "#2e7d32", points: t(|x| x.p50_ms) },
            Series { name: "p95", color: "#ef6c00", points: t(|x| x.p95_ms) },
            Series { name: "p99", color: "#c62828", points: t(|x| x.p99_ms) },
        ],
        XAxis::Linear,
    ));
    let nines =
        |d: &[[f64; 2]]| d.iter().map(|[p, v]| (-(1.0 - (p / 100.0).min(0.99999)).log10(), *v)).collect::<Vec<_>>();
    out.push_str(&line_chart(
        "Latency by percentile",
        "percentile",
        "ms",
        &[Series { name: corrected, color: "#6a1b9a", points: nines(&r.latency_distribution_ms) }],
        XAxis::Nines,
    ));
    out.push_str(&bar_chart("Responses per second", "seconds", "req/s", &t(|x| x.rps), "#1565c0"));
    out.push_str(&bar_chart("Errors per second", "seconds", "errors", &t(|x| x.errors as f64), "#c62828"));
    if r.requests.missed > 0 {
        out.push_str(&bar_chart("Missed arrivals per second", "seconds", "missed", &t(|x| x.missed as f64), "#8d6e63"));
    }

    if !r.kinds.is_empty() {
        out.push_str("<h3>Requests</h3><table><tr><th>request</th><th>req/s</th><th>sent</th><th>ok</th><th>errors</th><th>4xx</th><th>5xx</th><th>check</th><th>body bytes</th></tr>");
        for k in &r.kinds {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&k.name),
                k.rps,
                k.requests.sent,
                k.requests.ok,
                k.requests.errors,
                k.errors.status_4xx,
                k.errors.status_5xx,
                k.errors.check,
                k.body_bytes_received
            );
        }
        out.push_str("</table>");
    }
    let e = &r.errors;
    let _ = write!(
        out,
        "<h3>Errors</h3><table><tr><th>connect</th><th>timeout</th><th>4xx</th><th>5xx</th><th>check</th><th>io</th></tr>\
         <tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        e.connect, e.timeout, e.status_4xx, e.status_5xx, e.check, e.io
    );
    for s in &r.error_samples {
        let _ = write!(out, "<div><code>{}</code></div>", escape(s));
    }
    if !r.thresholds.is_empty() {
        out.push_str("<h3>Thresholds</h3><table><tr><th>threshold</th><th>scope</th><th>observed</th><th>result</th><th>exit code</th></tr>");
        for th in &r.thresholds {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                escape(&th.expr),
                escape(&th.scope),
                th.observed.map_or("nothing".into(), |v| if th.unit == "ratio" {
                    format!("{:.3}%", v * 100.0)
                } else {
                    format!("{v:.3} {}", escape(&th.unit))
                }),
                if th.passed { "pass" } else { "fail" },
                if th.passed {
                    "pass"
                } else if th.aborted {
                    "fail (aborted the run)"
                } else {
                    "fail"
                },
                th.exit_code
            );
        }
        out.push_str("</table>");
    }
    if r.stages.len() > 1 {
        out.push_str("<h3>Stages</h3><table><tr><th>stage</th><th>from</th><th>to</th><th>target</th><th>req/s</th><th>errors</th>");
        out.push_str(LAT_HEAD);
        out.push_str("</tr>");
        for s in &r.stages {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{:.0}s</td><td>{:.0}s</td><td>{:.0}</td><td>{:.1}</td><td>{}</td>{}</tr>",
                s.index,
                s.start_s,
                s.end_s,
                s.target,
                s.rps,
                s.requests.errors,
                lat_cells(&s.latency_ms)
            );
        }
        out.push_str("</table>");
    }
    if let Some(st) = &r.server_timing {
        let _ = write!(
            out,
            "<h3>Server-Timing</h3><p>{} responses carried the header.</p><table><tr><th>metric</th>{LAT_HEAD}</tr>",
            st.responses
        );
        for (name, l) in st.breakdown.iter().chain(st.metrics.iter()) {
            let _ = write!(out, "<tr><td>{}</td>{}</tr>", escape(name), lat_cells(l));
        }
        out.push_str("</table>");
    }
    let c = &r.client;
    let _ = write!(
        out,
        "<h3>Client</h3><table><tr><th>connections</th><th>requests/connection</th><th>bytes sent</th><th>bytes received</th><th>CPU user s</th><th>CPU system s</th><th>cores used</th><th>busiest thread</th><th>peak RSS</th></tr>\
         <tr><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        r.connections.opened,
        r.connections.requests_per_connection,
        r.bytes.sent,
        r.bytes.received,
        c.cpu_user_s.map_or("?".into(), |v| format!("{v:.2}")),
        c.cpu_system_s.map_or("?".into(), |v| format!("{v:.2}")),
        c.cpu_cores_used.map_or("?".into(), |v| format!("{v:.2}")),
        c.busiest_thread_cpu.map_or("?".into(), |v| format!("{:.0}%", v * 100.0)),
        c.peak_rss_bytes.map_or("?".into(), |b| format!("{:.1} MB", b as f64 / 1e6))
    );
    if let Some(l) = &c.scheduler_lag_ms {
        let _ =
            write!(out, "<p>Scheduler lag p50 {} · p99 {} · max {}</p>", fmt_ms(l.p50), fmt_ms(l.p99), fmt_ms(l.max));
    }
}
