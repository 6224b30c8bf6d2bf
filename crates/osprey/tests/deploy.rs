//! The deployment files against the binary they deploy: `deploy/Dockerfile`,
//! `.dockerignore`, the Helm chart in `deploy/helm/osprey` and the tuning
//! profiles in `deploy/profiles`.
//!
//! The chart is rendered here without Helm, by [`tpl`]: a small renderer of
//! the part of Helm's template language the chart uses (`{{ .Values.a.b }}`,
//! `if`/`else if`/`else`/`end`, `define`/`include`, `toYaml`, `nindent`,
//! `quote`, `default`, `printf`, `sha256sum`, ...). Anything else is an
//! error, never passed through, so the chart has to stay inside that subset.
//! The rendered YAML is parsed, and checked against what `osprey --help`,
//! `osprey serve --help`, `osprey worker --help` and `osprey config print`
//! say. When a `helm` binary is at hand (`$HELM`, `vendor/helm/helm` from
//! `scripts/install-helm`, or `PATH`), `helm lint --strict` runs and `helm
//! template` must give the same objects as the renderer here; without one
//! that part is skipped, except under `CI=true` where it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{json, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chart_dir() -> PathBuf {
    repo().join("deploy/helm/osprey")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// The binary.

/// `osprey ARGS` in an empty directory (no ./osprey.toml), with none of the
/// environment variables that would change the settings.
fn osprey(args: &[&str], env: &[(&str, &str)]) -> Output {
    let cwd = tempfile::tempdir().expect("tempdir");
    let mut c = Command::new(env!("CARGO_BIN_EXE_osprey"));
    c.current_dir(cwd.path()).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("OSPREY_") || k == "DATABASE_URL" || k == "REDIS_URL" {
            c.env_remove(&k);
        }
    }
    c.envs(env.iter().copied());
    c.output().expect("run osprey")
}

fn help(subcommand: Option<&str>) -> String {
    let args: Vec<&str> = subcommand.into_iter().chain(["--help"]).collect();
    let out = osprey(&args, &[]);
    assert!(out.status.success(), "osprey {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8 help")
}

/// The subcommands `osprey --help` lists.
fn subcommands() -> BTreeSet<String> {
    let text = help(None);
    let start = text.find("Commands:").expect("a Commands: section");
    text[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Every `--long-flag` in a help text.
fn long_flags(help: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for (i, _) in help.match_indices("--") {
        let name: String = help[i + 2..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        if !name.is_empty() {
            flags.insert(format!("--{name}"));
        }
    }
    flags
}

/// `osprey --config FILE config print`, parsed.
fn config_print(toml_text: &str, env: &[(&str, &str)]) -> Result<toml::Value, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("osprey.toml");
    std::fs::write(&file, toml_text).expect("write settings");
    let out = osprey(&["--config", file.to_str().expect("utf8 path"), "config", "print"], env);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    toml::from_str(&String::from_utf8_lossy(&out.stdout)).map_err(|e| format!("config print is not TOML: {e}"))
}

fn duration(v: &toml::Value, what: &str) -> Duration {
    let text = v.as_str().unwrap_or_else(|| panic!("{what} is not a duration string: {v}"));
    humantime_serde::re::humantime::parse_duration(text).unwrap_or_else(|e| panic!("{what} {text:?}: {e}"))
}

// ---------------------------------------------------------------------------
// The Dockerfile.

struct Instruction {
    stage: usize,
    op: String,
    args: String,
}

/// Instructions with continuation lines joined and comments dropped; `stage`
/// counts FROMs from 1.
fn dockerfile(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut stage = 0;
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let full = std::mem::take(&mut pending);
        let (op, args) = full.split_once(char::is_whitespace).unwrap_or((full.as_str(), ""));
        let op = op.to_ascii_uppercase();
        if op == "FROM" {
            stage += 1;
        }
        out.push(Instruction { stage, op, args: args.trim().to_string() });
    }
    assert!(pending.is_empty(), "the Dockerfile ends inside a continuation line");
    out
}

fn json_array(text: &str, what: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what} is not an exec-form JSON array ({e}): {text}"))
}

/// The port of `--bind HOST:PORT` in an argument list.
fn bind_port(args: &[String], what: &str) -> u16 {
    let bind = args
        .iter()
        .position(|a| a == "--bind")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| args.iter().find_map(|a| a.strip_prefix("--bind=").map(str::to_string)))
        .unwrap_or_else(|| panic!("{what} passes no --bind: {args:?}"));
    let addr: std::net::SocketAddr = bind.parse().unwrap_or_else(|e| panic!("{what}: --bind {bind}: {e}"));
    addr.port()
}

fn assert_flags_exist(args: &[String], help: &str, what: &str) {
    let known = long_flags(help);
    for arg in args.iter().filter(|a| a.starts_with("--")) {
        let flag = arg.split('=').next().unwrap_or(arg);
        assert!(known.contains(flag), "{what} passes {flag}, which the binary does not accept; it knows {known:?}");
    }
}

/// Whether `.dockerignore` keeps `path` (relative to the context) out.
fn docker_ignored(patterns: &[String], path: &str) -> bool {
    patterns.iter().any(|p| {
        let p = p.trim_end_matches('/');
        if let Some(name) = p.strip_prefix("**/") {
            path.split('/').any(|c| c == name)
        } else if let Some(ext) = p.strip_prefix('*') {
            path.ends_with(ext)
        } else {
            path == p || path.starts_with(&format!("{p}/"))
        }
    })
}

const RUNTIME_UID: u64 = 10001;

