//! Emotion classes, lexicon and blending. (skeleton: being implemented)

use serde::Serialize;

use crate::vader::Sentiment;

/// The seven classes, in the order every distribution uses.
pub const EMOTIONS: [&str; 7] = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"];
pub const NEUTRAL: usize = 4;

/// A probability distribution over [`EMOTIONS`] (sums to 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EmotionDist(pub [f32; 7]);

impl EmotionDist {
    /// All mass on neutral.
    pub fn neutral() -> Self {
        let mut p = [0.0; 7];
        p[NEUTRAL] = 1.0;
        Self(p)
    }

    /// Index and probability of the most likely class (first on ties).
    pub fn dominant(&self) -> (usize, f32) {
        let mut best = (0, self.0[0]);
        for (i, &p) in self.0.iter().enumerate().skip(1) {
            if p > best.1 {
                best = (i, p);
            }
        }
        best
    }
}

/// What the lexicon found in one text.
#[derive(Debug, Clone, PartialEq)]
pub struct LexiconScore {
    pub dist: EmotionDist,
    /// Lexicon entries (words or phrases) that matched.
    pub matches: usize,
}

/// osprey's own emotion lexicon.
pub struct EmotionLexicon {}

impl EmotionLexicon {
    /// The lexicon shipped inside the crate.
    pub fn builtin() -> &'static EmotionLexicon {
        unimplemented!("EmotionLexicon::builtin")
    }

    pub fn score(&self, text: &str) -> LexiconScore {
        let _ = text;
        unimplemented!("EmotionLexicon::score")
    }
}

/// The seven-class distribution derived from VADER's scores.
pub fn vader_emotion(sentiment: &Sentiment) -> EmotionDist {
    let _ = sentiment;
    unimplemented!("vader_emotion")
}

/// Weighted mean of distributions, renormalised; weights need not sum to 1.
pub fn blend(parts: &[(f32, &EmotionDist)]) -> EmotionDist {
    let mut acc = [0f32; 7];
    let mut total = 0f32;
    for (w, d) in parts {
        if *w <= 0.0 {
            continue;
        }
        total += w;
        for (a, p) in acc.iter_mut().zip(d.0) {
            *a += w * p;
        }
    }
    if total <= 0.0 {
        return EmotionDist::neutral();
    }
    let sum: f32 = acc.iter().sum();
    if sum <= 0.0 {
        return EmotionDist::neutral();
    }
    acc.iter_mut().for_each(|a| *a /= sum);
    EmotionDist(acc)
}
