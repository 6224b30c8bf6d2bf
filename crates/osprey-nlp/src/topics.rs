//! Topic sets and scoring posts against them (the watcher's filter).
//!
//! A topic is a label plus example phrases. Every phrase (the label counts as
//! one) has a unit-length embedding; a post's vector is the mean of its
//! sentences' unit vectors, renormalised. A post's score on a topic is the
//! highest cosine between the post vector and any of the topic's phrases, so
//! a topic described by several distinct phrasings matches a post close to
//! any one of them. The best topic, its runner-up and the margin between them
//! tell a caller both what a post is about and how sure that is.

use crate::error::NlpError;

/// Unit-length phrase vectors grouped by topic.
#[derive(Debug, Clone)]
pub struct TopicIndex {
    labels: Vec<String>,
    /// Topic index of each phrase.
    phrase_topic: Vec<usize>,
    /// Phrase vectors, row-major, `dim` each.
    vectors: Vec<f32>,
    dim: usize,
}

/// How one vector scored against an index.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicScore {
    pub best: usize,
    pub score: f32,
    pub runner_up: Option<usize>,
    /// `score` minus the runner-up's score (or `score` itself with one topic).
    pub margin: f32,
    /// Score per topic, in label order.
    pub scores: Vec<f32>,
}

impl TopicIndex {
    /// `phrases` pairs a topic index with a phrase vector (normalised here).
    pub fn new(labels: Vec<String>, phrases: Vec<(usize, Vec<f32>)>) -> Result<Self, NlpError> {
        if labels.is_empty() {
            return Err(NlpError::InvalidTopics("a topic set needs at least one topic".into()));
        }
        let dim = phrases.first().map_or(0, |(_, v)| v.len());
        if dim == 0 {
            return Err(NlpError::InvalidTopics("no phrase vectors".into()));
        }
        let mut covered = vec![false; labels.len()];
        let mut phrase_topic = Vec::with_capacity(phrases.len());
        let mut vectors = Vec::with_capacity(phrases.len() * dim);
        for (topic, mut v) in phrases {
            if topic >= labels.len() || v.len() != dim {
                return Err(NlpError::InvalidTopics(format!(
                    "phrase for topic {topic} has {} values; expected topic < {} and {dim} values",
                    v.len(),
                    labels.len()
                )));
            }
            normalize(&mut v);
            covered[topic] = true;
            phrase_topic.push(topic);
            vectors.extend_from_slice(&v);
        }
        if let Some(i) = covered.iter().position(|c| !c) {
            return Err(NlpError::InvalidTopics(format!("topic {:?} has no phrase vector", labels[i])));
        }
        Ok(Self { labels, phrase_topic, vectors, dim })
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Scores a unit-length `v` against every topic.
    pub fn score(&self, v: &[f32]) -> TopicScore {
        let mut scores = vec![f32::NEG_INFINITY; self.labels.len()];
        if v.len() == self.dim {
            for (row, &topic) in self.vectors.chunks_exact(self.dim).zip(&self.phrase_topic) {
                let s = dot(row, v);
                if s > scores[topic] {
                    scores[topic] = s;
                }
            }
        }
        scores.iter_mut().filter(|s| !s.is_finite()).for_each(|s| *s = 0.0);
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let best = order[0];
        let runner_up = order.get(1).copied();
        let margin = scores[best] - runner_up.map_or(0.0, |r| scores[r]);
        TopicScore { best, score: scores[best], runner_up, margin, scores }
    }
}

/// Dot product in 16 independent lanes. One running f32 sum cannot be
/// reordered, so it waits on each addition in turn; independent lanes let
/// the compiler keep several SIMD accumulators in flight.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    let mut acc = [0f32; LANES];
    for (x, y) in ac.zip(bc) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// The renormalised mean of unit vectors (each input normalised first):
/// a post's vector from its sentences' vectors.
pub fn mean_direction<'a>(vectors: impl IntoIterator<Item = &'a [f32]>) -> Vec<f32> {
    let mut acc: Vec<f32> = Vec::new();
    for v in vectors {
        if acc.is_empty() {
            acc = vec![0.0; v.len()];
        }
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if n > 0.0 && v.len() == acc.len() {
            for (a, x) in acc.iter_mut().zip(v) {
                *a += x / n;
            }
        }
    }
    normalize(&mut acc);
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_plain_sum_at_every_length() {
        for n in [0, 1, 15, 16, 17, 33, 384] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 10.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 10.0).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            assert!((f64::from(dot(&a, &b)) - want).abs() < 1e-4, "n = {n}");
        }
    }

    fn index() -> TopicIndex {
        TopicIndex::new(
            vec!["x".into(), "y".into(), "z".into()],
            vec![
                (0, vec![1.0, 0.0, 0.0]),
                (1, vec![0.0, 2.0, 0.0]),
                (1, vec![0.0, 1.0, 1.0]),
                (2, vec![0.0, 0.0, 1.0]),
            ],
        )
        .expect("valid index")
    }

    #[test]
    fn best_topic_takes_the_closest_phrase() {
        let s = index().score(&[0.0, 0.6, 0.8]);
        // y's second phrase (0, .707, .707) scores .99; z scores .8.
        assert_eq!(s.best, 1);
        assert!((s.score - 0.98995).abs() < 1e-4, "{s:?}");
        assert_eq!(s.runner_up, Some(2));
        assert!((s.margin - (s.score - 0.8)).abs() < 1e-6);
        assert!((s.scores[0] - 0.0).abs() < 1e-6);
    }

    #[test]
    fn ties_go_to_the_earlier_topic_and_wrong_dims_score_zero() {
        let s = index().score(&[0.0, 0.0]);
        assert_eq!((s.best, s.score, s.runner_up), (0, 0.0, Some(1)));
    }

    #[test]
    fn rejects_topics_without_phrases_and_bad_indices() {
        assert!(TopicIndex::new(vec!["a".into(), "b".into()], vec![(0, vec![1.0])]).is_err());
        assert!(TopicIndex::new(vec!["a".into()], vec![(3, vec![1.0])]).is_err());
        assert!(TopicIndex::new(vec![], vec![]).is_err());
        assert!(TopicIndex::new(vec!["a".into()], vec![(0, vec![1.0]), (0, vec![1.0, 2.0])]).is_err());
    }

    #[test]
    fn mean_direction_weights_sentences_equally() {
        let m = mean_direction([&[10.0f32, 0.0][..], &[0.0, 1.0][..]]);
        assert!((m[0] - m[1]).abs() < 1e-6 && (m[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert!(mean_direction(std::iter::empty()).is_empty());
    }
}
