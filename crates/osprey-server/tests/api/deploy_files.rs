//! The deploy files keep up with the server: every metric that
//! `deploy/grafana/osprey.json` and `deploy/prometheus/alerts.yml` query is
//! one osprey exports on `/metrics`, and the Prometheus rules mirror
//! `AlertRule::defaults` (names, raise levels, directions, holds,
//! severities). When `promtool` is installed it checks the rules file too.
//!
//! No YAML crate is at hand, so the rules file is read line by line; it is
//! kept regular for that (`- alert: NAME`, then `key: value` lines, `expr`
//! on one line or as a `|` block).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use osprey_perf::{AlertRule, Comparison};
use serde_json::{json, Value};

use crate::helpers::{repo_root, shared_app};

fn deploy_file(rel: &str) -> (PathBuf, String) {
    let path = repo_root().join("deploy").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    (path, text)
}

// ------------------------------------------------------------------ dashboard

fn dashboard() -> Value {
    let (path, text) = deploy_file("grafana/osprey.json");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every query: the panels' `targets[].expr` and the query variables'.
fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
    let mut exprs = Vec::new();
    for p in panels(dashboard) {
        let title = p["title"].as_str().unwrap_or("?");
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_else(|| panic!("panel {title:?}: a target without expr"));
            exprs.push((format!("panel {title:?}"), expr.to_string()));
        }
    }
    for v in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let q = v["query"]["query"].as_str().or_else(|| v["query"].as_str()).unwrap_or_default();
            exprs.push((format!("variable {}", v["name"]), q.to_string()));
        }
    }
    exprs
}

// ------------------------------------------------------------------ rules file

/// One `- alert:` entry: its `key: value` lines, flattened (`labels` and
/// `annotations` children included), blocks joined with spaces.
type RuleEntry = BTreeMap<String, String>;

/// `[indent] [- ]key: value` → (indent, key, value).
fn key_value(line: &str) -> Option<(usize, &str, &str)> {
    let indent = line.len() - line.trim_start().len();
    let rest = line.trim_start();
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let (key, value) = rest.split_once(':')?;
    let is_key = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    is_key.then_some((indent, key, value.trim()))
}

/// A scalar without its YAML quotes.
fn unquote(v: &str) -> String {
    if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        v[1..v.len() - 1].replace("''", "'")
    } else if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        v[1..v.len() - 1].replace("\\\"", "\"").replace("\\\\", "\\")
    } else {
        v.to_string()
    }
}

/// The group names and the alert entries of a rules file.
fn parse_rules(text: &str) -> (Vec<String>, Vec<RuleEntry>) {
    let lines: Vec<&str> = text.lines().collect();
    let (mut groups, mut rules) = (Vec::new(), Vec::<RuleEntry>::new());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((indent, key, value)) = key_value(line) else { continue };
        let value = if value.starts_with('|') || value.starts_with('>') {
            // A block scalar: the lines indented deeper than its key.
            let mut block = Vec::new();
            while i < lines.len() {
                let l = lines[i];
                if !l.trim().is_empty() && l.len() - l.trim_start().len() <= indent {
                    break;
                }
                block.push(l.trim());
                i += 1;
            }
            block.into_iter().filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
        } else {
            unquote(value)
        };
        match key {
            "alert" => rules.push(BTreeMap::from([("alert".to_string(), value)])),
            "name" if line.trim_start().starts_with("- ") => groups.push(value),
            _ => {
                if let Some(rule) = rules.last_mut() {
                    rule.insert(key.to_string(), value);
                }
            }
        }
    }
    (groups, rules)
}

fn rules_file() -> (Vec<String>, Vec<RuleEntry>) {
    parse_rules(&deploy_file("prometheus/alerts.yml").1)
}

/// `<body> <op> <number>` at the end of an expression → (op, number).
fn trailing_comparison(expr: &str) -> Option<(&'static str, f64)> {
    let expr = expr.trim_end();
    let body = expr.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let number: f64 = expr[body.len()..].parse().ok()?;
    let body = body.trim_end();
    let op = [">=", "<=", "==", "!=", ">", "<"].into_iter().find(|op| body.ends_with(op))?;
    (!body[..body.len() - op.len()].trim().is_empty()).then_some((op, number))
}

/// A Prometheus duration (`30s`, `1m`, `1h30m`, `500ms`).
fn parse_duration(s: &str) -> Option<Duration> {
    let (mut total_ms, mut num, mut any) = (0u64, String::new(), false);
    let mut chars = s.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = std::mem::take(&mut num).parse().ok()?;
        let unit_ms = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return None,
        };
        total_ms += n * unit_ms;
        any = true;
    }
    (num.is_empty() && any).then(|| Duration::from_millis(total_ms))
}

// ------------------------------------------------------------------ metric names