#[test]
fn dockerfile_builds_a_non_root_image_that_serves_on_its_exposed_port() {
    let text = read(&repo().join("deploy/Dockerfile"));
    let all = dockerfile(&text);
    let last = all.iter().map(|i| i.stage).max().expect("a FROM");
    let runtime: Vec<&Instruction> = all.iter().filter(|i| i.stage == last).collect();
    let one = |op: &str| -> &Instruction {
        let found: Vec<&&Instruction> = runtime.iter().filter(|i| i.op == op).collect();
        assert_eq!(found.len(), 1, "the runtime stage needs exactly one {op}");
        found[0]
    };

    assert!(one("FROM").args.starts_with("debian:bookworm-slim"), "runtime base: {}", one("FROM").args);
    let builder = all
        .iter()
        .find(|i| i.op == "FROM" && i.args.starts_with("rust:") && i.args.contains("bookworm"))
        .expect("a rust:*-bookworm builder stage");
    assert!(
        all.iter().any(|i| i.stage == builder.stage
            && i.op == "RUN"
            && i.args.contains("cargo build --release --locked -p osprey")),
        "the builder runs cargo build --release --locked -p osprey"
    );

    // MODEL_MODE=mounted|baked, mounted by default, picks a stage by name.
    assert!(all.iter().any(|i| i.op == "ARG" && i.args == "MODEL_MODE=mounted"), "ARG MODEL_MODE=mounted");
    for mode in ["mounted", "baked"] {
        assert!(
            all.iter().any(|i| i.op == "FROM" && i.args.ends_with(&format!(" AS models-{mode}"))),
            "a models-{mode} stage"
        );
    }
    assert!(all.iter().any(|i| i.op == "FROM" && i.args.starts_with("models-${MODEL_MODE}")));
    assert!(
        all.iter().any(|i| i.op == "RUN" && i.args.contains("scripts/fetch_models.py")),
        "the models come from scripts/fetch_models.py"
    );

    // Non-root, numeric (runAsNonRoot can only verify a numeric USER), the
    // same uid the chart runs as.
    let user = &one("USER").args;
    let uid: u64 =
        user.split(':').next().and_then(|u| u.parse().ok()).unwrap_or_else(|| panic!("USER {user} is not numeric"));
    assert_ne!(uid, 0, "USER must not be root");
    assert_eq!(uid, RUNTIME_UID);

    assert_eq!(json_array(&one("ENTRYPOINT").args, "ENTRYPOINT"), ["osprey"]);
    let cmd = json_array(&one("CMD").args, "CMD");
    assert_eq!(cmd.first().map(String::as_str), Some("serve"), "CMD runs the server: {cmd:?}");
    assert_flags_exist(&cmd, &help(Some("serve")), "the Dockerfile's CMD");
    let port = bind_port(&cmd, "the Dockerfile's CMD");
    let exposed: Vec<u16> = one("EXPOSE")
        .args
        .split_whitespace()
        .map(|p| p.trim_end_matches("/tcp").parse().expect("EXPOSE port"))
        .collect();
    assert_eq!(exposed, [port], "EXPOSE matches --bind in CMD");
    assert!(cmd.iter().any(|a| a == "--data-dir"), "CMD sets --data-dir");

    let check = &one("HEALTHCHECK").args;
    let probe = check.split_once("CMD").map(|(_, c)| c.trim()).expect("HEALTHCHECK ... CMD");
    let probe = if probe.starts_with('[') { json_array(probe, "HEALTHCHECK CMD").join(" ") } else { probe.to_string() };
    assert!(probe.contains(&format!(":{port}/health")), "HEALTHCHECK must hit /health on port {port}: {probe}");
    if probe.starts_with("curl") {
        assert!(
            runtime.iter().any(|i| i.op == "RUN" && i.args.contains("apt-get install") && i.args.contains(" curl")),
            "the HEALTHCHECK uses curl, so the runtime stage installs it"
        );
    }

    // Where the engine looks for ONNX Runtime, the library is copied.
    let ort = runtime
        .iter()
        .filter(|i| i.op == "ENV")
        .flat_map(|i| i.args.split_whitespace())
        .find_map(|kv| kv.strip_prefix("ORT_DYLIB_PATH="))
        .expect("ENV ORT_DYLIB_PATH");
    let ort_dir = Path::new(ort).parent().expect("a directory").to_str().expect("utf8");
    assert!(
        runtime.iter().any(|i| i.op == "COPY"
            && i.args.contains("onnxruntime")
            && i.args.trim_end_matches('/').ends_with(ort_dir)),
        "ORT_DYLIB_PATH={ort}, but no COPY puts ONNX Runtime in {ort_dir}"
    );
    // The defaults (model.model = models/..., analysis.vader_dir = models/vader)
    // resolve from the working directory.
    assert_eq!(one("WORKDIR").args, "/app");
    assert!(runtime.iter().any(|i| i.op == "RUN" && i.args.contains("ln -s /models /app/models")));

    // .dockerignore: the big local directories stay out, what the build copies stays in.
    let ignore: Vec<String> = read(&repo().join(".dockerignore"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    for dir in ["target", "models", "vendor", "bench-results", ".git"] {
        assert!(docker_ignored(&ignore, dir), ".dockerignore must exclude {dir}/");
    }
    for copy in all.iter().filter(|i| i.op == "COPY" && !i.args.starts_with("--from")) {
        let parts: Vec<&str> = copy.args.split_whitespace().filter(|p| !p.starts_with("--")).collect();
        for src in &parts[..parts.len() - 1] {
            assert!(repo().join(src).exists(), "COPY {src}: no such path in the repository");
            assert!(!docker_ignored(&ignore, src.trim_end_matches('/')), "COPY {src}, but .dockerignore excludes it");
        }
    }
}

// ---------------------------------------------------------------------------
// The chart.

/// `base` with `over` laid on top: maps merge, anything else is replaced,
/// and null deletes (as Helm does with -f).
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(k);
                } else if let Some(existing) = b.get_mut(k) {
                    merge(existing, v);
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn yaml_file(path: &Path) -> Value {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value files the chart is checked with: the defaults, then each
/// `ci/*-values.yaml` over them (the chart-testing convention).
fn value_sets() -> Vec<(String, Option<PathBuf>, Value)> {
    let defaults = yaml_file(&chart_dir().join("values.yaml"));
    let mut sets = vec![("values.yaml".to_string(), None, defaults.clone())];
    let mut ci: Vec<PathBuf> = std::fs::read_dir(chart_dir().join("ci"))
        .map(|d| d.map(|e| e.expect("dir entry").path()).collect())
        .unwrap_or_default();
    ci.sort();
    for path in ci {
        let mut values = defaults.clone();
        merge(&mut values, &yaml_file(&path));
        sets.push((path.file_name().expect("name").to_string_lossy().into_owned(), Some(path), values));
    }
    sets
}

struct Release {
    /// Rendered manifests by template file name.
    manifests: BTreeMap<String, String>,
    notes: String,
    objects: Vec<Value>,
}

const RELEASE: &str = "prod";
const NAMESPACE: &str = "content";

fn render(values: &Value) -> Release {
    let chart = yaml_file(&chart_dir().join("Chart.yaml"));
    let out = tpl::render_chart(&chart_dir().join("templates"), &chart, values, RELEASE, NAMESPACE)
        .unwrap_or_else(|e| panic!("rendering the chart: {e}"));
    let mut objects = Vec::new();
    for (file, text) in &out.manifests {
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let v: Value = serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("{file} does not render to valid YAML: {e}\n{text}"));
            if !v.is_null() {
                assert!(v["kind"].is_string() && v["metadata"]["name"].is_string(), "{file}: not an object: {v}");
                objects.push(v);
            }
        }
    }
    Release { manifests: out.manifests, notes: out.notes, objects }
}

fn object<'a>(objects: &'a [Value], kind: &str, component: Option<&str>) -> Option<&'a Value> {
    let found: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .filter(|o| component.is_none_or(|c| o["metadata"]["labels"]["app.kubernetes.io/component"] == c))
        .collect();
    assert!(found.len() <= 1, "more than one {kind} ({component:?})");
    found.first().copied()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().expect("a string").to_string()).collect()).unwrap_or_default()
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    let sel = selector.as_object().expect("matchLabels");
    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn int(v: &Value, what: &str) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("{what} is not an integer: {v}"))
}

/// An env var a container sets must be read by the binary: a flag's `[env: X]`
/// in the subcommand's help, a settings variable (`OSPREY_SECTION__KEY`, tried
/// with `config print`), or one the engine reads itself.
fn assert_env_is_read(container: &Value, help: &str, what: &str) {
    const ENGINE: [&str; 5] = ["ORT_DYLIB_PATH", "HF_HOME", "HF_HUB_CACHE", "OSPREY_OFFLINE", "HF_HUB_OFFLINE"];
    // clap wraps help text, possibly inside "[env: NAME]".
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().expect("env name");
        if help.contains(&format!("[env: {name}")) || ENGINE.contains(&name) {
            continue;
        }
        assert!(
            name.starts_with("OSPREY_") && name.contains("__"),
            "{what} sets {name}, which osprey does not read (not in its --help, not OSPREY_SECTION__KEY)"
        );
        if let Some(value) = var["value"].as_str() {
            config_print("", &[(name, value)]).unwrap_or_else(|e| panic!("{what} sets {name}={value}: {e}"));
        }
    }
}

