//! The emotion service: the classifier (model path), the 70/30 ensemble with
//! the VADER-derived distribution, and the lexicon fallback.
//!
//! The classifier loads in the background at start. Until it is ready, when
//! it failed to load, when a request turns it off, or when a call to it
//! fails, answers come from the lexicon, say so (`path: "lexicon"`) and count
//! in `osprey_emotion_fallbacks_total{reason}`.

use std::sync::{Arc, RwLock};

use osprey_engine::model::{resolve_model, ResolveOptions};
use osprey_engine::{BatchingSettings, Classifier, EngineError, ModelSettings, Truncation};
use osprey_nlp::emotion::{blend, vader_emotion, EmotionDist, EmotionLexicon, EMOTIONS};
use osprey_nlp::vader::Sentiment;
use osprey_types::analysis::{EmotionOptions, EmotionPath, EmotionScores};
use osprey_types::metrics as m;

use super::settings::{check_weights, EmotionSettings};
use crate::error::{ApiError, ApiResult};

/// Where the classifier stands.
enum ModelState {
    /// No model configured.
    None,
    Loading,
    Ready(Arc<LoadedClassifier>),
    Failed(String),
}

pub struct LoadedClassifier {
    pub classifier: Classifier,
    /// Canonical class of each model label (`None`: a label outside the seven).
    map: Vec<Option<usize>>,
}

/// Request options resolved against the settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ResolvedOptions {
    pub enable_model: bool,
    pub enable_vader: bool,
    pub model_weight: f32,
    pub vader_weight: f32,
}

impl ResolvedOptions {
    /// Whether the VADER-derived distribution is blended in.
    pub fn ensemble(&self) -> bool {
        self.enable_vader && self.vader_weight > 0.0
    }
}

/// One answer before it becomes a wire type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmotionOutcome {
    pub dist: EmotionDist,
    pub path: EmotionPath,
}

impl EmotionOutcome {
    pub fn to_wire(&self) -> EmotionScores {
        let (best, score) = self.dist.dominant();
        EmotionScores {
            label: EMOTIONS[best].to_string(),
            score,
            scores: EMOTIONS.iter().zip(self.dist.0).map(|(l, p)| (l.to_string(), p)).collect(),
            path: self.path,
        }
    }
}

pub struct EmotionService {
    settings: EmotionSettings,
    lexicon: &'static EmotionLexicon,
    state: RwLock<ModelState>,
    /// Answers by any path, and answers the lexicon gave because the model
    /// was missing or failed (not because the caller turned it off): the
    /// `model_fallback_percent` alert signal.
    answered: std::sync::atomic::AtomicU64,
    fell_back: std::sync::atomic::AtomicU64,
}

impl EmotionService {
    pub fn new(settings: EmotionSettings) -> Self {
        let state = if settings.model.trim().is_empty() { ModelState::None } else { ModelState::Loading };
        Self {
            settings,
            lexicon: EmotionLexicon::builtin(),
            state: RwLock::new(state),
            answered: Default::default(),
            fell_back: Default::default(),
        }
    }

