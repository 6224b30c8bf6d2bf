//! Extractive-summary scenarios: centroid, LexRank, TextRank, TF-IDF, top-k.

use std::time::Instant;

use osprey_nlp::summary::{centrality_scores, tfidf_scores, top_k_in_order, Centrality};

const METHODS: [Centrality; 3] = [Centrality::Centroid, Centrality::Lexrank, Centrality::Textrank];

/// A 64-bit linear congruential generator (Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    /// Uniform in [-1, 1).
    fn next_signed(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u32 << 23) as f32) - 1.0
    }
}

fn best(scores: &[f64]) -> usize {
    top_k_in_order(scores, 1).first().copied().unwrap_or(usize::MAX)
}

#[test]
fn the_vector_nearest_the_centroid_ranks_first() {
    // Three clusters around the axes, and one vector between all of them.
    let vectors =
        vec![vec![1.0, 0.1, 0.0], vec![0.0, 2.0, 0.2], vec![0.1, 0.0, 3.0], vec![0.9, 1.0, 1.1], vec![2.0, 0.0, 0.1]];
    let scores = centrality_scores(&vectors, Centrality::Centroid);
    assert_eq!(best(&scores), 3);
    assert!(scores.iter().all(|s| (-1.0..=1.0 + 1e-12).contains(s)));
    // Scale does not matter: only directions do.
    let scaled: Vec<Vec<f32>> = vectors.iter().map(|v| v.iter().map(|x| x * 7.0).collect()).collect();
    let rescored = centrality_scores(&scaled, Centrality::Centroid);
    assert!(scores.iter().zip(&rescored).all(|(a, b)| (a - b).abs() < 1e-6));
}

#[test]
fn graph_methods_favour_the_hub_of_a_star() {
    // Leaves are orthogonal; the hub is their sum and has cosine 0.45 to each.
    let mut vectors: Vec<Vec<f32>> = (0..5).map(|i| (0..5).map(|j| if i == j { 1.0 } else { 0.0 }).collect()).collect();
    vectors.insert(2, vec![1.0; 5]);
    for method in METHODS {
        let scores = centrality_scores(&vectors, method);
        assert_eq!(best(&scores), 2, "{method:?}: {scores:?}");
        let leaves: Vec<f64> = scores.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, s)| *s).collect();
        assert!(leaves.iter().all(|s| (s - leaves[0]).abs() < 1e-9), "{method:?}: {scores:?}");
    }
    for method in [Centrality::Lexrank, Centrality::Textrank] {
        let total: f64 = centrality_scores(&vectors, method).iter().sum();
        assert!((total - 1.0).abs() < 1e-6);
    }
}

#[test]
fn lexrank_ignores_weak_links_that_textrank_counts() {
    // 0 and 1 are near-duplicates; 2 links weakly (cosine < 0.1) to both.
    let vectors = vec![vec![1.0, 0.0, 0.05], vec![1.0, 0.01, 0.05], vec![0.0, 1.0, 0.09]];
    let lexrank = centrality_scores(&vectors, Centrality::Lexrank);
    let textrank = centrality_scores(&vectors, Centrality::Textrank);
    assert!(lexrank[2] < lexrank[0]);
    assert!(textrank[2] > 0.0);
}

#[test]
fn zero_and_non_finite_vectors_score_zero() {
    let vectors = vec![vec![0.0; 3], vec![1.0, 0.0, 0.0], vec![f32::NAN, 1.0, 0.0], vec![0.9, 0.1, 0.0], vec![]];
    for method in METHODS {
        let scores = centrality_scores(&vectors, method);
        assert_eq!(scores.len(), 5);
        assert_eq!((scores[0], scores[2], scores[4]), (0.0, 0.0, 0.0), "{method:?}");
        assert!(scores[1] > 0.0 && scores[3] > 0.0);
        assert!(scores.iter().all(|s| s.is_finite()));
    }
}

