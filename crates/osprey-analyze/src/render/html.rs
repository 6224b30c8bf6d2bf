//! HTML: [`page`] is a whole self-contained document (no scripts, no
//! external resources); [`section`] is the same content as one `<section
//! class="osprey-analysis">` with its own scoped `<style>`, for another
//! report (e.g. `osprey load --html`) to embed. Every text is escaped.

use std::fmt::Write as _;

use super::{change, opt, setting_value, value};
use crate::Analysis;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
.osprey-analysis{font:14px/1.45 system-ui,sans-serif;color:#1d2330;max-width:1100px}
.osprey-analysis h2{font-size:20px;margin:0 0 8px}
.osprey-analysis h3{font-size:16px;margin:22px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
.osprey-analysis table{border-collapse:collapse;width:100%;margin:4px 0 8px}
.osprey-analysis th,.osprey-analysis td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef1f5;vertical-align:top}
.osprey-analysis th{font-weight:600;background:#f6f8fb}
.osprey-analysis td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.osprey-analysis .score{display:flex;gap:18px;align-items:center;margin:8px 0 14px}
.osprey-analysis .big{font-size:40px;font-weight:700}
.osprey-analysis .grade{font-size:28px;font-weight:700;color:#fff;border-radius:8px;padding:4px 16px}
.osprey-analysis .g-A{background:#1f8a4c}.osprey-analysis .g-B{background:#5a9e2f}
.osprey-analysis .g-C{background:#c39a12}.osprey-analysis .g-D{background:#d9711c}
.osprey-analysis .g-F{background:#c0392b}.osprey-analysis .g-none{background:#8a94a6}
.osprey-analysis .bar{background:#eef1f5;border-radius:3px;height:8px;width:120px}
.osprey-analysis .bar span{display:block;height:8px;border-radius:3px;background:#3f7fd9}
.osprey-analysis .muted{color:#6b7485}
.osprey-analysis .card{border:1px solid #dde2ea;border-radius:6px;padding:8px 12px;margin:8px 0}
.osprey-analysis .high{color:#c0392b;font-weight:600}.osprey-analysis .medium{color:#b8730f;font-weight:600}
.osprey-analysis .low{color:#6b7485;font-weight:600}
.osprey-analysis .failure{color:#c0392b;font-weight:700}.osprey-analysis .warning{color:#b8730f;font-weight:700}
.osprey-analysis code{background:#f2f4f8;padding:0 4px;border-radius:3px}
";

/// A whole HTML document.
pub fn page(a: &Analysis) -> String {
    let title = match (a.score, a.grade) {
        (Some(s), Some(g)) => format!("osprey analyze: {s:.1} ({})", g.as_str()),
        _ => "osprey analyze".to_string(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n\
         <style>body{{margin:24px;background:#fff}}</style>\n</head>\n<body>\n{}</body>\n</html>\n",
        escape(&title),
        section(a)
    )
}

/// The analysis as one embeddable `<section>` with scoped styles.
pub fn section(a: &Analysis) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "<section class=\"osprey-analysis\">\n<style>\n{STYLE}</style>");
    o.push_str("<h2>Performance analysis</h2>\n");
    inputs(a, &mut o);
    score(a, &mut o);
    signals(a, &mut o);
    bottlenecks(a, &mut o);
    recommendations(a, &mut o);
    trends(a, &mut o);
    if !a.notes.is_empty() {
        o.push_str("<h3>Notes</h3>\n<ul>\n");
        for n in &a.notes {
            let _ = writeln!(o, "<li>{}</li>", escape(n));
        }
        o.push_str("</ul>\n");
    }
    let reasons = if a.outcome.reasons.is_empty() { "ok".to_string() } else { a.outcome.reasons.join("; ") };
    let _ = writeln!(o, "<p class=\"muted\">Exit code {}: {}</p>", a.outcome.exit_code, escape(&reasons));
    let _ = writeln!(o, "<p class=\"muted\">{} {} · schema {}</p>", a.tool.name, a.tool.version, a.schema);
    o.push_str("</section>\n");
    o
}

fn inputs(a: &Analysis, o: &mut String) {
    let mut parts = Vec::new();
    if let Some(r) = &a.inputs.report {
        parts.push(format!("load report <code>{}</code> ({})", escape(&r.run), escape(&r.origin)));
    }
    if let Some(s) = &a.inputs.stats {
        let span = s.span_s.map_or(String::new(), |t| format!(" over {t:.1} s"));
        parts.push(format!("server stats: {} sample(s){span} ({})", s.samples, escape(&s.origin)));
    }
    if let Some(b) = &a.inputs.baseline {
        parts.push(format!("baseline <code>{}</code> ({})", escape(&b.run), escape(&b.origin)));
    }
    let _ = writeln!(o, "<p class=\"muted\">{}</p>", parts.join(" · "));
}

fn score(a: &Analysis, o: &mut String) {
    let (big, grade, class) = match (a.score, a.grade) {
        (Some(s), Some(g)) => (format!("{s:.1}"), g.as_str(), format!("g-{}", g.as_str())),
        _ => ("–".to_string(), "–", "g-none".to_string()),
    };
    let first =
        a.saturates_first.map_or(String::new(), |r| format!("<div>Saturates first: <b>{}</b></div>", escape(r)));
    let _ = writeln!(
        o,
        "<div class=\"score\"><span class=\"big\">{big}</span><span class=\"muted\">/ 100</span>\
         <span class=\"grade {class}\">{grade}</span><div>{} of {} signals measured; weights renormalised over \
         {:.2}{first}</div></div>",
        a.signals.len(),
        a.signals.len() + a.missing_signals.len(),
        a.weight_present
    );
}

fn signals(a: &Analysis, o: &mut String) {
    o.push_str(
        "<h3>Signals</h3>\n<table>\n<tr><th>signal</th><th>value</th><th>score</th><th></th>\
                <th>weight</th><th>curve (100 → 0)</th><th>source</th></tr>\n",
    );
    for s in &a.signals {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}</td>\
             <td><div class=\"bar\"><span style=\"width:{:.0}%\"></span></div></td><td class=\"n\">{:.3}</td>\
             <td class=\"n\">{} → {}</td><td class=\"muted\">{} · {} · {}</td></tr>",
            escape(s.name),
            escape(&value(s.value, s.unit)),
            s.score,
            s.score.clamp(0.0, 100.0),
            s.effective_weight,
            s.curve.good,
            s.curve.bad,
            s.source.as_str(),
            escape(&s.metric),
            escape(&s.window)
        );
    }
    for m in &a.missing_signals {
        let _ = writeln!(
            o,
            "<tr class=\"muted\"><td>{}</td><td colspan=\"6\">not measured: {}</td></tr>",
            m.id.label(),
            escape(&m.reason)
        );
    }
    o.push_str("</table>\n");
}

fn bottlenecks(a: &Analysis, o: &mut String) {
    o.push_str("<h3>Bottlenecks</h3>\n");
    if a.bottlenecks.is_empty() {
        o.push_str("<p>None found.</p>\n");
        return;
    }
    o.push_str("<p class=\"muted\">Most severe first: the first is the resource that saturates first.</p>\n");
    for b in &a.bottlenecks {
        let _ = writeln!(
            o,
            "<div class=\"card\" id=\"oa-{}\"><div><span class=\"{}\">{} · {:.1}</span> <b>{}</b> \
             <span class=\"muted\">({})</span></div><p>{}</p>\n<table><tr><th>metric</th><th>window</th>\
             <th>value</th><th>threshold</th><th>source</th></tr>",
            b.id,
            b.level,
            b.level,
            b.severity,
            escape(b.title),
            b.id,
            escape(&b.summary)
        );
        for e in &b.evidence {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{} {}</td><td>{}</td></tr>",
                escape(&e.metric),
                escape(&e.window),
                escape(&value(e.value, e.unit)),
                escape(e.comparison),
                escape(&value(e.threshold, e.unit)),
                e.source.as_str()
            );
        }
        o.push_str("</table></div>\n");
    }
}

fn recommendations(a: &Analysis, o: &mut String) {
    o.push_str("<h3>Recommendations</h3>\n");
    if a.recommendations.is_empty() {
        o.push_str("<p>None.</p>\n");
        return;
    }
    o.push_str(
        "<table>\n<tr><th></th><th>priority</th><th>what</th><th>setting</th><th>now → suggested</th>\
                <th>expected effect</th><th>evidence</th></tr>\n",
    );
    for r in &a.recommendations {
        let links: Vec<String> = r
            .evidence
            .iter()
            .map(|e| {
                if a.bottlenecks.iter().any(|b| b.id == e) {
                    format!("<a href=\"#oa-{0}\">{0}</a>", escape(e))
                } else {
                    escape(e)
                }
            })
            .collect();
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"{p}\">{p}</td><td>{}</td><td><code>{}</code></td><td>{} → {}</td>\
             <td>{}</td><td>{}</td></tr>",
            r.id,
            escape(&r.title),
            escape(&r.setting),
            escape(&setting_value(&r.current)),
            escape(&setting_value(&r.suggested)),
            escape(&r.expected_effect),
            links.join(", "),
            p = r.priority.as_str()
        );
    }
    o.push_str("</table>\n");
}

fn trends(a: &Analysis, o: &mut String) {
    let Some(t) = &a.trends else { return };
    let _ = writeln!(
        o,
        "<h3>Trends against the baseline</h3>\n<p class=\"muted\">Baseline <code>{}</code> ({})</p>",
        escape(&t.baseline_run),
        escape(&t.baseline)
    );
    o.push_str(
        "<table>\n<tr><th>figure</th><th>baseline</th><th>current</th><th>change</th><th>limit</th>\
                <th>verdict</th></tr>\n",
    );
    for r in &t.rows {
        let class = match r.verdict {
            crate::trend::Verdict::Failure => "failure",
            crate::trend::Verdict::Warning => "warning",
            _ => "",
        };
        let _ = writeln!(
            o,
            "<tr><td>{} ({})</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td>{}</td><td class=\"{class}\">{}</td></tr>",
            r.metric,
            r.unit,
            opt(r.baseline),
            opt(r.current),
            change(r),
            r.rule.unwrap_or(""),
            r.verdict.as_str()
        );
    }
    o.push_str("</table>\n");
    for n in &t.notes {
        let _ = writeln!(o, "<p class=\"muted\">Note: {}</p>", escape(n));
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape(r#"<a href="x">&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    }
}