    /// (answers, fallbacks) since start; fallbacks exclude callers that
    /// turned the model off.
    pub fn fallback_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.answered.load(Relaxed), self.fell_back.load(Relaxed))
    }

    fn count(&self, n: usize, fallback: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        self.answered.fetch_add(n as u64, Relaxed);
        if fallback {
            self.fell_back.fetch_add(n as u64, Relaxed);
        }
    }

    /// Loads the configured classifier (blocking; run it off the runtime).
    pub fn load_model(&self, batching: &BatchingSettings) {
        if self.settings.model.trim().is_empty() {
            return;
        }
        let settings = ModelSettings {
            model: self.settings.model.clone(),
            device: self.settings.device.clone(),
            backend: self.settings.backend,
            threads: self.settings.threads,
            preload: true,
            ..ModelSettings::default()
        };
        let loaded = resolve_model(&settings.model, &ResolveOptions::default())
            .and_then(|files| Classifier::load(files, &settings, batching))
            .and_then(|classifier| {
                let map = label_map(classifier.labels());
                if map.iter().all(Option::is_none) {
                    return Err(EngineError::Unsupported(format!(
                        "none of the classifier's labels ({}) is one of {}",
                        classifier.labels().join(", "),
                        EMOTIONS.join(", ")
                    )));
                }
                Ok(LoadedClassifier { classifier, map })
            });
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *state = match loaded {
            Ok(c) => ModelState::Ready(Arc::new(c)),
            Err(e) => {
                tracing::error!(model = %self.settings.model, error = %e, "emotion model failed to load; the lexicon answers");
                ModelState::Failed(e.to_string())
            }
        };
    }

    fn model(&self) -> Result<Arc<LoadedClassifier>, &'static str> {
        match &*self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner) {
            ModelState::Ready(c) => Ok(Arc::clone(c)),
            ModelState::None => Err("no_model"),
            ModelState::Loading => Err("model_loading"),
            ModelState::Failed(_) => Err("model_failed"),
        }
    }

    /// Whether `/ready` should wait: a configured, preloaded model still loading.
    pub fn readiness(&self) -> Result<(), String> {
        match &*self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner) {
            ModelState::Loading if self.settings.preload => {
                Err(format!("emotion model {} is loading", self.settings.model))
            }
            _ => Ok(()),
        }
    }

    /// Whether `opts` would use the classifier now (so a lexicon answer is a
    /// temporary fallback that must not be cached).
    pub fn expects_model(&self, opts: ResolvedOptions) -> bool {
        self.model_for(opts).is_ok()
    }

    /// Model id and revision when the classifier is loaded (for cache keys and `/info`).
    pub fn model_revision(&self) -> Option<String> {
        self.model().ok().map(|c| format!("{}@{}", c.classifier.info().id, c.classifier.info().revision))
    }

    /// The classifier's batcher totals, when it is loaded.
    pub fn model_stats(&self) -> Option<osprey_engine::BatcherStats> {
        self.model().ok().map(|c| c.classifier.stats())
    }

    /// A short description of the classifier's state.
    pub fn model_status(&self) -> String {
        match &*self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner) {
            ModelState::None => "none".into(),
            ModelState::Loading => "loading".into(),
            ModelState::Ready(c) => format!("ready ({}, {} head)", c.classifier.info().id, c.classifier.head_family()),
            ModelState::Failed(e) => format!("failed: {e}"),
        }
    }

    pub fn resolve(&self, o: &EmotionOptions) -> ApiResult<ResolvedOptions> {
        let r = ResolvedOptions {
            enable_model: o.enable_model.unwrap_or(self.settings.enable_model),
            enable_vader: o.enable_vader.unwrap_or(self.settings.enable_vader),
            model_weight: o.model_weight.unwrap_or(self.settings.model_weight),
            vader_weight: o.vader_weight.unwrap_or(self.settings.vader_weight),
        };
        check_weights(r.model_weight, r.vader_weight).map_err(ApiError::validation)?;
        Ok(r)
    }

    /// The lexicon's answer for one text.
    pub fn lexicon(&self, text: &str) -> EmotionOutcome {
        EmotionOutcome { dist: self.lexicon.score(text).dist, path: EmotionPath::Lexicon }
    }

    /// The classifier to use for `opts`, or the reason the lexicon answers.
    pub fn model_for(&self, opts: ResolvedOptions) -> Result<Arc<LoadedClassifier>, &'static str> {
        if !opts.enable_model {
            return Err("disabled");
        }
        self.model()
    }

    /// Counts `n` answers that came from the lexicon for `reason`.
    pub fn record_fallback(&self, reason: &'static str, n: usize) {
        metrics::counter!(m::EMOTION_FALLBACKS_TOTAL, "reason" => reason).increment(n as u64);
        metrics::counter!(m::EMOTION_PATH_TOTAL, "path" => "lexicon").increment(n as u64);
        self.count(n, reason != "disabled");
    }

    /// Emotion of each text through `model`. `sentiments` are the texts'
    /// VADER scores (for the ensemble). `truncation` applies at the
    /// classifier's 512-token limit. If the model call fails, the lexicon
    /// answers instead.
    pub async fn classify(
        &self,
        model: &LoadedClassifier,
        texts: &[&str],
        sentiments: &[Sentiment],
        opts: ResolvedOptions,
        truncation: Truncation,
    ) -> Vec<EmotionOutcome> {
        if texts.is_empty() {
            return Vec::new();
        }
        if opts.model_weight <= 0.0 && opts.ensemble() && sentiments.len() == texts.len() {
            // A zero-weight model adds nothing to the blend: skip the call.
            metrics::counter!(m::EMOTION_PATH_TOTAL, "path" => "ensemble").increment(texts.len() as u64);
            self.count(texts.len(), false);
            return sentiments
                .iter()
                .map(|s| EmotionOutcome { dist: vader_emotion(s), path: EmotionPath::Ensemble })
                .collect();
        }
        let owned: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        let preds = match model.classifier.classify(owned, truncation).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "emotion model call failed; the lexicon answers");
                let reason = match e {
                    EngineError::Overloaded(_) => "overloaded",
                    EngineError::Timeout(_) => "timeout",
                    _ => "model_error",
                };
                self.record_fallback(reason, texts.len());
                return texts.iter().map(|t| self.lexicon(t)).collect();
            }
        };
        let ensemble = opts.ensemble();
        let path = if ensemble { EmotionPath::Ensemble } else { EmotionPath::Model };
        metrics::counter!(m::EMOTION_PATH_TOTAL, "path" => if ensemble { "ensemble" } else { "model" })
            .increment(texts.len() as u64);
        self.count(texts.len(), false);
        preds
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let model_dist = canonical(&p.probabilities, &model.map);
                let dist = match sentiments.get(i) {
                    Some(s) if ensemble => {
                        blend(&[(opts.model_weight, &model_dist), (opts.vader_weight, &vader_emotion(s))])
                    }
                    _ => model_dist,
                };
                EmotionOutcome { dist, path }
            })
            .collect()
    }
}

