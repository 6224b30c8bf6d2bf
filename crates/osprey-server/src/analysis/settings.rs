//! Settings of the analysis routes: VADER's lexicon, the emotion classifier
//! and its ensemble weights, the result cache and the per-request limits.

use std::path::PathBuf;
use std::time::Duration;

use osprey_engine::{BackendChoice, DeviceChoice};
use serde::{Deserialize, Serialize};

/// `[analysis]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisSettings {
    /// Directory holding `vader_lexicon.txt` and `emoji_utf8_lexicon.txt`
    /// (installed by `scripts/fetch-models`).
    pub vader_dir: PathBuf,
    /// Texts or posts one request may carry.
    pub max_texts: usize,
    /// Characters one text (or one post's title plus body) may hold.
    pub max_text_chars: usize,
    /// Sentences in summaries when the request does not say.
    pub summary_k: usize,
    /// Keep threshold of topic sets that do not set their own.
    pub topic_threshold: f32,
    pub emotion: EmotionSettings,
    pub cache: ResultCacheSettings,
    /// How long `/v1/analyze` waits for the store to say whether content was
    /// analysed before; past it the posts are computed.
    #[serde(with = "humantime_serde")]
    pub store_lookup_timeout: Duration,
    /// How long `/v1/analyze` waits for room in a full store queue; past
    /// it the post is answered unstored (no `stored_id`).
    #[serde(with = "humantime_serde")]
    pub store_submit_timeout: Duration,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        Self {
            vader_dir: PathBuf::from("models/vader"),
            max_texts: 256,
            max_text_chars: 1_000_000,
            summary_k: 3,
            topic_threshold: 0.35,
            emotion: EmotionSettings::default(),
            cache: ResultCacheSettings::default(),
            store_lookup_timeout: Duration::from_secs(1),
            store_submit_timeout: Duration::from_secs(5),
        }
    }
}

impl AnalysisSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_texts == 0 || self.max_text_chars == 0 || self.summary_k == 0 {
            return Err("analysis.max_texts, max_text_chars and summary_k must be at least 1".into());
        }
        if !(-1.0..=1.0).contains(&self.topic_threshold) {
            return Err("analysis.topic_threshold must be within [-1, 1]".into());
        }
        if self.summary_k > 1_000 {
            return Err("analysis.summary_k must be at most 1000".into());
        }
        for (name, d) in
            [("store_lookup_timeout", self.store_lookup_timeout), ("store_submit_timeout", self.store_submit_timeout)]
        {
            if d.is_zero() || d > Duration::from_secs(60) {
                return Err(format!("analysis.{name} must be between 1ms and 60s"));
            }
        }
        self.emotion.validate()
    }
}

/// `[analysis.emotion]`: the classifier and the ensemble.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmotionSettings {
    /// A sequence-classification model directory or hub id (e.g. a local copy
    /// of `j-hartmann/emotion-english-distilroberta-base`). Empty: the lexicon
    /// answers every emotion request.
    pub model: String,
    /// Use the classifier when it is loaded (requests may turn it off).
    pub enable_model: bool,
    /// Blend the VADER-derived distribution into the classifier's.
    pub enable_vader: bool,
    pub model_weight: f32,
    pub vader_weight: f32,
    pub device: DeviceChoice,
    pub backend: BackendChoice,
    /// Inference threads for the classifier; 0 means one per core.
    pub threads: usize,
    /// Whether `/ready` waits for the classifier to load.
    pub preload: bool,
}

impl Default for EmotionSettings {
    fn default() -> Self {
        Self {
            model: String::new(),
            enable_model: true,
            enable_vader: true,
            model_weight: 0.7,
            vader_weight: 0.3,
            device: DeviceChoice::Auto,
            backend: BackendChoice::Auto,
            threads: 0,
            preload: true,
        }
    }
}

impl EmotionSettings {
    pub fn validate(&self) -> Result<(), String> {
        check_weights(self.model_weight, self.vader_weight).map_err(|e| format!("analysis.emotion: {e}"))
    }
}

/// Ensemble weights must be finite, non-negative and not both zero.
pub fn check_weights(model: f32, vader: f32) -> Result<(), String> {
    if !(model.is_finite() && vader.is_finite()) || model < 0.0 || vader < 0.0 {
        return Err(format!("weights must be finite and non-negative (model_weight {model}, vader_weight {vader})"));
    }
    if model + vader <= 0.0 {
        return Err("model_weight and vader_weight cannot both be 0".into());
    }
    Ok(())
}

/// `[analysis.cache]`: which analysis results go through the two-tier
/// cache (`[cache]`), and how big one may be. Entries are of the
/// `prediction` kind, so their TTLs and byte budget are `[cache]`'s.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResultCacheSettings {
    /// Answers larger than this (approximate bytes) are not cached.
    pub max_entry_bytes: usize,
    /// VADER answers in microseconds: a Redis round trip costs more than
    /// recomputing, so they stay in-process.
    pub sentiment: CachePolicy,
    pub emotion: CachePolicy,
    pub trajectory: CachePolicy,
    pub summary: CachePolicy,
    pub analyze: CachePolicy,
}

/// Where one task's results are cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CachePolicy {
    /// Not cached.
    Off,
    /// In-process (L1) only.
    Local,
    /// L1, and Redis (L2) when `[cache.l2]` has a URL: replicas share answers.
    Shared,
}

impl Default for ResultCacheSettings {
    fn default() -> Self {
        Self {
            max_entry_bytes: 256 * 1024,
            sentiment: CachePolicy::Local,
            emotion: CachePolicy::Shared,
            trajectory: CachePolicy::Shared,
            summary: CachePolicy::Shared,
            analyze: CachePolicy::Shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_unusable_values() {
        assert!(AnalysisSettings::default().validate().is_ok());
        let s = AnalysisSettings { store_lookup_timeout: Duration::ZERO, ..AnalysisSettings::default() };
        assert!(s.validate().is_err());
        let s = AnalysisSettings { summary_k: 5_000, ..AnalysisSettings::default() };
        assert!(s.validate().is_err());
        let mut s = AnalysisSettings::default();
        (s.emotion.model_weight, s.emotion.vader_weight) = (0.0, 0.0);
        assert!(s.validate().is_err());
        s.emotion.model_weight = f32::NAN;
        assert!(s.validate().is_err());
    }
}