fn probe<'a>(container: &'a Value, kind: &str) -> &'a Value {
    let p = &container[kind];
    assert!(p.is_object(), "the server has no {kind}");
    p
}

#[test]
fn chart_renders_to_objects_that_agree_with_the_binary() {
    let serve_help = help(Some("serve"));
    let commands = subcommands();
    for (name, _, values) in value_sets() {
        let release = render(&values);
        let objects = &release.objects;
        let ctx = |what: &str| format!("{name}: {what}");

        // --- The server Deployment.
        let deploy =
            object(objects, "Deployment", Some("server")).unwrap_or_else(|| panic!("{name}: no server Deployment"));
        let dname = deploy["metadata"]["name"].as_str().expect("name");
        let spec = &deploy["spec"];
        let pod = &spec["template"];
        let pod_labels = &pod["metadata"]["labels"];
        assert!(labels_match(&spec["selector"]["matchLabels"], pod_labels), "{}", ctx("selector vs pod labels"));
        assert_eq!(spec["strategy"]["type"], "RollingUpdate", "{}", ctx("strategy"));
        assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0, "{}", ctx("maxUnavailable must be 0"));
        assert!(int(&spec["strategy"]["rollingUpdate"]["maxSurge"], "maxSurge") >= 1, "{}", ctx("maxSurge"));

        let containers = pod["spec"]["containers"].as_array().expect("containers");
        assert_eq!(containers.len(), 1, "{}", ctx("one container"));
        let c = &containers[0];
        let args = strings(&c["args"]);
        assert!(c["command"].is_null(), "{}", ctx("the image's ENTRYPOINT (osprey) runs; args only"));
        assert_eq!(args.first().map(String::as_str), Some("serve"), "{}", ctx("args"));
        assert_flags_exist(&args, &serve_help, &ctx("the server Deployment"));
        let port = bind_port(&args, &ctx("the server"));
        let ports = c["ports"].as_array().expect("ports");
        let http =
            ports.iter().find(|p| p["name"] == "http").unwrap_or_else(|| panic!("{}", ctx("no port named http")));
        assert_eq!(int(&http["containerPort"], "containerPort"), i64::from(port), "{}", ctx("containerPort vs --bind"));
        let port_ok = |p: &Value| p == "http" || p.as_i64() == Some(i64::from(port));

        let (liveness, readiness, startup) =
            (probe(c, "livenessProbe"), probe(c, "readinessProbe"), probe(c, "startupProbe"));
        assert_eq!(liveness["httpGet"]["path"], "/health", "{}", ctx("liveness path"));
        assert_eq!(readiness["httpGet"]["path"], "/ready", "{}", ctx("readiness path"));
        assert!(
            startup["httpGet"]["path"] == "/ready" || startup["httpGet"]["path"] == "/health",
            "{}",
            ctx("startup path")
        );
        for p in [liveness, readiness, startup] {
            assert!(
                port_ok(&p["httpGet"]["port"]),
                "{}: probe port {} is not the server's",
                name,
                p["httpGet"]["port"]
            );
        }
        // The start-up budget covers a slow model load: at least two minutes.
        let budget = int(&startup["periodSeconds"], "period") * int(&startup["failureThreshold"], "threshold");
        assert!(budget >= 120, "{}", ctx(&format!("startup probe allows only {budget}s")));

        // --- Settings: the ConfigMap's osprey.toml, mounted where --config points.
        let config_path = args
            .iter()
            .position(|a| a == "--config")
            .and_then(|i| args.get(i + 1))
            .unwrap_or_else(|| panic!("{}", ctx("no --config")));
        let cm = object(objects, "ConfigMap", None).unwrap_or_else(|| panic!("{}", ctx("no ConfigMap")));
        let (dir, key) = config_path.rsplit_once('/').expect("an absolute path");
        let toml_text =
            cm["data"][key].as_str().unwrap_or_else(|| panic!("{}", ctx(&format!("ConfigMap has no {key}"))));
        let mount = c["volumeMounts"]
            .as_array()
            .expect("volumeMounts")
            .iter()
            .find(|m| m["mountPath"] == dir)
            .unwrap_or_else(|| panic!("{}", ctx(&format!("nothing mounted at {dir}"))));
        let volumes = pod["spec"]["volumes"].as_array().expect("volumes");
        let volume = volumes.iter().find(|v| v["name"] == mount["name"]).expect("the mount's volume");
        assert_eq!(volume["configMap"]["name"], cm["metadata"]["name"], "{}", ctx("config volume"));
        for m in c["volumeMounts"].as_array().expect("mounts") {
            assert!(
                volumes.iter().any(|v| v["name"] == m["name"]),
                "{}",
                ctx(&format!("mount {} has no volume", m["name"]))
            );
        }
        assert_eq!(
            pod["metadata"]["annotations"]["checksum/config"].as_str(),
            Some(tpl::sha256_hex(toml_text.as_bytes()).as_str()),
            "{}",
            ctx("checksum/config is the sha256 of osprey.toml")
        );
        let settings = config_print(toml_text, &[]).unwrap_or_else(|e| panic!("{}", ctx(&format!("osprey.toml: {e}"))));

        // Shutdown fits in the grace period: a preStop hook if any, then the
        // server's own drain (server.drain_delay with /ready failing, then
        // server.shutdown_timeout for in-flight requests and background
        // tasks; a binary without them just waits for requests, bounded by
        // request_timeout plus the router's 5s backstop), then the store
        // writer's flush.
        let grace = int(&pod["spec"]["terminationGracePeriodSeconds"], "grace");
        let pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
            .as_array()
            .and_then(|cmd| cmd.last())
            .and_then(|s| s.as_str()?.parse::<u64>().ok())
            .unwrap_or(0);
        let secs = |path: &str| lookup(&settings, path).map(|v| duration(v, path).as_secs());
        let drain = match (secs("server.drain_delay"), secs("server.shutdown_timeout")) {
            (Some(delay), Some(timeout)) => delay + timeout,
            _ => secs("batching.request_timeout").expect("request_timeout") + 5,
        };
        let flush = secs("store.writer.shutdown_deadline").expect("shutdown_deadline");
        assert!(
            u64::try_from(grace).expect("positive") > pre_stop + drain + flush,
            "{}",
            ctx(&format!(
                "terminationGracePeriodSeconds {grace} <= preStop {pre_stop}s + drain {drain}s + store flush {flush}s"
            ))
        );

        // Non-root, read-only root filesystem with writable /data and /tmp.
        let psc = &pod["spec"]["securityContext"];
        assert_eq!(psc["runAsNonRoot"], true, "{}", ctx("runAsNonRoot"));
        assert_eq!(psc["runAsUser"].as_u64(), Some(RUNTIME_UID), "{}", ctx("runAsUser is the image's uid"));
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true, "{}", ctx("readOnlyRootFilesystem"));
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false, "{}", ctx("allowPrivilegeEscalation"));
        let data_dir = args.iter().position(|a| a == "--data-dir").and_then(|i| args.get(i + 1)).expect("--data-dir");
        for path in [data_dir.as_str(), "/tmp"] {
            assert!(
                c["volumeMounts"].as_array().expect("mounts").iter().any(|m| m["mountPath"] == path),
                "{}",
                ctx(&format!("{path} must be a volume on a read-only root"))
            );
        }
        assert_env_is_read(c, &serve_help, &ctx("the server"));
        let anti = &pod["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
        if let Some(terms) = anti.as_array() {
            assert!(terms.iter().any(|t| t["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
                && labels_match(&t["podAffinityTerm"]["labelSelector"]["matchLabels"], pod_labels)));
        } else {
            assert!(
                values["server"]["affinity"].as_object().is_some_and(|a| !a.is_empty()),
                "{}",
                ctx("no anti-affinity")
            );
        }

        // --- Secret: every secretKeyRef names the chart's Secret (or the existing one).
        let secret = object(objects, "Secret", None);
        let secret_name = values["secrets"]["existingSecret"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .or_else(|| secret.map(|s| s["metadata"]["name"].as_str().expect("name").to_string()));
        for var in c["env"].as_array().into_iter().flatten() {
            let r = &var["valueFrom"]["secretKeyRef"];
            if r.is_object() {
                if let Some(n) = &secret_name {
                    assert_eq!(r["name"], n.as_str(), "{}", ctx("secretKeyRef name"));
                }
                if let Some(s) = secret {
                    let present = s["stringData"].get(r["key"].as_str().expect("key")).is_some();
                    assert!(
                        present || r["optional"] == true,
                        "{}",
                        ctx(&format!("{} is neither in the Secret nor optional", r["key"]))
                    );
                }
            }
        }
        if let Some(s) = secret {
            // Whatever the Secret holds must be usable settings.
            let data = &s["stringData"];
            let mut env = Vec::new();
            for (key, var) in [
                ("admin-token", "OSPREY_ADMIN_TOKEN"),
                ("api-keys", "OSPREY_API_KEYS"),
                ("database-url", "DATABASE_URL"),
                ("redis-url", "REDIS_URL"),
            ] {
                if let Some(v) = data[key].as_str() {
                    env.push((var, v));
                }
            }
            let dir = tempfile::tempdir().expect("tempdir");
            let file = dir.path().join("osprey.toml");
            std::fs::write(&file, toml_text).expect("write");
            let out = osprey(&["--config", file.to_str().expect("utf8"), "config", "print"], &env);
            assert!(
                out.status.success(),
                "{}",
                ctx(&format!("the Secret's values: {}", String::from_utf8_lossy(&out.stderr)))
            );
        }

        // --- Service.
        let svc = object(objects, "Service", None).unwrap_or_else(|| panic!("{}", ctx("no Service")));
        assert!(labels_match(&svc["spec"]["selector"], pod_labels), "{}", ctx("Service selects the server pods"));
        for p in svc["spec"]["ports"].as_array().expect("service ports") {
            assert!(port_ok(&p["targetPort"]), "{}", ctx(&format!("Service targetPort {}", p["targetPort"])));
        }

        // --- HPA: on the server Deployment, CPU and (optionally) request rate.
        if let Some(hpa) = object(objects, "HorizontalPodAutoscaler", None) {
            assert_eq!(hpa["apiVersion"], "autoscaling/v2", "{}", ctx("HPA API"));
            let target = &hpa["spec"]["scaleTargetRef"];
            assert_eq!(
                (target["apiVersion"].as_str(), target["kind"].as_str(), target["name"].as_str()),
                (Some("apps/v1"), Some("Deployment"), Some(dname)),
                "{}",
                ctx("HPA target")
            );
            assert!(spec["replicas"].is_null(), "{}", ctx("with an HPA the Deployment must not set replicas"));
            let metrics = hpa["spec"]["metrics"].as_array().expect("metrics");
            assert!(
                metrics.iter().any(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu"),
                "{}",
                ctx("CPU metric")
            );
            let pods = metrics.iter().find(|m| m["type"] == "Pods");
            assert_eq!(
                pods.is_some(),
                values["autoscaling"]["requestRate"]["enabled"] == true,
                "{}",
                ctx("request-rate metric")
            );
            if let Some(m) = pods {
                assert_eq!(m["pods"]["metric"]["name"], "osprey_http_requests_per_second", "{}", ctx("metric name"));
                assert!(
                    m["pods"]["target"]["averageValue"].is_string(),
                    "{}",
                    ctx("averageValue is a quantity string")
                );
            }
            assert!(int(&hpa["spec"]["minReplicas"], "min") <= int(&hpa["spec"]["maxReplicas"], "max"));
        } else {
            assert!(spec["replicas"].is_i64(), "{}", ctx("without an HPA the Deployment sets replicas"));
        }

        // --- PDB on the server pods.
        if let Some(pdb) = object(objects, "PodDisruptionBudget", None) {
            assert!(
                labels_match(&pdb["spec"]["selector"]["matchLabels"], pod_labels),
                "{}",
                ctx("PDB selects the server pods")
            );
            let s = &pdb["spec"];
            assert!(
                s["minAvailable"].is_null() != s["maxUnavailable"].is_null(),
                "{}",
                ctx("PDB: one of minAvailable, maxUnavailable")
            );
        }

        // --- ServiceMonitor on the Service's port.
        if let Some(sm) = object(objects, "ServiceMonitor", None) {
            assert!(
                labels_match(&sm["spec"]["selector"]["matchLabels"], &svc["metadata"]["labels"]),
                "{}",
                ctx("ServiceMonitor selects the Service")
            );
            for e in sm["spec"]["endpoints"].as_array().expect("endpoints") {
                assert!(svc["spec"]["ports"].as_array().expect("ports").iter().any(|p| p["name"] == e["port"]));
                assert_eq!(e["path"], "/metrics");
            }
        }

        // --- The worker.
        if let Some(worker) = object(objects, "Deployment", Some("worker")) {
            let wpod = &worker["spec"]["template"];
            let wlabels = &wpod["metadata"]["labels"];
            assert!(labels_match(&worker["spec"]["selector"]["matchLabels"], wlabels), "{}", ctx("worker selector"));
            assert!(
                !labels_match(&spec["selector"]["matchLabels"], wlabels),
                "{}",
                ctx("the server selector must not take worker pods")
            );
            assert!(
                !labels_match(&svc["spec"]["selector"], wlabels),
                "{}",
                ctx("the Service must not send traffic to workers")
            );
            for o in objects.iter().filter(|o| o["kind"] == "PodDisruptionBudget") {
                assert!(
                    !labels_match(&o["spec"]["selector"]["matchLabels"], wlabels),
                    "{}",
                    ctx("the server PDB must not count workers")
                );
            }
            let wc = &wpod["spec"]["containers"][0];
            let wargs = strings(&wc["args"]);
            assert_eq!(wargs.first().map(String::as_str), Some("worker"), "{}", ctx("worker args"));
            // The worker's flags and variables are checked against `osprey
            // worker --help` once the binary has that subcommand.
            if commands.contains("worker") {
                let worker_help = help(Some("worker"));
                assert_flags_exist(&wargs, &worker_help, &ctx("the worker Deployment"));
                assert_env_is_read(wc, &worker_help, &ctx("the worker"));
            } else {
                eprintln!(
                    "SKIPPED ({name}): the worker Deployment runs `osprey worker`, which this binary does not \
                     have yet (it has {commands:?}); its flags and variables are unchecked"
                );
            }
            assert!(wc["ports"].is_null() && wc["livenessProbe"].is_null(), "{}", ctx("the worker serves no port"));
            assert_eq!(wc["securityContext"]["readOnlyRootFilesystem"], true);
            assert_eq!(
                wpod["metadata"]["annotations"]["checksum/config"],
                pod["metadata"]["annotations"]["checksum/config"]
            );
        } else {
            assert_ne!(values["worker"]["enabled"], true, "{}", ctx("worker.enabled but no worker Deployment"));
        }

        // Every object carries the chart's labels.
        for o in objects {
            assert_eq!(o["metadata"]["labels"]["app.kubernetes.io/instance"], RELEASE, "{}: {}", name, o["kind"]);
        }
        assert!(release.notes.contains(&format!("service/{dname}")), "{}", ctx("NOTES name the Service"));
        assert!(!release.manifests.is_empty());
    }
}

#[test]
fn chart_version_follows_the_workspace() {
    let chart = yaml_file(&chart_dir().join("Chart.yaml"));
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"), "Chart.yaml appVersion vs the osprey crate");
    let out = osprey(&["--version"], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

// ---------------------------------------------------------------------------
// Profiles.

/// Leaves of a TOML table as dotted paths.
fn leaves(prefix: &str, v: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                leaves(&path, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn lookup<'a>(v: &'a toml::Value, path: &str) -> Option<&'a toml::Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

#[test]
fn every_profile_is_valid_and_every_key_takes_effect() {
    let dir = repo().join("deploy/profiles");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/profiles")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    let expected = ["cpu-small", "gpu", "high-concurrency", "memory-constrained"];
    let stems: Vec<String> =
        names.iter().map(|p| p.file_stem().expect("stem").to_string_lossy().into_owned()).collect();
    for e in expected {
        assert!(stems.iter().any(|s| s == e), "deploy/profiles/{e}.toml is missing");
    }
    for path in names {
        let text = read(&path);
        let printed = config_print(&text, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let parsed: toml::Value = toml::from_str(&text).expect("TOML");
        let mut set = Vec::new();
        leaves("", &parsed, &mut set);
        assert!(!set.is_empty(), "{} sets nothing", path.display());
        for (key, want) in set {
            let got =
                lookup(&printed, &key).unwrap_or_else(|| panic!("{}: {key} is not in config print", path.display()));
            let same = got == &want
                || match (got.as_str(), want.as_str()) {
                    (Some(g), Some(w)) => {
                        let p = humantime_serde::re::humantime::parse_duration;
                        matches!((p(g), p(w)), (Ok(a), Ok(b)) if a == b)
                    }
                    _ => false,
                };
            assert!(same, "{}: {key} = {want} but the effective setting is {got}", path.display());
        }
    }
}

// ---------------------------------------------------------------------------
// Helm itself, when there is one.

fn helm_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HELM") {
        return Some(PathBuf::from(p));
    }
    let vendored = repo().join("vendor/helm/helm");
    if vendored.is_file() {
        return Some(vendored);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).map(|d| d.join("helm")).find(|p| p.is_file())
}

fn run_helm(helm: &Path, home: &Path, args: &[&str]) -> String {
    let out = Command::new(helm)
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("run helm");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "helm {}: {}{}", args.join(" "), text, String::from_utf8_lossy(&out.stderr));
    text
}

fn keyed(objects: &[Value]) -> BTreeMap<String, Value> {
    objects
        .iter()
        .map(|o| (format!("{}/{}/{}", o["apiVersion"], o["kind"], o["metadata"]["name"]), o.clone()))
        .collect()
}

#[test]
fn helm_lints_the_chart_and_renders_what_the_test_renders() {
    let Some(helm) = helm_binary() else {
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "no helm under CI=true: run scripts/install-helm");
        eprintln!("SKIPPED: no helm ($HELM, vendor/helm/helm or PATH); scripts/install-helm installs one");
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    let chart = chart_dir();
    let chart = chart.to_str().expect("utf8");
    for (name, file, values) in value_sets() {
        let mut extra: Vec<&str> = Vec::new();
        let file_str = file.as_ref().map(|f| f.to_str().expect("utf8").to_string());
        if let Some(f) = &file_str {
            extra.extend(["-f", f.as_str()]);
        }
        let mut lint = vec!["lint", "--strict", chart];
        lint.extend(&extra);
        run_helm(&helm, home.path(), &lint);

        let mut template = vec!["template", RELEASE, chart, "--namespace", NAMESPACE];
        template.extend(&extra);
        let text = run_helm(&helm, home.path(), &template);
        let theirs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).expect("helm's YAML"))
            .filter(|v: &Value| !v.is_null())
            .collect();
        let ours = render(&values);
        let (theirs, mine) = (keyed(&theirs), keyed(&ours.objects));
        assert_eq!(
            theirs.keys().collect::<Vec<_>>(),
            mine.keys().collect::<Vec<_>>(),
            "{name}: helm and the test's renderer give different objects"
        );
        for (k, v) in &theirs {
            assert_eq!(v, &mine[k], "{name}: {k} differs between helm and the test's renderer");
        }

        let mut install = vec!["install", RELEASE, chart, "--namespace", NAMESPACE, "--dry-run=client"];
        install.extend(&extra);
        let out = run_helm(&helm, home.path(), &install);
        let notes = out.split_once("\nNOTES:\n").map(|(_, n)| n).unwrap_or_else(|| panic!("{name}: no NOTES in {out}"));
        assert_eq!(notes.trim_end(), ours.notes.trim_end(), "{name}: NOTES.txt differs");
    }
}

// ---------------------------------------------------------------------------
// The renderer on its own.

#[test]
fn renderer_handles_its_subset_and_refuses_the_rest() {
    let chart = json!({"name": "c", "version": "1.2.3", "appVersion": "9"});
    let values = json!({
        "a": {"b": "x y", "n": 8080, "f": 0.5, "big": 1_000_000, "list": [1, 2], "empty": {}},
        "on": true,
        "off": false,
    });
    let one = |src: &str| -> Result<String, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("t.yaml"), src).expect("write");
        std::fs::write(
            dir.path().join("_h.tpl"),
            "{{- define \"h.n\" -}}{{ .Chart.Name }}-{{ .Release.Name }}{{- end -}}",
        )
        .expect("write");
        tpl::render_chart(dir.path(), &chart, &values, "rel", "ns").map(|r| r.manifests["t.yaml"].clone())
    };
    let ok = |src: &str, want: &str| assert_eq!(one(src).as_deref(), Ok(want), "{src}");
    ok("{{ .Values.a.b }}", "x y");
    ok("{{ .Values.a.b | quote }}", "\"x y\"");
    ok("{{ .Values.a.n }}:{{ .Values.a.f }}", "8080:0.5");
    ok("a\n  {{- if .Values.on }}\n  t{{ else }}e{{ end -}}\n  z", "a\n  tz");
    ok("{{ if .Values.off }}1{{ else if .Values.a.empty }}2{{ else }}3{{ end }}", "3");
    ok("{{ if and .Values.on (not .Values.off) }}y{{ end }}", "y");
    ok("k:{{ toYaml .Values.a.list | nindent 2 }}", "k:\n  - 1\n  - 2");
    ok("{{ include \"h.n\" . }}/{{ .Release.Namespace }}/{{ .Chart.AppVersion }}", "c-rel/ns/9");
    ok("{{ printf \"%s-%v\" .Release.Name .Values.a.n | trunc 5 | trimSuffix \"-\" }}", "rel-8");
    ok("{{ default \"d\" .Values.a.missing }}{{ .Values.a.b | default \"d\" }}", "dx y");
    ok("{{ \"abc\" | sha256sum }}", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ok("{{/* comment */}}x{{- /* trimmed */ -}}\n y", "xy");
    ok("{{ if contains \"c\" \"abc\" }}in{{ end }}", "in");
    for bad in [
        "{{ range .Values.a.list }}{{ . }}{{ end }}",
        "{{ with .Values.a }}{{ .b }}{{ end }}",
        "{{ $x := 1 }}",
        "{{ .Values.a.b | upper }}",
        "{{ template \"h.n\" . }}",
        "{{ .Values.a.missing }}",
        "{{ .Values.nope.deeper }}",
        "{{ .Values.a.big }}",
        "{{ .Values.a.list }}",
        "{{ if .Values.on }}unclosed",
        "{{ end }}",
        "{{-1}}",
        "{{ include \"nope\" . }}",
        "{{ printf \"%d\" .Values.a.n }}",
    ] {
        assert!(one(bad).is_err(), "the renderer must refuse {bad:?}, got {:?}", one(bad));
    }
}

