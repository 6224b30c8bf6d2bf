//! Settings layering: defaults → `osprey.toml` → `OSPREY_SECTION__KEY`
//! environment variables → command-line flags (later wins).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use osprey_server::Settings;

/// Flags of `osprey serve` that override settings; `None` leaves the lower layers alone.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeOverrides {
    /// Address to listen on (server.bind).
    #[arg(long)]
    pub bind: Option<String>,
    /// Model directory or hub id (model.model).
    #[arg(long)]
    pub model: Option<String>,
    /// auto, cpu, cuda or cuda:N (model.device).
    #[arg(long)]
    pub device: Option<String>,
    /// auto, onnxruntime or candle (model.backend).
    #[arg(long)]
    pub backend: Option<String>,
    /// f32 or int8 (model.precision; int8 needs the onnxruntime backend).
    #[arg(long)]
    pub precision: Option<String>,
    /// Data directory (server.data_dir).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Load the model at start (model.preload).
    #[arg(long)]
    pub preload: Option<bool>,
    /// Warm-up forward passes at load (model.warmup_passes).
    #[arg(long)]
    pub warmup_passes: Option<usize>,
    /// Inference threads, 0 = one per core (model.threads).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Padded tokens per batch (batching.max_batch_tokens).
    #[arg(long)]
    pub max_batch_tokens: Option<usize>,
    /// Sequences per batch (batching.max_batch_requests).
    #[arg(long)]
    pub max_batch_requests: Option<usize>,
    /// Requests in flight before 429 (batching.max_concurrent_requests).
    #[arg(long)]
    pub max_concurrent_requests: Option<usize>,
    /// Inputs per request (batching.max_client_batch_size).
    #[arg(long)]
    pub max_client_batch_size: Option<usize>,
    /// Per-request deadline, e.g. 30s (batching.request_timeout).
    #[arg(long)]
    pub request_timeout: Option<String>,
    /// Largest request body in bytes (server.max_body_bytes).
    #[arg(long)]
    pub max_body_bytes: Option<usize>,
    /// Log filter, e.g. info or osprey_engine=debug (log.level).
    #[arg(long)]
    pub log_level: Option<String>,
    /// Emotion sequence-classification model directory or hub id (analysis.emotion.model).
    #[arg(long)]
    pub emotion_model: Option<String>,
    /// Directory of VADER's lexicon files (analysis.vader_dir).
    #[arg(long)]
    pub vader_dir: Option<PathBuf>,
    /// PostgreSQL (`postgres://…`) or SQLite (`sqlite://path`) URL (store.url);
    /// default: SQLite at <data_dir>/osprey.db.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Do not store posts and analyses (store.enabled = false).
    #[arg(long)]
    pub no_store: bool,
    /// Redis URL of the shared L2 cache (cache.l2.url); default: L1 only.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Bearer token for the admin routes, at least 16 characters
    /// (security.admin_token). Without one, admin routes are refused.
    #[arg(long, env = "OSPREY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// An API key for the inference routes, repeatable (security.api_keys);
    /// with any, inference routes require a key.
    #[arg(long = "api-key", env = "OSPREY_API_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub api_keys: Vec<String>,
    /// File of hashed keys: `<id> <admin|inference> <sha256-hex> [rps=N] [burst=N]` (security.keys_file).
    #[arg(long)]
    pub keys_file: Option<PathBuf>,
}

