//! Helpers shared by the engine's integration tests.

/// Whether the ONNX Runtime library can be loaded. Missing, the calling test
/// skips with a loud message, except under `CI=true`, where it fails.
pub fn ort_available() -> bool {
    if osprey_engine::backend::ort::ensure_runtime(None).is_ok() {
        return true;
    }
    assert!(std::env::var("CI").map_or(true, |v| v != "true"), "ONNX Runtime missing under CI=true");
    eprintln!("SKIPPED: ONNX Runtime library missing; run scripts/fetch-models");
    false
}
