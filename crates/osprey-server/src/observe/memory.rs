//! `GET /performance/memory` and `POST /performance/memory/cleanup`.

use std::time::Duration;

use osprey_perf::OpKind;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// What the cleanup may free. By default: L1 maintenance (expired entries
/// leave), no model unloads, and freed heap returned to the OS.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CleanupRequest {
    /// Empty the in-process cache as well.
    pub clear_l1: bool,
    /// Unload models other than the default that served nothing for
    /// `idle_for` (they load again on their next request).
    pub unload_idle_models: bool,
    /// e.g. `10m`; at least 1 minute.
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String)]
    pub idle_for: Duration,
    /// Return freed heap pages to the OS (glibc `malloc_trim`).
    pub trim_heap: bool,
}

impl Default for CleanupRequest {
    fn default() -> Self {
        Self { clear_l1: false, unload_idle_models: false, idle_for: Duration::from_secs(600), trim_heap: true }
    }
}

/// Resident, peak and virtual size of this process from `/proc/self/status`
/// (kB there, bytes here); `None` off Linux.
pub fn process_memory() -> Option<(u64, u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:").unwrap_or(0), field("VmSize:").unwrap_or(0)))
}

pub fn report(state: &AppState) -> Value {
    let (rss, peak, virt) = process_memory().unwrap_or_default();
    let l1 = state.cache.stats().l1;
    let models: Vec<Value> = state
        .registry
        .status()
        .into_iter()
        .map(|m| json!({ "name": m.name, "loaded": m.loaded, "weight_bytes": m.info.map(|i| i.weight_bytes) }))
        .collect();
    let system = state.observe.monitor.latest().map(|r| r.memory);
    json!({
        "process": { "rss_bytes": rss, "peak_rss_bytes": peak, "virtual_bytes": virt },
        "system": system,
        "cache_l1": {
            "entries": l1.total.entries,
            "bytes": l1.total.bytes,
            "max_bytes": l1.max_bytes,
            "max_entries": l1.max_entries,
        },
        "models": models,
        "store_writer_queue": state.store.as_ref().map(|s| s.pool_and_queue().1),
        "allocator": allocator(),
    })
}

fn allocator() -> &'static str {
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        "glibc malloc (freed pages returned with malloc_trim)"
    } else {
        "system allocator (no trim available)"
    }
}

pub fn cleanup(state: &AppState, req: &CleanupRequest) -> ApiResult<Value> {
    if req.idle_for < Duration::from_secs(60) {
        return Err(ApiError::validation("`idle_for` must be at least 1m"));
    }
    let rss_before = process_memory().map(|m| m.0);
    let l1_before = state.cache.stats().l1.total;
    if req.clear_l1 {
        state.cache.clear_l1();
    }
    state.cache.run_pending_tasks();
    let l1_after = state.cache.stats().l1.total;

    let mut unloaded = Vec::new();
    if req.unload_idle_models {
        let default = state.registry.default_name().to_string();
        // The default model serves /ready and every embedding route: it stays.
        for m in state.registry.status().into_iter().filter(|m| m.loaded && m.name != default) {
            // A model is idle when its forward passes recorded nothing in the
            // window; passes are filed under the model's id. The window is the
            // shortest of 5 min and 1 h that covers `idle_for`, and 1 h for longer.
            let id = m.info.as_ref().map_or(m.name.clone(), |i| i.id.clone());
            let used = state.observe.perf.op_snapshot(OpKind::Model, &id).is_some_and(|o| {
                let w = if req.idle_for <= Duration::from_secs(300) { o.windows.m5 } else { o.windows.h1 };
                w.count > 0
            });
            if !used && state.registry.unload(&m.name) {
                unloaded.push(m.name);
            }
        }
    }
    let trimmed = req.trim_heap && trim_heap();
    let rss_after = process_memory().map(|m| m.0);
    let freed = rss_before.zip(rss_after).map(|(b, a)| b.saturating_sub(a));
    let summary = format!(
        "L1 {} → {} entries; {} model(s) unloaded; heap trimmed: {trimmed}; RSS freed: {} bytes",
        l1_before.entries,
        l1_after.entries,
        unloaded.len(),
        freed.unwrap_or(0)
    );
    Ok(json!({
        "summary": summary,
        "rss_before_bytes": rss_before,
        "rss_after_bytes": rss_after,
        "rss_freed_bytes": freed,
        "cache_l1": { "entries_before": l1_before.entries, "entries_after": l1_after.entries,
                      "bytes_before": l1_before.bytes, "bytes_after": l1_after.bytes },
        "models_unloaded": unloaded,
        "heap_trimmed": trimmed,
    }))
}

/// Asks glibc to hand freed heap pages back to the kernel. Returns whether
/// any memory was released.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim_heap() -> bool {
    // SAFETY: malloc_trim takes no pointers and only walks glibc's own arena
    // lists under their locks; it is safe to call from any thread at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() -> bool {
    false
}
