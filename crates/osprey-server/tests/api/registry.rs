//! Model registry seen through a running server: lazy load on first use,
//! load statistics, unload and reload.

use serde_json::json;

use crate::helpers::{model_dir, spawn_app, test_settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_model_loads_on_first_request_and_reloads_after_unload() {
    let Some(model) = model_dir() else { return };
    let mut settings = test_settings(&model);
    settings.model.preload = false;
    let app = spawn_app(settings);
    // Ready without a loaded model: the first request will load it.
    assert_eq!(app.get("/ready").await.status(), 200);
    assert!(app.registry.loaded("default").is_none(), "nothing loaded before first use");

    let first: Vec<Vec<f32>> = app.post_json("/embed", json!({"inputs": "lazy"})).await.json().await.expect("json");
    let status = app.registry.status();
    let info = status[0].info.clone().expect("loaded after first use");
    assert!(info.load_seconds > 0.0 && info.warmup_seconds > 0.0, "load and warm-up are timed");
    assert!(info.weight_bytes > 80_000_000);
    assert_eq!((info.max_seq_length, info.dtype.as_str()), (256, "f32"));
    assert!(!info.device.is_empty());

    // Handles are shared clones: two lookups give the same loaded model.
    let a = app.registry.loaded("default").expect("loaded");
    let b = app.registry.loaded("default").expect("loaded");
    assert_eq!(a.info().loaded_at, b.info().loaded_at);
    drop((a, b));

    assert!(app.registry.unload("default"));
    assert!(app.registry.loaded("default").is_none());
    assert!(!app.registry.unload("default"), "second unload is a no-op");
    let again: Vec<Vec<f32>> = app.post_json("/embed", json!({"inputs": "lazy"})).await.json().await.expect("json");
    assert!(app.registry.loaded("default").is_some(), "reloaded on demand");
    assert!(crate::helpers::cosine(&first[0], &again[0]) > 0.99999);
}
