//! Renderings of an [`Analysis`](crate::Analysis): the terminal summary
//! ([`text`]) and HTML ([`html`]: a whole page, or a section another report
//! embeds). The JSON rendering is the type's `Serialize`.

pub mod html;
pub mod text;

/// A value in its unit, for people: `1182.7 ms`, `12.5 %`, `3.2 MiB/s`.
pub(crate) fn value(v: f64, unit: &str) -> String {
    match unit {
        "bytes/s" => format!("{:.2} MiB/s", v / (1024.0 * 1024.0)),
        "ratio" => format!("{v:.2}"),
        "flag" => (if v != 0.0 { "true" } else { "false" }).to_string(),
        "%" => format!("{v:.1} %"),
        "requests" | "sequences" | "entries" => format!("{v:.0}"),
        "" => format!("{v:.1}"),
        u => format!("{v:.1} {u}"),
    }
}

/// A recommendation's current or suggested value.
pub(crate) fn setting_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "?".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A trend row's change column.
pub(crate) fn change(r: &crate::trend::TrendRow) -> String {
    match (r.unit, r.delta, r.change_percent) {
        ("%", Some(d), _) => format!("{d:+.2} pp"),
        (_, _, Some(c)) => format!("{c:+.1}%"),
        (_, Some(d), None) => format!("{d:+.1}"),
        _ => "–".into(),
    }
}

pub(crate) fn opt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1}"))
}