/// A renderer for the subset of Helm's template language the chart uses.
mod tpl {
    use std::collections::{BTreeMap, HashMap};
    use std::path::Path;

    use serde_json::{json, Value};

    #[derive(Debug, Clone)]
    enum Arg {
        Field(Vec<String>),
        Str(String),
        Num(f64),
        Bool(bool),
        Ident(String),
        Sub(Pipeline),
    }
    type Pipeline = Vec<Vec<Arg>>;

    #[derive(Debug)]
    enum Node {
        Text(String),
        Out(Pipeline),
        If(Vec<(Pipeline, Vec<Node>)>, Vec<Node>),
    }

    pub struct Rendered {
        pub manifests: BTreeMap<String, String>,
        pub notes: String,
    }

    /// Renders every template in `dir` as `helm template` would, with
    /// `.Values`, `.Release.{Name,Namespace,Service}` and
    /// `.Chart.{Name,Version,AppVersion}`.
    pub fn render_chart(
        dir: &Path,
        chart: &Value,
        values: &Value,
        release: &str,
        namespace: &str,
    ) -> Result<Rendered, String> {
        let root = json!({
            "Values": values,
            "Release": {"Name": release, "Namespace": namespace, "Service": "Helm"},
            "Chart": {"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
        });
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .map(|e| e.map(|e| e.path()).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        let mut defines = HashMap::new();
        let mut files = Vec::new();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).ok_or("bad file name")?.to_string();
            if !(name.ends_with(".yaml") || name.ends_with(".tpl") || name == "NOTES.txt") {
                return Err(format!("{name}: not a template this renderer knows what to do with"));
            }
            let src = std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))?;
            let nodes = parse(&src, &mut defines).map_err(|e| format!("{name}: {e}"))?;
            files.push((name, nodes));
        }
        let mut out = Rendered { manifests: BTreeMap::new(), notes: String::new() };
        for (name, nodes) in files {
            let mut text = String::new();
            exec(&nodes, &root, &defines, 0, &mut text).map_err(|e| format!("{name}: {e}"))?;
            if name == "NOTES.txt" {
                out.notes = text;
            } else if !name.starts_with('_') {
                out.manifests.insert(name, text);
            }
        }
        Ok(out)
    }

    // --- Parsing.

    enum Piece {
        Text(String),
        Action(String),
    }

    /// Splits text from `{{ actions }}`, applying `{{-` and `-}}` trimming.
    fn split(src: &str) -> Result<Vec<Piece>, String> {
        let mut out = Vec::new();
        let mut rest = src;
        let mut trim_next = false;
        loop {
            let Some(open) = rest.find("{{") else {
                let text = if trim_next { rest.trim_start() } else { rest };
                out.push(Piece::Text(text.to_string()));
                return Ok(out);
            };
            let mut text = &rest[..open];
            if trim_next {
                text = text.trim_start();
            }
            let mut body = &rest[open + 2..];
            if let Some(after) = body.strip_prefix('-') {
                if !after.starts_with([' ', '\t', '\n', '\r']) {
                    return Err("`{{-` must be followed by a space".into());
                }
                text = text.trim_end();
                body = after;
            }
            out.push(Piece::Text(text.to_string()));
            let close = find_close(body)?;
            let mut action = &body[..close];
            trim_next = false;
            if let Some(before) = action.strip_suffix('-') {
                if !before.ends_with([' ', '\t', '\n', '\r']) {
                    return Err("`-}}` must follow a space".into());
                }
                trim_next = true;
                action = before;
            }
            out.push(Piece::Action(action.trim().to_string()));
            rest = &body[close + 2..];
        }
    }

    /// The offset of the `}}` closing an action, skipping quoted strings.
    fn find_close(s: &str) -> Result<usize, String> {
        let b = s.as_bytes();
        let mut i = 0;
        let mut quote: Option<u8> = None;
        while i < b.len() {
            match quote {
                Some(q) => {
                    if b[i] == b'\\' && q == b'"' {
                        i += 1;
                    } else if b[i] == q {
                        quote = None;
                    }
                }
                None if b[i] == b'"' || b[i] == b'`' => quote = Some(b[i]),
                None if s[i..].starts_with("}}") => return Ok(i),
                None => {}
            }
            i += 1;
        }
        Err("an action is not closed with }}".into())
    }

    enum Closer {
        Eof,
        End,
        Else,
        ElseIf(Pipeline),
    }

    fn parse(src: &str, defines: &mut HashMap<String, Vec<Node>>) -> Result<Vec<Node>, String> {
        let mut pieces = split(src)?.into_iter();
        let (nodes, end) = block(&mut pieces, defines, true)?;
        match end {
            Closer::Eof => Ok(nodes),
            _ => Err("{{ end }} or {{ else }} without an opening if/define".into()),
        }
    }

    fn block(
        pieces: &mut std::vec::IntoIter<Piece>,
        defines: &mut HashMap<String, Vec<Node>>,
        top: bool,
    ) -> Result<(Vec<Node>, Closer), String> {
        let mut nodes = Vec::new();
        while let Some(piece) = pieces.next() {
            let action = match piece {
                Piece::Text(t) => {
                    if !t.is_empty() {
                        nodes.push(Node::Text(t));
                    }
                    continue;
                }
                Piece::Action(a) => a,
            };
            if action.starts_with("/*") {
                if !action.ends_with("*/") {
                    return Err(format!("a comment must end with */ right before }}}}: {action}"));
                }
                continue;
            }
            let (word, rest) = action.split_once(char::is_whitespace).unwrap_or((action.as_str(), ""));
            match word {
                "end" if rest.is_empty() => return Ok((nodes, Closer::End)),
                "else" if rest.is_empty() => return Ok((nodes, Closer::Else)),
                "else" => {
                    let cond =
                        rest.trim().strip_prefix("if ").ok_or_else(|| format!("unsupported: {{{{ {action} }}}}"))?;
                    return Ok((nodes, Closer::ElseIf(pipeline(cond)?)));
                }
                "if" => {
                    let mut branches = Vec::new();
                    let mut cond = pipeline(rest)?;
                    let otherwise = loop {
                        let (body, end) = block(pieces, defines, false)?;
                        branches.push((cond, body));
                        match end {
                            Closer::End => break Vec::new(),
                            Closer::ElseIf(c) => cond = c,
                            Closer::Else => match block(pieces, defines, false)? {
                                (body, Closer::End) => break body,
                                _ => return Err("if ... else ... needs {{ end }}".into()),
                            },
                            Closer::Eof => return Err("if without {{ end }}".into()),
                        }
                    };
                    nodes.push(Node::If(branches, otherwise));
                }
                "define" => {
                    if !top {
                        return Err("define inside a block".into());
                    }
                    let p = pipeline(rest)?;
                    let name = match p.as_slice() {
                        [cmd] => match cmd.as_slice() {
                            [Arg::Str(s)] => s.clone(),
                            _ => return Err(format!("define takes a quoted name: {action}")),
                        },
                        _ => return Err(format!("define takes a quoted name: {action}")),
                    };
                    match block(pieces, defines, false)? {
                        (body, Closer::End) => {
                            if defines.insert(name.clone(), body).is_some() {
                                return Err(format!("{name} is defined twice"));
                            }
                        }
                        _ => return Err(format!("define {name} without {{{{ end }}}}")),
                    }
                }
                "range" | "with" | "template" | "block" | "break" | "continue" | "end" => {
                    return Err(format!("unsupported: {{{{ {action} }}}}"))
                }
                _ => nodes.push(Node::Out(pipeline(&action)?)),
            }
        }
        Ok((nodes, Closer::Eof))
    }

    #[derive(Debug, PartialEq)]
    enum Tok {
        Field(Vec<String>),
        Str(String),
        Num(f64),
        Ident(String),
        Pipe,
        Open,
        Close,
    }

    fn lex(s: &str) -> Result<Vec<Tok>, String> {
        let chars: Vec<char> = s.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        let word = |i: &mut usize| {
            let start = *i;
            while *i < chars.len() && (chars[*i].is_ascii_alphanumeric() || chars[*i] == '_') {
                *i += 1;
            }
            chars[start..*i].iter().collect::<String>()
        };
        while i < chars.len() {
            let c = chars[i];
            match c {
                c if c.is_whitespace() => i += 1,
                '|' => {
                    toks.push(Tok::Pipe);
                    i += 1
                }
                '(' => {
                    toks.push(Tok::Open);
                    i += 1
                }
                ')' => {
                    toks.push(Tok::Close);
                    i += 1
                }
                '"' => {
                    let mut s = String::new();
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err("unterminated string".into()),
                            Some('"') => break,
                            Some('\\') => {
                                i += 1;
                                s.push(match chars.get(i) {
                                    Some('n') => '\n',
                                    Some('t') => '\t',
                                    Some('"') => '"',
                                    Some('\\') => '\\',
                                    other => return Err(format!("unsupported escape \\{other:?}")),
                                });
                            }
                            Some(c) => s.push(*c),
                        }
                        i += 1;
                    }
                    i += 1;
                    toks.push(Tok::Str(s));
                }
                '.' => {
                    let mut path = Vec::new();
                    while chars.get(i) == Some(&'.') {
                        i += 1;
                        let w = word(&mut i);
                        if w.is_empty() {
                            if path.is_empty()
                                && chars.get(i).is_none_or(|c| c.is_whitespace() || *c == ')' || *c == '|')
                            {
                                break;
                            }
                            return Err(format!("bad field in {s:?}"));
                        }
                        path.push(w);
                    }
                    toks.push(Tok::Field(path));
                }
                c if c.is_ascii_digit() => {
                    let w = word(&mut i);
                    toks.push(Tok::Num(w.parse().map_err(|_| format!("bad number {w}"))?));
                }
                c if c.is_ascii_alphabetic() => toks.push(Tok::Ident(word(&mut i))),
                other => return Err(format!("unsupported character {other:?} in {s:?}")),
            }
        }
        Ok(toks)
    }

    fn pipeline(s: &str) -> Result<Pipeline, String> {
        let toks = lex(s)?;
        let mut pos = 0;
        let p = parse_pipeline(&toks, &mut pos)?;
        if pos != toks.len() {
            return Err(format!("unexpected {:?} in {s:?}", toks[pos]));
        }
        Ok(p)
    }

    fn parse_pipeline(toks: &[Tok], pos: &mut usize) -> Result<Pipeline, String> {
        let mut cmds = Vec::new();
        loop {
            let mut cmd = Vec::new();
            while let Some(t) = toks.get(*pos) {
                let arg = match t {
                    Tok::Pipe | Tok::Close => break,
                    Tok::Field(f) => Arg::Field(f.clone()),
                    Tok::Str(s) => Arg::Str(s.clone()),
                    Tok::Num(n) => Arg::Num(*n),
                    Tok::Ident(w) if w == "true" || w == "false" => Arg::Bool(w == "true"),
                    Tok::Ident(w) => Arg::Ident(w.clone()),
                    Tok::Open => {
                        *pos += 1;
                        let inner = parse_pipeline(toks, pos)?;
                        if toks.get(*pos) != Some(&Tok::Close) {
                            return Err("( without )".into());
                        }
                        Arg::Sub(inner)
                    }
                };
                cmd.push(arg);
                *pos += 1;
            }
            if cmd.is_empty() {
                return Err("empty command".into());
            }
            cmds.push(cmd);
            if toks.get(*pos) == Some(&Tok::Pipe) {
                *pos += 1;
            } else {
                return Ok(cmds);
            }
        }
    }

    // --- Evaluation.

    type Defines = HashMap<String, Vec<Node>>;

    fn exec(nodes: &[Node], dot: &Value, defines: &Defines, depth: usize, out: &mut String) -> Result<(), String> {
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Out(p) => out.push_str(&text(&eval(p, dot, defines, depth)?)?),
                Node::If(branches, otherwise) => {
                    let mut taken = None;
                    for (cond, body) in branches {
                        if truthy(&eval(cond, dot, defines, depth)?) {
                            taken = Some(body);
                            break;
                        }
                    }
                    exec(taken.unwrap_or(otherwise), dot, defines, depth, out)?;
                }
            }
        }
        Ok(())
    }

    fn eval(p: &Pipeline, dot: &Value, defines: &Defines, depth: usize) -> Result<Value, String> {
        let mut piped: Option<Value> = None;
        for cmd in p {
            let value = match &cmd[0] {
                Arg::Ident(f) => {
                    let mut args =
                        cmd[1..].iter().map(|a| arg(a, dot, defines, depth)).collect::<Result<Vec<_>, _>>()?;
                    args.extend(piped.take());
                    call(f, args, defines, depth)?
                }
                a => {
                    if cmd.len() > 1 || piped.is_some() {
                        return Err(format!("{a:?} is not a function"));
                    }
                    arg(a, dot, defines, depth)?
                }
            };
            piped = Some(value);
        }
        piped.ok_or_else(|| "empty pipeline".into())
    }

    fn arg(a: &Arg, dot: &Value, defines: &Defines, depth: usize) -> Result<Value, String> {
        Ok(match a {
            Arg::Field(path) => {
                let mut v = dot;
                for (i, key) in path.iter().enumerate() {
                    v = match v {
                        Value::Object(m) => m.get(key).unwrap_or(&Value::Null),
                        Value::Null => return Err(format!("nil pointer evaluating .{}", path[..=i].join("."))),
                        other => return Err(format!("can't evaluate field {key} in {other}")),
                    };
                }
                v.clone()
            }
            Arg::Str(s) => Value::String(s.clone()),
            Arg::Num(n) => json!(n),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Ident(f) => call(f, Vec::new(), defines, depth)?,
            Arg::Sub(p) => eval(p, dot, defines, depth)?,
        })
    }

    fn truthy(v: &Value) -> bool {
        match v {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
        }
    }

    /// A number as Helm prints it (values are float64 there, printed with
    /// %v): only where that is plain decimal; 1e+06 and the like are refused.
    fn number(n: &serde_json::Number) -> Result<String, String> {
        let f = n.as_f64().ok_or("not a number")?;
        if f.fract() == 0.0 && f.abs() < 1e6 {
            Ok(format!("{}", f as i64))
        } else if f.fract() != 0.0 && f.abs() >= 1e-4 && f.abs() < 1e6 {
            Ok(format!("{f}"))
        } else {
            Err(format!("Helm prints {n} in exponent form; quote it in the values"))
        }
    }

    fn text(v: &Value) -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => number(n),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Null => Err("prints a missing value (Helm would print nothing)".into()),
            other => Err(format!("prints a collection ({other}); use toYaml")),
        }
    }

    fn string(v: &Value, f: &str) -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!("{f} wants a string, got {other}")),
        }
    }

    fn integer(v: &Value, f: &str) -> Result<usize, String> {
        v.as_f64()
            .filter(|n| n.fract() == 0.0 && *n >= 0.0)
            .map(|n| n as usize)
            .ok_or_else(|| format!("{f} wants a count, got {v}"))
    }

    fn go_quote(s: &str) -> String {
        let mut q = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                '\n' => q.push_str("\\n"),
                '\t' => q.push_str("\\t"),
                '\r' => q.push_str("\\r"),
                c if (c as u32) < 0x20 => q.push_str(&format!("\\x{:02x}", c as u32)),
                c => q.push(c),
            }
        }
        q.push('"');
        q
    }

    fn indent(n: usize, s: &str) -> String {
        let pad = " ".repeat(n);
        format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
    }

    fn call(f: &str, args: Vec<Value>, defines: &Defines, depth: usize) -> Result<Value, String> {
        let want = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!("{f} takes {n} arguments, got {}", args.len()))
            }
        };
        Ok(match f {
            "include" => {
                want(2)?;
                let name = string(&args[0], f)?;
                let body = defines.get(&name).ok_or_else(|| format!("no template {name:?}"))?;
                if depth > 20 {
                    return Err("include nests too deep".into());
                }
                let mut out = String::new();
                exec(body, &args[1], defines, depth + 1, &mut out)?;
                Value::String(out)
            }
            "toYaml" => {
                want(1)?;
                let y = serde_yaml_ng::to_string(&args[0]).map_err(|e| e.to_string())?;
                Value::String(y.strip_suffix('\n').unwrap_or(&y).to_string())
            }
            "nindent" | "indent" => {
                want(2)?;
                let s = indent(integer(&args[0], f)?, &string(&args[1], f)?);
                Value::String(if f == "nindent" { format!("\n{s}") } else { s })
            }
            "quote" => {
                if args.is_empty() {
                    return Err("quote without an argument".into());
                }
                let parts = args.iter().map(|a| text(a).map(|t| go_quote(&t))).collect::<Result<Vec<_>, _>>()?;
                Value::String(parts.join(" "))
            }
            "default" => match args.len() {
                1 => args[0].clone(),
                2 => {
                    if truthy(&args[1]) {
                        args[1].clone()
                    } else {
                        args[0].clone()
                    }
                }
                n => return Err(format!("default takes 1 or 2 arguments, got {n}")),
            },
            "trunc" => {
                want(2)?;
                let n = integer(&args[0], f)?;
                Value::String(string(&args[1], f)?.chars().take(n).collect())
            }
            "trimSuffix" => {
                want(2)?;
                let (suffix, s) = (string(&args[0], f)?, string(&args[1], f)?);
                Value::String(s.strip_suffix(suffix.as_str()).unwrap_or(&s).to_string())
            }
            "contains" => {
                want(2)?;
                Value::Bool(string(&args[1], f)?.contains(string(&args[0], f)?.as_str()))
            }
            "printf" => {
                let format = string(args.first().ok_or("printf without a format")?, f)?;
                let mut rest = args[1..].iter();
                let mut out = String::new();
                let mut chars = format.chars();
                while let Some(c) = chars.next() {
                    if c != '%' {
                        out.push(c);
                        continue;
                    }
                    match chars.next() {
                        Some('%') => out.push('%'),
                        Some('s' | 'v') => out.push_str(&text(rest.next().ok_or("printf: too few arguments")?)?),
                        other => return Err(format!("printf: unsupported verb %{other:?}")),
                    }
                }
                if rest.next().is_some() {
                    return Err("printf: too many arguments".into());
                }
                Value::String(out)
            }
            "sha256sum" => {
                want(1)?;
                Value::String(sha256_hex(string(&args[0], f)?.as_bytes()))
            }
            "not" => {
                want(1)?;
                Value::Bool(!truthy(&args[0]))
            }
            "and" | "or" => {
                if args.len() < 2 {
                    return Err(format!("{f} takes at least 2 arguments"));
                }
                let stop = |v: &Value| if f == "and" { !truthy(v) } else { truthy(v) };
                args.iter().find(|v| stop(v)).unwrap_or(&args[args.len() - 1]).clone()
            }
            "eq" => {
                want(2)?;
                Value::Bool(match (&args[0], &args[1]) {
                    (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
                    (a, b) => a == b,
                })
            }
            _ => return Err(format!("unsupported function {f:?}")),
        })
    }

    /// SHA-256 (FIPS 180-4), for `sha256sum`.
    pub fn sha256_hex(data: &[u8]) -> String {
        const K: [u32; 64] = [
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
            0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
            0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
            0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
            0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
            0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
            0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
            0xc67178f2,
        ];
        let mut h: [u32; 8] =
            [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
        let mut msg = data.to_vec();
        msg.push(0x80);
        while msg.len() % 64 != 56 {
            msg.push(0);
        }
        msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
        for chunk in msg.chunks(64) {
            let mut w = [0u32; 64];
            for (i, word) in chunk.chunks(4).enumerate() {
                w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            }
            for i in 16..64 {
                let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
                let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
            }
            let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
            for i in 0..64 {
                let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
                let ch = (e & f) ^ (!e & g);
                let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
                let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
                let maj = (a & b) ^ (a & c) ^ (b & c);
                let t2 = s0.wrapping_add(maj);
                (hh, g, f, e, d, c, b, a) = (g, f, e, d.wrapping_add(t1), c, b, a, t1.wrapping_add(t2));
            }
            for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
                *x = x.wrapping_add(y);
            }
        }
        h.iter().map(|x| format!("{x:08x}")).collect()
    }
}
