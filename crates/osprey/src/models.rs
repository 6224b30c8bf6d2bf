//! `osprey models list|pull|info`.

use std::path::{Path, PathBuf};

use osprey_engine::model::{resolve_model, ResolveOptions};

use crate::cli::ModelsCommand;
use crate::config::{self, ServeOverrides};

pub fn run(cmd: ModelsCommand, config_path: Option<&Path>) -> anyhow::Result<()> {
    let settings = config::load(config_path, &ServeOverrides::default())?;
    match cmd {
        ModelsCommand::List => {
            println!("configured: {}", settings.model.model);
            for (label, dir) in [("local", PathBuf::from("models")), ("hf-cache", hub_cache())] {
                let Ok(entries) = std::fs::read_dir(&dir) else { continue };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter_map(|n| match label {
                        "hf-cache" => n.strip_prefix("models--").map(|s| s.replacen("--", "/", 1)),
                        _ => Some(format!("models/{n}")),
                    })
                    .collect();
                names.sort();
                for n in names {
                    println!("{label:9} {n}");
                }
            }
        }
        ModelsCommand::Pull { model } => {
            let files = resolve_model(&model, &ResolveOptions::default())?;
            println!("{} ({:?}) at {}", files.id, files.source, files.dir.display());
        }
        ModelsCommand::Info { model } => {
            let spec = model.unwrap_or(settings.model.model);
            let files = resolve_model(&spec, &ResolveOptions::default())?;
            let cfg = files.read_config()?;
            let st = files.read_sentence_config(&cfg)?;
            let bytes = std::fs::metadata(&files.weights).map(|m| m.len()).unwrap_or(0);
            let info = serde_json::json!({
                "id": files.id,
                "path": files.dir,
                "source": files.source,
                "model_type": cfg.model_type,
                "architectures": cfg.architectures,
                "hidden_size": cfg.hidden_size,
                "layers": cfg.num_hidden_layers,
                "heads": cfg.num_attention_heads,
                "vocab_size": cfg.vocab_size,
                "max_seq_length": st.max_seq_length,
                "pooling": st.pooling,
                "normalize": st.normalize,
                "weights": files.weights,
                "weight_bytes": bytes,
            });
            println!("{}", serde_json::to_string_pretty(&info)?);
        }
    }
    Ok(())
}

fn hub_cache() -> PathBuf {
    ResolveOptions::default().hub_cache.unwrap_or_default()
}