/// The osprey and process metric names a PromQL expression reads, with
/// histogram suffixes (`_bucket`, `_sum`, `_count`) mapped to the base name.
/// String literals, `$variables` and function names are skipped.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' || c == '$' {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let ident: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let is_call = chars.get(next) == Some(&'(');
            if !is_call && (ident.starts_with("osprey_") || ident.starts_with("process_")) {
                names.insert(base_name(&ident).to_string());
            }
        } else if c.is_ascii_digit() {
            // Numbers and durations (`1m`, `0.95`, `1e3`): not names.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    names
}

fn base_name(name: &str) -> &str {
    ["_bucket", "_sum", "_count"].into_iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name)
}

/// Names `/metrics` shows: described (`# HELP`, `# TYPE`) or with samples,
/// histogram samples also under their base name.
fn exposed_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let name = if let Some(rest) = line.strip_prefix("# HELP ").or_else(|| line.strip_prefix("# TYPE ")) {
            rest.split_whitespace().next()
        } else if line.starts_with('#') {
            None
        } else {
            line.split(['{', ' ']).next()
        };
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            names.insert(name.to_string());
            names.insert(base_name(name).to_string());
        }
    }
    names
}

/// The metric-name constants of the crates that publish osprey's series,
/// for names with no series until something happens (slow queries,
/// fallbacks, Redis errors, a GPU).
fn documented_constants() -> String {
    let crates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    ["osprey-types", "osprey-cache", "osprey-store", "osprey-monitor"]
        .iter()
        .map(|c| {
            let path = crates.join(c).join("src/metrics.rs");
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every metric name the dashboard and the rules read, with where it is used.
fn used_metric_names() -> BTreeMap<String, BTreeSet<String>> {
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut sources = dashboard_exprs(&dashboard());
    for rule in rules_file().1 {
        let expr = rule.get("expr").cloned().unwrap_or_default();
        sources.push((format!("rule {}", rule["alert"]), expr));
    }
    for (source, expr) in sources {
        for name in metric_names(&expr) {
            used.entry(name).or_default().insert(source.clone());
        }
    }
    used
}

// ------------------------------------------------------------------ tests

#[test]
fn the_name_extraction_reads_promql() {
    let expr = r#"100 * sum by (le) (rate(osprey_x_seconds_bucket{instance=~"$instance", reason!="process_nope"}[$__rate_interval]))
        / osprey_process_cpu_usage_percent + process_open_fds - histogram_quantile(0.95, osprey_y_count[1m])"#;
    let got: Vec<String> = metric_names(expr).into_iter().collect();
    assert_eq!(got, ["osprey_process_cpu_usage_percent", "osprey_x_seconds", "osprey_y", "process_open_fds"]);
    assert_eq!(trailing_comparison("rate(a[1m]) * 100 > 5"), Some((">", 5.0)));
    assert_eq!(trailing_comparison("x\n  < 70.5"), Some(("<", 70.5)));
    assert_eq!(trailing_comparison("rate(a[1m])"), None);
    assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("5x"), None);
    let yaml = "groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: |\n          x\n            > 1\n        for: 1m\n        labels:\n          severity: warning\n      - alert: b\n        expr: 'y < 2'\n";
    let (groups, rules) = parse_rules(yaml);
    assert_eq!(groups, ["g"]);
    assert_eq!(rules.len(), 2);
    assert_eq!((rules[0]["expr"].as_str(), rules[0]["for"].as_str()), ("x > 1", "1m"));
    assert_eq!((rules[0]["severity"].as_str(), rules[1]["expr"].as_str()), ("warning", "y < 2"));
}

#[test]
fn the_dashboard_is_well_formed() {
    let d = dashboard();
    assert_eq!(d["schemaVersion"].as_u64().map(|v| v >= 36), Some(true), "schemaVersion {}", d["schemaVersion"]);
    assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()), "the dashboard needs a uid");
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| vars.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no ${name} variable"));
    let ds = var("datasource");
    assert_eq!((ds["type"].as_str(), ds["query"].as_str()), (Some("datasource"), Some("prometheus")));
    let instance = var("instance");
    let q = instance["query"]["query"].as_str().or_else(|| instance["query"].as_str());
    assert_eq!(q, Some("label_values(osprey_http_requests_total, instance)"));

    let mut ids = BTreeSet::new();
    let mut queries = 0;
    for p in panels(&d) {
        let title = p["title"].as_str().unwrap_or_default();
        assert!(!title.trim().is_empty(), "a panel without a title: {p}");
        assert!(ids.insert(p["id"].as_u64().expect("panel id")), "panel id {} repeats", p["id"]);
        if p["type"] == "row" {
            continue;
        }
        let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or_default();
        assert!(!unit.is_empty(), "panel {title:?} has no unit");
        assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {title:?} should use the datasource variable");
        let targets = p["targets"].as_array().filter(|t| !t.is_empty());
        let targets = targets.unwrap_or_else(|| panic!("panel {title:?} has no query"));
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_default();
            assert!(!expr.trim().is_empty(), "panel {title:?}: empty expr");
            assert!(!metric_names(expr).is_empty(), "panel {title:?} reads no osprey metric: {expr}");
            assert!(expr.contains("$instance"), "panel {title:?} ignores the instance variable: {expr}");
            queries += 1;
        }
    }
    assert!(queries > 0);
}

