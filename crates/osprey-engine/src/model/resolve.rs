//! Finding a model from what the user typed after `--model`: a local
//! directory, then the HuggingFace cache, then a hub download. When all fail
//! the error lists every place looked at and how to fetch the model.

use std::path::{Path, PathBuf};

use super::ModelFiles;
use crate::error::{EngineError, Result};

/// Where a model directory was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSource {
    LocalPath,
    HfCache,
    HubDownload,
}

/// Knobs for resolution; the defaults read the environment like the
/// HuggingFace tools do.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// Never contact the hub (`OSPREY_OFFLINE=1` or `HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// The hub cache directory (`$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`).
    pub hub_cache: Option<PathBuf>,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        let flag = |k: &str| std::env::var(k).is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
        let hub_cache = std::env::var_os("HF_HUB_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HF_HOME").map(|h| PathBuf::from(h).join("hub")))
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub")));
        Self { offline: flag("OSPREY_OFFLINE") || flag("HF_HUB_OFFLINE"), hub_cache }
    }
}

const OPTIONAL_FILES: &[&str] =
    &["modules.json", "sentence_bert_config.json", "1_Pooling/config.json", "special_tokens_map.json"];

/// Resolves `spec` (a path or a hub id such as `sentence-transformers/all-MiniLM-L6-v2`).
pub fn resolve_model(spec: &str, opts: &ResolveOptions) -> Result<ModelFiles> {
    let mut looked = Vec::new();
    let path = Path::new(spec);
    if path.is_dir() {
        let id = path.file_name().map_or_else(|| spec.to_string(), |n| n.to_string_lossy().into_owned());
        return ModelFiles::from_dir(path, id, super::ModelSource::LocalPath);
    }
    looked.push(format!("local path {} (not a directory)", path.display()));

    let looks_like_id = !spec.is_empty() && !spec.starts_with(['.', '/']) && spec.split('/').count() <= 2;
    if looks_like_id {
        if let Some(cache) = &opts.hub_cache {
            match cached_snapshot(cache, spec) {
                Some(dir) => return ModelFiles::from_dir(&dir, spec.to_string(), ModelSource::HfCache),
                None => looked.push(format!("HuggingFace cache {} (no snapshot of {spec})", cache.display())),
            }
        }
        if opts.offline {
            looked.push("the hub (skipped: offline mode)".into());
        } else {
            match download(spec, opts.hub_cache.as_deref()) {
                Ok(dir) => return ModelFiles::from_dir(&dir, spec.to_string(), ModelSource::HubDownload),
                Err(e) => looked.push(format!("the hub ({e})")),
            }
        }
    }
    Err(EngineError::ModelNotFound(format!(
        "'{spec}' not found; looked in: {}. Fetch the default model with `scripts/fetch-models`, \
         or pass --model with a directory holding config.json, tokenizer.json and model.safetensors",
        looked.join("; ")
    )))
}

/// `models--org--name/snapshots/<rev>` named by `refs/main`, or any snapshot
/// holding a config.json.
fn cached_snapshot(cache: &Path, id: &str) -> Option<PathBuf> {
    let repo = cache.join(format!("models--{}", id.replace('/', "--")));
    let snapshots = repo.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(repo.join("refs/main")) {
        let dir = snapshots.join(rev.trim());
        if dir.join("config.json").is_file() {
            return Some(dir);
        }
    }
    std::fs::read_dir(&snapshots)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("config.json").is_file())
}

fn download(id: &str, cache: Option<&Path>) -> std::result::Result<PathBuf, String> {
    let mut builder = hf_hub::api::sync::ApiBuilder::new().with_progress(false);
    if let Some(c) = cache {
        builder = builder.with_cache_dir(c.to_path_buf());
    }
    let api = builder.build().map_err(|e| e.to_string())?;
    let repo = api.model(id.to_string());
    let config = repo.get("config.json").map_err(|e| format!("download of {id}/config.json failed: {e}"))?;
    repo.get("tokenizer.json").map_err(|e| format!("download of {id}/tokenizer.json failed: {e}"))?;
    if repo.get("model.safetensors").is_err() {
        repo.get("pytorch_model.bin").map_err(|e| format!("download of {id} weights failed: {e}"))?;
    }
    for f in OPTIONAL_FILES {
        // Sentence-transformers files are optional; a plain transformer falls back to defaults.
        let _ = repo.get(f);
    }
    config.parent().map(Path::to_path_buf).ok_or_else(|| "bad cache path".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_model_error_lists_places_and_fix() {
        let opts = ResolveOptions { offline: true, hub_cache: Some(PathBuf::from("/nonexistent-cache")) };
        let err = resolve_model("org/not-a-model", &opts).expect_err("must fail").to_string();
        assert!(err.contains("local path org/not-a-model"), "{err}");
        assert!(err.contains("HuggingFace cache /nonexistent-cache"), "{err}");
        assert!(err.contains("offline"), "{err}");
        assert!(err.contains("scripts/fetch-models"), "{err}");
    }

    #[test]
    fn finds_snapshot_in_hf_cache() {
        let tmp = std::env::temp_dir().join(format!("osprey-hfcache-{}", std::process::id()));
        let snap = tmp.join("models--org--tiny/snapshots/abc123");
        std::fs::create_dir_all(&snap).expect("mkdir");
        std::fs::create_dir_all(tmp.join("models--org--tiny/refs")).expect("mkdir");
        std::fs::write(tmp.join("models--org--tiny/refs/main"), "abc123\n").expect("write");
        for f in ["config.json", "tokenizer.json", "model.safetensors"] {
            std::fs::write(snap.join(f), "{}").expect("write");
        }
        let opts = ResolveOptions { offline: true, hub_cache: Some(tmp.clone()) };
        let files = resolve_model("org/tiny", &opts).expect("found in cache");
        assert_eq!(files.source, ModelSource::HfCache);
        assert_eq!(files.dir, snap);
        std::fs::remove_dir_all(&tmp).ok();
    }

    #[test]
    fn missing_file_is_named() {
        let tmp = std::env::temp_dir().join(format!("osprey-missing-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).expect("mkdir");
        std::fs::write(tmp.join("config.json"), "{}").expect("write");
        let err = resolve_model(tmp.to_str().expect("utf8"), &ResolveOptions::default()).expect_err("must fail");
        assert!(err.to_string().contains("tokenizer.json"), "{err}");
        std::fs::remove_dir_all(&tmp).ok();
    }
}
