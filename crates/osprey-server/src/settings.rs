//! The root of osprey's typed settings tree. Each crate owns its sub-struct;
//! the binary layers `osprey.toml`, `OSPREY_…` environment variables and CLI
//! flags over these defaults.

use std::path::PathBuf;

use osprey_engine::{BatchingSettings, ModelSettings};
use serde::{Deserialize, Serialize};

/// Everything `osprey serve` can be told.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: HttpSettings,
    pub model: ModelSettings,
    pub batching: BatchingSettings,
    pub analysis: crate::analysis::AnalysisSettings,
    pub store: osprey_store::StoreSettings,
    pub cache: osprey_cache::CacheSettings,
    pub log: LogSettings,
    pub security: crate::security::SecuritySettings,
    pub telemetry: TelemetrySettings,
    pub monitor: osprey_monitor::MonitorSettings,
    pub alerts: osprey_perf::AlertSettings,
    /// The batch-job queue: in-process (default) or Redis Streams.
    pub jobs: osprey_jobs::JobSettings,
    /// `[[watch]]` definitions, run by `osprey watch`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<crate::watch::WatchDefinition>,
}

impl Settings {
    /// Checks cross-field constraints once, at start-up.
    pub fn validate(&self) -> Result<(), String> {
        self.batching.validate()?;
        self.analysis.validate()?;
        self.store.validate()?;
        self.cache.validate().map_err(|e| e.to_string())?;
        self.security.validate()?;
        self.telemetry.validate()?;
        self.monitor.validate()?;
        self.alerts.validate().map_err(|e| e.to_string())?;
        crate::watch::settings::validate_all(&self.watch)?;
        self.jobs.validate().map_err(|e| e.to_string())?;
        if self.server.max_body_bytes < 64 {
            return Err("server.max_body_bytes must be at least 64".into());
        }
        self.server
            .bind
            .parse::<std::net::SocketAddr>()
            .map_err(|e| format!("server.bind {:?}: {e}", self.server.bind))?;
        Ok(())
    }
}

/// The HTTP listener and request limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on; port 0 picks a free port.
    pub bind: String,
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// Where osprey keeps its data: the embedded SQLite database and topic sets.
    pub data_dir: PathBuf,
    /// On SIGTERM/SIGINT, how long `/ready` answers 503 while requests are
    /// still served, so load balancers take the instance out before it stops
    /// accepting connections. Set it to at least the balancer's probe
    /// interval times its failure threshold.
    #[serde(with = "humantime_serde")]
    pub drain_delay: std::time::Duration,
    /// After the drain delay, how long in-flight requests, then background
    /// tasks, may take to finish before the server stops without them.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: std::time::Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            max_body_bytes: 2 * 1024 * 1024,
            data_dir: PathBuf::from("./data"),
            drain_delay: std::time::Duration::from_secs(5),
            shutdown_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// An `EnvFilter` directive, e.g. `info` or `osprey_engine=debug,info`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { level: "info".into(), format: "text".into() }
    }
}

/// Instrumentation, the live stream and the audit log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// Time every request and feed the performance monitor. Off only to
    /// measure what instrumentation costs.
    pub instrument: bool,
    /// How often `/performance/live` sends a snapshot.
    #[serde(with = "humantime_serde")]
    pub live_interval: std::time::Duration,
    /// Snapshots kept for a dashboard that connects (sent in its `hello`).
    pub live_history: usize,
    /// Where `PUT /performance/config` appends its audit records (JSON
    /// lines); default `<data_dir>/audit.log`.
    pub audit_log: Option<PathBuf>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self { instrument: true, live_interval: std::time::Duration::from_secs(1), live_history: 300, audit_log: None }
    }
}

impl TelemetrySettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.live_interval < std::time::Duration::from_millis(100) {
            return Err("telemetry.live_interval must be at least 100ms".into());
        }
        if self.live_history > 3600 {
            return Err("telemetry.live_history must be at most 3600".into());
        }
        Ok(())
    }
}
