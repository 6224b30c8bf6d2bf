//! Minimal inline-SVG charts for the HTML report: line charts (optionally on
//! a "nines" percentile axis) and bar charts. No scripts, no external
//! resources, no XML namespace URL (inline SVG in HTML does not need one).

use std::fmt::Write as _;

const W: f64 = 760.0;
const H: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 40.0;

pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// How the x axis is labelled.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    /// Plain numbers (seconds).
    Linear,
    /// `x` is `-log10(1 - p)`: 0 → 0 %, 1 → 90 %, 2 → 99 %, …
    Nines,
}

/// Round tick spacing covering `max` in about five steps.
fn tick_step(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    mag * if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    }
}

fn label(v: f64) -> String {
    if v == v.round() && v.abs() < 1e9 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

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

struct Frame {
    x_max: f64,
    x_min: f64,
    y_max: f64,
}

impl Frame {
    fn x(&self, v: f64) -> f64 {
        let span = (self.x_max - self.x_min).max(1e-9);
        LEFT + (v - self.x_min) / span * (W - LEFT - RIGHT)
    }
    fn y(&self, v: f64) -> f64 {
        H - BOTTOM - v / self.y_max.max(1e-9) * (H - TOP - BOTTOM)
    }
}

fn open(out: &mut String, title: &str, y_label: &str, x_label: &str) {
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><title>{t}</title><text x="{LEFT}" y="18" class="ct">{t}</text><text x="12" y="{ym}" class="al" transform="rotate(-90 12 {ym})">{yl}</text><text x="{xm}" y="{xb}" class="al">{xl}</text>"#,
        t = escape(title),
        ym = (TOP + H - BOTTOM) / 2.0,
        yl = escape(y_label),
        xm = (LEFT + W - RIGHT) / 2.0,
        xb = H - 6.0,
        xl = escape(x_label),
    );
}

fn axes(out: &mut String, f: &Frame, x_axis: XAxis) {
    let step = tick_step(f.y_max);
    let mut v = 0.0;
    while v <= f.y_max * 1.0001 {
        let y = f.y(v);
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{x2}" y2="{y:.1}" class="grid"/><text x="{tx}" y="{ty:.1}" class="tick" text-anchor="end">{l}</text>"#,
            x2 = W - RIGHT,
            tx = LEFT - 6.0,
            ty = y + 4.0,
            l = label(v)
        );
        v += step;
    }
    let ticks: Vec<(f64, String)> = match x_axis {
        XAxis::Linear => {
            let step = tick_step(f.x_max - f.x_min);
            let mut t = (f.x_min / step).ceil() * step;
            let mut out = Vec::new();
            while t <= f.x_max * 1.0001 {
                out.push((t, label(t)));
                t += step;
            }
            out
        }
        XAxis::Nines => ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
            .iter()
            .enumerate()
            .filter(|(i, _)| (*i as f64) <= f.x_max + 1e-9)
            .map(|(i, l)| (i as f64, (*l).to_string()))
            .collect(),
    };
    for (t, l) in ticks {
        let x = f.x(t);
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{yb}" class="grid"/><text x="{x:.1}" y="{ty}" class="tick" text-anchor="middle">{l}</text>"#,
            yb = H - BOTTOM,
            ty = H - BOTTOM + 14.0
        );
    }
    let _ = write!(
        out,
        r#"<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" class="frame"/>"#,
        w = W - LEFT - RIGHT,
        h = H - TOP - BOTTOM
    );
}

fn empty(out: &mut String) {
    let _ = write!(
        out,
        r#"<text x="{x}" y="{y}" class="tick" text-anchor="middle">no data</text></svg>"#,
        x = W / 2.0,
        y = H / 2.0
    );
}

/// A line chart of several series sharing axes.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series<'_>], x_axis: XAxis) -> String {
    let mut out = String::new();
    open(&mut out, title, y_label, x_label);
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x_min, mut x_max, mut y_max) = (f64::INFINITY, f64::NEG_INFINITY, 0f64);
    for (x, y) in pts {
        x_min = x_min.min(*x);
        x_max = x_max.max(*x);
        y_max = y_max.max(*y);
    }
    if !x_min.is_finite() {
        empty(&mut out);
        return out;
    }
    if x_axis == XAxis::Nines {
        x_min = 0.0;
    }
    if x_max <= x_min {
        x_max = x_min + 1.0;
    }
    let f = Frame { x_min, x_max, y_max: if y_max > 0.0 { y_max * 1.08 } else { 1.0 } };
    axes(&mut out, &f, x_axis);
    for (i, s) in series.iter().enumerate() {
        let mut path = String::new();
        for (x, y) in &s.points {
            let _ = write!(path, "{:.1},{:.1} ", f.x(*x), f.y(*y));
        }
        let _ = write!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.6"/>"#,
            path.trim_end(),
            s.color
        );
        let lx = LEFT + 10.0 + i as f64 * 110.0;
        let _ = write!(
            out,
            r#"<rect x="{lx}" y="{ly}" width="10" height="10" fill="{c}"/><text x="{tx}" y="{ty}" class="tick">{n}</text>"#,
            ly = TOP + 6.0,
            c = s.color,
            tx = lx + 14.0,
            ty = TOP + 15.0,
            n = escape(s.name)
        );
    }
    out.push_str("</svg>");
    out
}

/// A bar chart: one bar per `(x, y)`, `x` spaced evenly (seconds).
pub fn bar_chart(title: &str, x_label: &str, y_label: &str, bars: &[(f64, f64)], color: &str) -> String {
    let mut out = String::new();
    open(&mut out, title, y_label, x_label);
    if bars.is_empty() {
        empty(&mut out);
        return out;
    }
    let x_min = bars.iter().map(|b| b.0).fold(f64::INFINITY, f64::min);
    let x_max = bars.iter().map(|b| b.0).fold(f64::NEG_INFINITY, f64::max) + 1.0;
    let y_max = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let f = Frame { x_min, x_max, y_max: if y_max > 0.0 { y_max * 1.08 } else { 1.0 } };
    axes(&mut out, &f, XAxis::Linear);
    let width = ((W - LEFT - RIGHT) / (x_max - x_min) * 0.8).max(0.5);
    for (x, y) in bars {
        if *y <= 0.0 {
            continue;
        }
        let top = f.y(*y);
        let _ = write!(
            out,
            r#"<rect x="{:.1}" y="{top:.1}" width="{width:.1}" height="{:.1}" fill="{color}"><title>{}: {}</title></rect>"#,
            f.x(*x),
            (H - BOTTOM - top).max(0.0),
            label(*x),
            label(*y)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(100.0), 20.0);
        assert_eq!(tick_step(7.0), 2.0);
        assert_eq!(tick_step(0.3), 0.1);
    }

    #[test]
    fn charts_are_well_formed() {
        let s = Series { name: "p99 <x>", color: "#c33", points: vec![(0.0, 1.0), (1.0, 3.0), (2.0, 2.0)] };
        let svg = line_chart("Latency", "s", "ms", &[s], XAxis::Linear);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("polyline") && svg.contains("p99 &lt;x&gt;"));
        assert!(!svg.contains("http"));
        let bars = bar_chart("RPS", "s", "req/s", &[(0.0, 5.0), (1.0, 0.0)], "#36c");
        assert_eq!(bars.matches("<rect").count(), 2, "frame and one bar");
        assert!(bar_chart("E", "s", "n", &[], "#000").contains("no data"));
    }
}
