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
}

impl AppState {
    /// The model `requested` names (empty: the default model), loading it if needed.
    pub async fn embedder(&self, requested: &str) -> ApiResult<Embedder> {
        let name = self.registry.find(requested).ok_or_else(|| {
            let served: Vec<String> = self.registry.status().into_iter().map(|s| s.name).collect();
            ApiError::not_found(format!("model {requested:?} is not served here; served models: {}", served.join(", ")))
        })?;
        Ok(self.registry.get(&name).await?)
    }
}