#[test]
fn the_alert_rules_mirror_the_built_in_defaults() {
    let (groups, rules) = rules_file();
    assert_eq!(groups, ["osprey"], "one group named osprey");
    let defaults = AlertRule::defaults();
    let want: BTreeSet<&str> = defaults.iter().map(|r| r.name.as_str()).collect();
    let got: BTreeSet<&str> = rules.iter().map(|r| r["alert"].as_str()).collect();
    assert_eq!(got, want, "alerts.yml and AlertRule::defaults name different rules");
    assert_eq!(rules.len(), defaults.len(), "a rule appears twice in alerts.yml");

    for rule in &defaults {
        let entry = rules.iter().find(|r| r["alert"] == rule.name).expect("listed above");
        let name = &rule.name;
        let expr = entry.get("expr").unwrap_or_else(|| panic!("{name}: no expr"));
        let (op, level) = trailing_comparison(expr)
            .unwrap_or_else(|| panic!("{name}: expr must end in `<comparison> <number>`: {expr}"));
        assert!(
            (level - rule.raise).abs() < 1e-9,
            "{name}: threshold {level}, the built-in rule raises at {}",
            rule.raise
        );
        let want_op = match rule.comparison {
            Comparison::Above => ">",
            Comparison::Below => "<",
        };
        assert_eq!(op, want_op, "{name}: the built-in rule compares {:?}", rule.comparison);
        assert!(!metric_names(expr).is_empty(), "{name}: expr reads no osprey metric");

        let hold = entry.get("for").and_then(|f| parse_duration(f));
        assert_eq!(hold, Some(rule.hold), "{name}: `for:` must be the hold");
        let severity = serde_json::to_value(rule.severity).expect("severity");
        assert_eq!(entry.get("severity").map(String::as_str), severity.as_str(), "{name}: severity label");
        for key in ["summary", "description"] {
            assert!(entry.get(key).is_some_and(|v| !v.trim().is_empty()), "{name}: no {key} annotation");
        }
        assert!(entry["description"].contains("$value"), "{name}: the description should show {{{{ $value }}}}");
    }
}

#[test]
fn promtool_accepts_the_rules() {
    let (path, _) = deploy_file("prometheus/alerts.yml");
    let out = match std::process::Command::new("promtool").arg("check").arg("rules").arg(&path).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED: promtool is not on PATH, so `promtool check rules` did not run");
            return;
        }
        Err(e) => panic!("run promtool: {e}"),
    };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check rules {} failed:\n{text}", path.display());
}

#[tokio::test]
async fn every_metric_the_deploy_files_read_is_exported() {
    let used = used_metric_names();
    assert!(used.len() > 20, "suspiciously few metric names: {:?}", used.keys());
    let Some(app) = shared_app() else { return };

    // Traffic through every instrumented path: batching, analysis, the
    // emotion fallback, the caches, the store writer.
    let calls = [
        ("/embed", json!({ "inputs": ["the deploy files read these series", "a second sentence"] })),
        ("/v1/sentiment", json!({ "inputs": ["The dashboard is GREAT!!"] })),
        ("/v1/emotion", json!({ "inputs": ["I am so fed up with missing panels"] })),
        (
            "/v1/analyze",
            json!({ "posts": [{ "id": "deploy-files-1", "title": "Panels", "body": "Every query names a real series." }],
                    "tasks": ["sentiment", "emotion"] }),
        ),
    ];
    for round in 0..2 {
        for (path, body) in &calls {
            let r = app.post_json(path, body.clone()).await;
            let status = r.status();
            assert!(
                status.is_success(),
                "POST {path} (round {round}): {status} {}",
                r.text().await.unwrap_or_default()
            );
        }
    }

    // The monitors' first samples and a few rounds of the observe loop.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(15);
    let text = loop {
        let text = app.metrics().await;
        let sampled = ["osprey_system_cpu_usage_percent", "osprey_alerts_firing", "osprey_cache_requests_total"]
            .iter()
            .all(|m| text.contains(&format!("\n{m}")));
        if sampled && started.elapsed() >= Duration::from_millis(2500) {
            break text;
        }
        assert!(Instant::now() < deadline, "the monitors published nothing within 15 s:\n{text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    let exposed = exposed_names(&text);
    let constants = documented_constants();
    let (mut missing, mut described_only) = (Vec::new(), Vec::new());
    for (name, sources) in &used {
        if exposed.contains(name) {
            continue;
        }
        if constants.contains(&format!("\"{name}\"")) {
            described_only.push(name.as_str());
        } else {
            missing.push(format!("{name} (used by {})", sources.iter().cloned().collect::<Vec<_>>().join(", ")));
        }
    }
    if !described_only.is_empty() {
        eprintln!("no series yet, accepted as documented metric constants: {}", described_only.join(", "));
    }
    assert!(missing.is_empty(), "the deploy files read metrics osprey does not export:\n  {}", missing.join("\n  "));
}