#[test]
fn empty_and_degenerate_inputs() {
    for method in METHODS {
        assert!(centrality_scores(&[], method).is_empty());
        assert!(tfidf_scores(&[], method).is_empty());
        assert_eq!(centrality_scores(&[vec![]], method), [0.0]);
        assert_eq!(centrality_scores(&[vec![0.5, 0.5]], method).len(), 1);
        // Opposite vectors: the centroid is zero, every cosine to it 0.
        let opposite = centrality_scores(&[vec![1.0, 0.0], vec![-1.0, 0.0]], method);
        assert!(opposite.iter().all(|s| s.is_finite()) && opposite.len() == 2);
        // Vectors of different lengths compare over their common prefix.
        assert_eq!(centrality_scores(&[vec![1.0], vec![1.0, 1.0, 1.0]], method).len(), 2);
        assert_eq!(tfidf_scores(&["", "the and of", "!!!"], method), [0.0; 3]);
    }
}

#[test]
fn tfidf_picks_the_sentence_sharing_most_content_words() {
    let sentences = [
        "The cat sat on the mat.",
        "A dog chased the ball around the park.",
        "The cat and the dog played on the mat in the garden.",
        "Stock prices fell sharply on Tuesday.",
        "The dog slept in the garden.",
    ];
    for method in METHODS {
        let scores = tfidf_scores(&sentences, method);
        assert_eq!(scores.len(), sentences.len());
        assert_eq!(best(&scores), 2, "{method:?}: {scores:?}");
        let unrelated = scores.iter().enumerate().all(|(i, s)| i == 3 || *s > scores[3]);
        assert!(unrelated, "{method:?}: the stock news should rank last: {scores:?}");
    }
}

#[test]
fn graph_methods_fall_back_to_the_centroid_above_the_cap() {
    let mut rng = Lcg(3);
    let vectors: Vec<Vec<f32>> = (0..2_001).map(|_| (0..8).map(|_| rng.next_signed()).collect()).collect();
    let centroid = centrality_scores(&vectors, Centrality::Centroid);
    assert_eq!(centrality_scores(&vectors, Centrality::Lexrank), centroid);
}

#[test]
fn top_k_keeps_document_order_and_breaks_ties_early() {
    let scores = [0.2, 0.9, 0.5, 0.9, 0.1];
    assert_eq!(top_k_in_order(&scores, 2), [1, 3]);
    assert_eq!(top_k_in_order(&scores, 3), [1, 2, 3]);
    assert_eq!(top_k_in_order(&[0.5, 0.5, 0.5], 2), [0, 1]);
    assert_eq!(top_k_in_order(&scores, 10), [0, 1, 2, 3, 4]);
    assert!(top_k_in_order(&scores, 0).is_empty());
    assert!(top_k_in_order(&[], 3).is_empty());
}

#[test]
fn scores_are_deterministic() {
    let mut rng = Lcg(11);
    let vectors: Vec<Vec<f32>> = (0..60).map(|_| (0..16).map(|_| rng.next_signed()).collect()).collect();
    for method in METHODS {
        assert_eq!(centrality_scores(&vectors, method), centrality_scores(&vectors, method));
    }
}

/// Rough timings, not assertions:
/// `cargo test --release -p osprey-nlp --test summary -- --ignored --nocapture`.
#[test]
#[ignore = "timing report; run in release with --nocapture"]
fn timing_centrality_1000_vectors_of_dim_384() {
    let mut rng = Lcg(42);
    let vectors: Vec<Vec<f32>> = (0..1_000).map(|_| (0..384).map(|_| rng.next_signed()).collect()).collect();
    for method in METHODS {
        let start = Instant::now();
        let scores = centrality_scores(&vectors, method);
        println!("centrality of 1,000 × 384, {method:?}: {:?} (best {})", start.elapsed(), best(&scores));
    }
    let words = ["river", "bank", "money", "loan", "water", "fish", "stream", "credit", "boat", "rate"];
    let sentences: Vec<String> = (0..1_000)
        .map(|i| (0..12).map(|j| words[(i * 7 + j * j * 3 + i / 10) % words.len()]).collect::<Vec<_>>().join(" "))
        .collect();
    let sentences: Vec<&str> = sentences.iter().map(String::as_str).collect();
    for method in METHODS {
        let start = Instant::now();
        let scores = tfidf_scores(&sentences, method);
        println!("tfidf of 1,000 sentences, {method:?}: {:?} (best {})", start.elapsed(), best(&scores));
    }
}
