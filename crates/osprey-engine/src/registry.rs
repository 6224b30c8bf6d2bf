//! The model registry: named models loaded on first use (or at start with
//! `preload`), warmed up, shared as cheap clones, and unloadable at run time.

use std::collections::HashMap;
use std::sync::RwLock;

use serde::Serialize;

use crate::embedder::{Embedder, ModelInfo};
use crate::error::{EngineError, Result};
use crate::model::{resolve_model, ResolveOptions};
use crate::settings::{BatchingSettings, ModelSettings};

struct Slot {
    settings: ModelSettings,
    aliases: Vec<String>,
    loaded: Option<Embedder>,
    last_error: Option<String>,
}

/// State of one registered model, for `/info` and the performance API.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    pub name: String,
    pub spec: String,
    pub loaded: bool,
    pub info: Option<ModelInfo>,
    pub last_error: Option<String>,
}

/// Registered models by name.
pub struct ModelRegistry {
    slots: RwLock<HashMap<String, Slot>>,
    default: String,
    batching: RwLock<BatchingSettings>,
    resolve: ResolveOptions,
    /// Serialises loads so two first requests do not load a model twice.
    load_lock: tokio::sync::Mutex<()>,
}

impl ModelRegistry {
    /// A registry whose default (embedding) model is `settings`.
    pub fn new(
        default_name: &str,
        settings: ModelSettings,
        batching: BatchingSettings,
        resolve: ResolveOptions,
    ) -> Self {
        let registry = Self {
            slots: RwLock::new(HashMap::new()),
            default: default_name.to_string(),
            batching: RwLock::new(batching),
            resolve,
            load_lock: tokio::sync::Mutex::new(()),
        };
        registry.register(default_name, settings);
        registry
    }

    /// Adds a model under `name`; it loads on first use.
    pub fn register(&self, name: &str, settings: ModelSettings) {
        let spec = settings.model.trim_end_matches('/').to_string();
        let mut aliases = vec![name.to_string(), spec.clone()];
        if let Some(last) = spec.rsplit('/').next() {
            aliases.push(last.to_string());
        }
        let slot = Slot { settings, aliases, loaded: None, last_error: None };
        self.write().insert(name.to_string(), slot);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Slot>> {
        self.slots.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Slot>> {
        self.slots.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn default_name(&self) -> &str {
        &self.default
    }

    /// The registered name `requested` refers to (name, spec, directory name or
    /// hub id tail); an empty request means the default model.
    pub fn find(&self, requested: &str) -> Option<String> {
        if requested.is_empty() {
            return Some(self.default.clone());
        }
        let slots = self.read();
        slots
            .iter()
            .find(|(_, s)| {
                s.aliases.iter().any(|a| a == requested) || s.loaded.as_ref().is_some_and(|e| e.info().id == requested)
            })
            .map(|(n, _)| n.clone())
    }

    /// The batching settings models load with (updated by
    /// [`ModelRegistry::set_batch_limits`]).
    pub fn batching(&self) -> BatchingSettings {
        self.batching.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Changes the batch limits of every loaded model and of models loaded later.
    pub fn set_batch_limits(&self, limits: crate::BatchLimits) {
        {
            let mut b = self.batching.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            b.max_batch_tokens = limits.max_batch_tokens;
            b.max_batch_requests = limits.max_batch_requests;
        }
        for slot in self.read().values() {
            if let Some(e) = &slot.loaded {
                e.set_batch_limits(limits);
            }
        }
    }

    /// The loaded model `name`, if it is loaded now (never loads).
    pub fn loaded(&self, name: &str) -> Option<Embedder> {
        self.read().get(name).and_then(|s| s.loaded.clone())
    }

    /// The model `name`, loading and warming it up first if needed.
    pub async fn get(&self, name: &str) -> Result<Embedder> {
        if let Some(e) = self.loaded(name) {
            return Ok(e);
        }
        let _guard = self.load_lock.lock().await;
        if let Some(e) = self.loaded(name) {
            return Ok(e);
        }
        let settings = self
            .read()
            .get(name)
            .map(|s| s.settings.clone())
            .ok_or_else(|| EngineError::ModelNotFound(format!("no model registered as '{name}'")))?;
        let (resolve, batching) = (self.resolve.clone(), self.batching());
        let result = tokio::task::spawn_blocking(move || {
            let files = resolve_model(&settings.model, &resolve)?;
            Embedder::load(files, &settings, &batching)
        })
        .await
        .map_err(|e| EngineError::Backend(format!("model load task failed: {e}")))?;
        let mut slots = self.write();
        let slot = slots.get_mut(name).ok_or_else(|| EngineError::ModelNotFound(name.to_string()))?;
        match result {
            Ok(e) => {
                // Limits changed while the model loaded apply to it too.
                let b = self.batching();
                e.set_batch_limits(crate::BatchLimits {
                    max_batch_tokens: b.max_batch_tokens,
                    max_batch_requests: b.max_batch_requests,
                });
                slot.loaded = Some(e.clone());
                slot.last_error = None;
                Ok(e)
            }
            Err(err) => {
                slot.last_error = Some(err.to_string());
                Err(err)
            }
        }
    }

    /// Loads every model marked for preloading; returns the first error.
    pub async fn preload(&self) -> Result<()> {
        let names: Vec<String> =
            self.read().iter().filter(|(_, s)| s.settings.preload).map(|(n, _)| n.clone()).collect();
        for name in names {
            self.get(&name).await?;
        }
        Ok(())
    }

    /// Drops the registry's handle on `name`; the model's threads and memory
    /// go once the requests still holding it finish. Returns whether it was loaded.
    pub fn unload(&self, name: &str) -> bool {
        let mut slots = self.write();
        let was = slots.get_mut(name).and_then(|s| s.loaded.take()).is_some();
        if was {
            metrics::gauge!(osprey_types::metrics::MODEL_LOADED, "model" => name.to_string()).set(0.0);
        }
        was
    }

    /// Whether the default model is ready to serve, or why not.
    pub fn readiness(&self) -> std::result::Result<(), String> {
        let slots = self.read();
        let Some(slot) = slots.get(&self.default) else {
            return Err("no default model registered".into());
        };
        match (&slot.loaded, &slot.last_error) {
            (Some(_), _) => Ok(()),
            (None, Some(e)) => Err(format!("model {} failed to load: {e}", self.default)),
            (None, None) if slot.settings.preload => Err(format!("model {} is loading", self.default)),
            // A lazily loaded model is ready to be loaded by the first request.
            (None, None) => Ok(()),
        }
    }

    pub fn status(&self) -> Vec<ModelStatus> {
        let mut out: Vec<ModelStatus> = self
            .read()
            .iter()
            .map(|(name, s)| ModelStatus {
                name: name.clone(),
                spec: s.settings.model.clone(),
                loaded: s.loaded.is_some(),
                info: s.loaded.as_ref().map(|e| e.info().clone()),
                last_error: s.last_error.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