impl ServeOverrides {
    /// The flags given, as a nested settings fragment.
    fn fragment(&self) -> serde_json::Value {
        let mut root = serde_json::Map::new();
        let mut put = |section: &str, key: &str, v: serde_json::Value| {
            let entry = root.entry(section.to_string()).or_insert_with(|| serde_json::json!({}));
            if let Some(obj) = entry.as_object_mut() {
                obj.insert(key.to_string(), v);
            }
        };
        use serde_json::json;
        if let Some(v) = &self.bind {
            put("server", "bind", json!(v))
        }
        if let Some(v) = &self.data_dir {
            put("server", "data_dir", json!(v))
        }
        if let Some(v) = self.max_body_bytes {
            put("server", "max_body_bytes", json!(v))
        }
        if let Some(v) = &self.model {
            put("model", "model", json!(v))
        }
        if let Some(v) = &self.device {
            put("model", "device", json!(v))
        }
        if let Some(v) = &self.backend {
            put("model", "backend", json!(v))
        }
        if let Some(v) = &self.precision {
            put("model", "precision", json!(v))
        }
        if let Some(v) = self.preload {
            put("model", "preload", json!(v))
        }
        if let Some(v) = self.warmup_passes {
            put("model", "warmup_passes", json!(v))
        }
        if let Some(v) = self.threads {
            put("model", "threads", json!(v))
        }
        if let Some(v) = self.max_batch_tokens {
            put("batching", "max_batch_tokens", json!(v))
        }
        if let Some(v) = self.max_batch_requests {
            put("batching", "max_batch_requests", json!(v))
        }
        if let Some(v) = self.max_concurrent_requests {
            put("batching", "max_concurrent_requests", json!(v))
        }
        if let Some(v) = self.max_client_batch_size {
            put("batching", "max_client_batch_size", json!(v))
        }
        if let Some(v) = &self.request_timeout {
            put("batching", "request_timeout", json!(v))
        }
        if let Some(v) = &self.log_level {
            put("log", "level", json!(v))
        }
        if let Some(v) = &self.vader_dir {
            put("analysis", "vader_dir", json!(v))
        }
        if let Some(v) = &self.emotion_model {
            put("analysis", "emotion", json!({ "model": v }))
        }
        if let Some(v) = &self.database_url {
            put("store", "url", json!(v))
        }
        if self.no_store {
            put("store", "enabled", json!(false))
        }
        if let Some(v) = &self.redis_url {
            put("cache", "l2", json!({ "url": v }))
        }
        if let Some(v) = &self.admin_token {
            put("security", "admin_token", json!(v))
        }
        if !self.api_keys.is_empty() {
            put("security", "api_keys", json!(self.api_keys))
        }
        if let Some(v) = &self.keys_file {
            put("security", "keys_file", json!(v))
        }
        serde_json::Value::Object(root)
    }
}

/// `settings` with the passwords in its URLs replaced by `***`, for printing.
pub fn redacted(settings: &Settings) -> Settings {
    let mut s = settings.clone();
    s.store.url = s.store.url.as_deref().map(osprey_types::redact::redact_url);
    s.cache.l2.url = s.cache.l2.url.as_deref().map(osprey_types::redact::redact_url);
    s.jobs.redis_url = s.jobs.redacted_url();
    // Webhook headers carry credentials (Authorization, API keys).
    for watch in &mut s.watch {
        for target in &mut watch.alerts {
            if let osprey_server::watch::settings::AlertTarget::Webhook { headers, .. } = target {
                headers.values_mut().for_each(|v| *v = "***".into());
            }
        }
    }
    s
}

/// The settings file used when `--config` is not given: `./osprey.toml` if present.
pub fn default_config_path() -> Option<PathBuf> {
    let p = PathBuf::from("osprey.toml");
    p.is_file().then_some(p)
}

/// Layers every source into the effective settings.
pub fn load(config: Option<&Path>, overrides: &ServeOverrides) -> anyhow::Result<Settings> {
    load_from(config, overrides, Env::prefixed("OSPREY_"))
}

