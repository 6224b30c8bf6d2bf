//! The terminal summary: score and grade, the signal table, bottlenecks with
//! their evidence, recommendations, trends, notes and the exit code. Plain
//! text (no colour), so it reads the same in a terminal, a CI log or a file.

use std::fmt::Write as _;

use super::{change, opt, setting_value, value};
use crate::Analysis;

/// The whole summary, ending with a newline.
pub fn render(a: &Analysis) -> String {
    let mut o = String::new();
    header(a, &mut o);
    signals(a, &mut o);
    bottlenecks(a, &mut o);
    recommendations(a, &mut o);
    trends(a, &mut o);
    if !a.notes.is_empty() {
        o.push_str("\nNotes\n");
        for n in &a.notes {
            let _ = writeln!(o, "  - {n}");
        }
    }
    let _ = write!(o, "\nexit {}", a.outcome.exit_code);
    if a.outcome.reasons.is_empty() {
        o.push_str(": ok\n");
    } else {
        let _ = writeln!(o, ": {}", a.outcome.reasons.join("; "));
    }
    o
}

fn header(a: &Analysis, o: &mut String) {
    let mut inputs = Vec::new();
    if let Some(r) = &a.inputs.report {
        inputs.push(format!("load report `{}` ({})", r.run, r.origin));
    }
    if let Some(s) = &a.inputs.stats {
        let span = s.span_s.map_or(String::new(), |t| format!(" over {t:.1} s"));
        let n = if s.samples == 1 { "1 sample".to_string() } else { format!("{} samples", s.samples) };
        inputs.push(format!("server stats ({n}{span}, {})", s.origin));
    }
    let _ = writeln!(o, "osprey analyze — {}", inputs.join(" + "));
    let measured = a.signals.len();
    let total = measured + a.missing_signals.len();
    match (a.score, a.grade) {
        (Some(s), Some(g)) => {
            let _ = writeln!(
                o,
                "\n  health {s:.1} / 100   grade {}   ({measured} of {total} signals; weights renormalised over {:.2})",
                g.as_str(),
                a.weight_present
            );
        }
        _ => {
            let _ = writeln!(o, "\n  health: not scored (no signal was measured)");
        }
    }
    if let Some(r) = a.saturates_first {
        let _ = writeln!(o, "  saturates first: {r}");
    }
}

fn signals(a: &Analysis, o: &mut String) {
    if a.signals.is_empty() && a.missing_signals.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\n  {:<20} {:>14} {:>6} {:>7}  {:<22} source",
        "signal", "value", "score", "weight", "curve (100 → 0)"
    );
    for s in &a.signals {
        let curve = format!("{} → {}", trim(s.curve.good), trim(s.curve.bad));
        let _ = writeln!(
            o,
            "  {:<20} {:>14} {:>6.1} {:>7.3}  {:<22} {} · {} · {}",
            s.name,
            value(s.value, s.unit),
            s.score,
            s.effective_weight,
            curve,
            s.source.as_str(),
            s.metric,
            s.window
        );
    }
    for m in &a.missing_signals {
        let _ = writeln!(o, "  {:<20} {:>14} {:>6} {:>7}  not measured: {}", m.id.label(), "–", "–", "–", m.reason);
    }
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn bottlenecks(a: &Analysis, o: &mut String) {
    o.push_str("\nBottlenecks (most severe first: the first saturates first)\n");
    if a.bottlenecks.is_empty() {
        o.push_str("  none found\n");
        return;
    }
    for (i, b) in a.bottlenecks.iter().enumerate() {
        let _ = writeln!(o, "  {}. {} [{}, severity {:.1}, {}]", i + 1, b.title, b.id, b.severity, b.level);
        let _ = writeln!(o, "     {}", b.summary);
        for e in &b.evidence {
            let _ = writeln!(
                o,
                "     - {} = {} {} {} ({}, {})",
                e.metric,
                value(e.value, e.unit),
                e.comparison,
                value(e.threshold, e.unit),
                e.source.as_str(),
                e.window
            );
        }
    }
}

fn recommendations(a: &Analysis, o: &mut String) {
    o.push_str("\nRecommendations\n");
    if a.recommendations.is_empty() {
        o.push_str("  none\n");
        return;
    }
    for r in &a.recommendations {
        let _ = writeln!(o, "  {} [{}] {}", r.id, r.priority.as_str(), r.title);
        let _ = writeln!(
            o,
            "     setting   {}: {} → {}",
            r.setting,
            setting_value(&r.current),
            setting_value(&r.suggested)
        );
        let _ = writeln!(o, "     effect    {}", r.expected_effect);
        let _ = writeln!(o, "     evidence  {}", r.evidence.join(", "));
    }
}

fn trends(a: &Analysis, o: &mut String) {
    let Some(t) = &a.trends else { return };
    let _ = writeln!(o, "\nTrends vs baseline `{}` ({})", t.baseline_run, t.baseline);
    let _ = writeln!(
        o,
        "  {:<26} {:>12} {:>12} {:>12}  {:<18} verdict",
        "figure", "baseline", "current", "change", "limit"
    );
    for r in &t.rows {
        let _ = writeln!(
            o,
            "  {:<26} {:>12} {:>12} {:>12}  {:<18} {}",
            format!("{} ({})", r.metric, r.unit),
            opt(r.baseline),
            opt(r.current),
            change(r),
            r.rule.unwrap_or(""),
            r.verdict.as_str()
        );
    }
    for n in &t.notes {
        let _ = writeln!(o, "  note: {n}");
    }
}
