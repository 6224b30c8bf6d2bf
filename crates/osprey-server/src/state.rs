//! Shared state handed to every handler.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use osprey_engine::{Embedder, ModelRegistry};

use crate::analysis::Analyzer;

use crate::error::{ApiError, ApiResult};
use crate::settings::Settings;

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<ModelRegistry>,
    pub analyzer: Arc<Analyzer>,
    pub metrics: PrometheusHandle,
    pub settings: Arc<Settings>,
    /// Posts and analyses; `None` with `store.enabled = false`.
    pub store: Option<osprey_store::Store>,
    /// The two-tier cache (L1 in-process, L2 Redis when configured).
    pub cache: osprey_cache::Cache,
    /// Resource and performance monitors, alerts, the live stream, the audit log.
    pub observe: Arc<crate::observe::Observability>,
    /// Credentials and rate limits.
    pub security: Arc<crate::security::Security>,
    /// Changes the log filter at run time, when the program that embeds the
    /// server installed a reloadable one (the `osprey` binary does).
    pub log_control: Option<LogControl>,
    /// The log filter in force.
    pub log_level: Arc<std::sync::RwLock<String>>,
    /// Draining, the shutdown token and the tracker of background tasks.
    pub lifecycle: Arc<crate::lifecycle::Lifecycle>,
    /// The watches this process runs (`osprey watch`); `None` for `osprey serve`.
    pub watches: Option<Arc<crate::watch::Watches>>,
    /// The batch-job queue (`[jobs]`).
    pub jobs: Option<osprey_jobs::Jobs>,
}

/// Replaces the process's log filter with an `EnvFilter` directive.
pub type LogControl = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

impl AppState {
    pub fn log_level(&self) -> String {
        self.log_level.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Applies a new log filter through [`AppState::log_control`].
    pub fn set_log_level(&self, level: &str) -> Result<(), String> {
        let control = self.log_control.as_ref().ok_or("this server did not install the log")?;
        control(level)?;
        *self.log_level.write().unwrap_or_else(std::sync::PoisonError::into_inner) = level.to_string();
        Ok(())
    }

    /// The model `requested` names (empty: the default model), loading it if needed.
    pub async fn embedder(&self, requested: &str) -> ApiResult<Embedder> {
        let name = self.registry.find(requested).ok_or_else(|| {
            let served: Vec<String> = self.registry.status().into_iter().map(|s| s.name).collect();
            ApiError::not_found(format!("model {requested:?} is not served here; served models: {}", served.join(", ")))
        })?;
        Ok(self.registry.get(&name).await?)
    }
}