pub fn load_from(config: Option<&Path>, overrides: &ServeOverrides, env: Env) -> anyhow::Result<Settings> {
    let mut fig = Figment::from(Serialized::defaults(Settings::default()));
    if let Some(path) = config {
        anyhow::ensure!(path.is_file(), "settings file {} does not exist", path.display());
        fig = fig.merge(Toml::file_exact(path));
    }
    // Only nested keys (OSPREY_SERVER__BIND) are settings; flat ones such as
    // OSPREY_OFFLINE are switches read elsewhere.
    fig = fig
        .merge(env.filter(|k| k.as_str().contains("__")).split("__"))
        .merge(Serialized::defaults(overrides.fragment()));
    let settings: Settings = fig.extract().context("invalid settings")?;
    settings.validate().map_err(anyhow::Error::msg).context("invalid settings")?;
    Ok(settings)
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
mod tests {
    use super::*;

    #[test]
    fn layers_file_env_and_flags_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "osprey.toml",
                "[server]\nbind = \"127.0.0.1:9000\"\nmax_body_bytes = 1000\n[batching]\nmax_batch_tokens = 1024\nrequest_timeout = \"5s\"\n",
            )?;
            jail.set_env("OSPREY_SERVER__BIND", "127.0.0.1:9100");
            jail.set_env("OSPREY_BATCHING__MAX_BATCH_REQUESTS", "7");
            jail.set_env("OSPREY_OFFLINE", "1");
            let flags = ServeOverrides { bind: Some("127.0.0.1:9200".into()), ..Default::default() };
            let s = load(Some(Path::new("osprey.toml")), &flags).map_err(|e| e.to_string())?;
            assert_eq!(s.server.bind, "127.0.0.1:9200", "flag beats env");
            assert_eq!(s.batching.max_batch_requests, 7, "env beats default");
            assert_eq!(s.batching.max_batch_tokens, 1024, "file beats default");
            assert_eq!(s.server.max_body_bytes, 1000);
            assert_eq!(s.batching.request_timeout, std::time::Duration::from_secs(5));
            let no_flags =
                load(Some(Path::new("osprey.toml")), &ServeOverrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(no_flags.server.bind, "127.0.0.1:9100", "env beats file");
            Ok(())
        });
    }

    #[test]
    fn analysis_settings_layer_with_nested_sections() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "osprey.toml",
                "[analysis]\nsummary_k = 5\n[analysis.emotion]\nmodel_weight = 0.6\nvader_weight = 0.4\n[analysis.cache]\nemotion = \"local\"\n",
            )?;
            jail.set_env("OSPREY_ANALYSIS__STORE_LOOKUP_TIMEOUT", "30ms");
            let flags = ServeOverrides { emotion_model: Some("models/emo".into()), ..Default::default() };
            let s = load(Some(Path::new("osprey.toml")), &flags).map_err(|e| e.to_string())?;
            assert_eq!(s.analysis.summary_k, 5);
            assert_eq!(s.analysis.emotion.model, "models/emo", "flag");
            assert!((s.analysis.emotion.model_weight - 0.6).abs() < 1e-6, "file, beside the flag's key");
            assert_eq!(s.analysis.cache.emotion, osprey_server::analysis::settings::CachePolicy::Local);
            assert_eq!(s.analysis.store_lookup_timeout, std::time::Duration::from_millis(30), "env");
            jail.create_file("bad.toml", "[analysis.emotion]\nmodel_weight = -1.0\n")?;
            assert!(load(Some(Path::new("bad.toml")), &ServeOverrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn the_readme_settings_block_is_valid() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
        let start = readme.find("```toml\n[server]").expect("settings block") + "```toml\n".len();
        let len = readme[start..].find("```").expect("block end");
        figment::Jail::expect_with(|jail| {
            jail.create_file("readme.toml", &readme[start..start + len])?;
            load(Some(Path::new("readme.toml")), &ServeOverrides::default()).map_err(|e| format!("{e:#}"))?;
            Ok(())
        });
    }

    #[test]
    fn config_print_hides_passwords() {
        let flags = ServeOverrides {
            database_url: Some("postgres://app:s3cret@db:5432/osprey".into()),
            redis_url: Some("redis://:hunter2@127.0.0.1:6379/0".into()),
            ..Default::default()
        };
        let mut s = load_from(None, &flags, Env::prefixed("OSPREY_TEST_NONE_")).expect("settings");
        s.jobs.redis_url = Some("redis://:jobsecret@127.0.0.1:6379".into());
        s.watch = vec![serde_json::from_value(serde_json::json!({
            "name": "w", "push": true,
            "alerts": [{"type": "webhook", "name": "h", "url": "http://127.0.0.1:9/h", "headers": {"authorization": "Bearer hooksecret"}}]
        }))
        .expect("watch")];
        assert_eq!(s.store.url.as_deref(), Some("postgres://app:s3cret@db:5432/osprey"), "the real URL is used");
        let shown = toml::to_string(&redacted(&s)).expect("toml");
        assert!(!shown.contains("s3cret") && !shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("jobsecret") && !shown.contains("hooksecret"), "{shown}");
        assert!(shown.contains("postgres://app:***@db:5432/osprey"), "{shown}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[server]\nbindd = \"x\"\n")?;
            let err = load(Some(Path::new("bad.toml")), &ServeOverrides::default()).expect_err("unknown key");
            assert!(format!("{err:#}").contains("bindd"), "{err:#}");
            jail.create_file("zero.toml", "[batching]\nmax_batch_tokens = 0\n")?;
            let err = load(Some(Path::new("zero.toml")), &ServeOverrides::default()).expect_err("zero");
            assert!(format!("{err:#}").contains("max_batch_tokens"), "{err:#}");
            let flags = ServeOverrides { device: Some("tpu".into()), ..Default::default() };
            let err = load(None, &flags).expect_err("bad device");
            assert!(format!("{err:#}").contains("invalid device"), "{err:#}");
            Ok(())
        });
    }
}