/// Maps model labels onto the seven classes by name (case-insensitive, with
/// the usual synonyms).
fn label_map(labels: &[String]) -> Vec<Option<usize>> {
    labels
        .iter()
        .map(|l| {
            let l = l.trim().to_ascii_lowercase();
            let canonical = match l.as_str() {
                "angry" | "anger" | "rage" => "anger",
                "disgust" | "disgusted" => "disgust",
                "fear" | "fearful" | "afraid" | "scared" => "fear",
                "joy" | "happy" | "happiness" | "joyful" => "joy",
                "neutral" | "none" | "no emotion" | "others" => "neutral",
                "sadness" | "sad" => "sadness",
                "surprise" | "surprised" => "surprise",
                other => other,
            };
            EMOTIONS.iter().position(|e| *e == canonical)
        })
        .collect()
}

/// The model's probabilities on the seven classes (labels outside them are
/// dropped and the rest renormalised).
fn canonical(probabilities: &[f32], map: &[Option<usize>]) -> EmotionDist {
    let mut p = [0f32; 7];
    for (prob, slot) in probabilities.iter().zip(map) {
        if let Some(i) = slot {
            p[*i] += prob;
        }
    }
    let sum: f32 = p.iter().sum();
    if sum <= 0.0 {
        return EmotionDist::neutral();
    }
    p.iter_mut().for_each(|x| *x /= sum);
    EmotionDist(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_map_by_name_and_synonym() {
        let labels: Vec<String> =
            ["Anger", "happy", "sadness", "other", "neutral"].iter().map(|s| s.to_string()).collect();
        assert_eq!(label_map(&labels), vec![Some(0), Some(3), Some(5), None, Some(4)]);
    }

    #[test]
    fn canonical_renormalises_over_known_labels() {
        let d = canonical(&[0.2, 0.2, 0.6], &[Some(0), None, Some(3)]);
        assert!((d.0[0] - 0.25).abs() < 1e-6 && (d.0[3] - 0.75).abs() < 1e-6);
        assert_eq!(canonical(&[1.0], &[None]), EmotionDist::neutral());
    }
}
