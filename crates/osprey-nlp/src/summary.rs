//! Extractive summaries: scoring sentences by how central they are.
//!
//! A summary keeps the sentences that best represent the whole text. Each
//! sentence is a vector (an embedding from the engine, or a TF-IDF vector when
//! no model is loaded) and gets a centrality score; [`top_k_in_order`] keeps
//! the best in reading order. Three centralities: cosine to the centroid of
//! the normalised vectors (the centroid summariser of Radev et al.); LexRank
//! (Erkan & Radev 2004, "LexRank: Graph-based lexical centrality as salience
//! in text summarization", JAIR 22), PageRank over the graph linking sentences
//! whose cosine reaches [`LEXRANK_THRESHOLD`]; and TextRank (Mihalcea & Tarau
//! 2004, "TextRank: Bringing order into texts", EMNLP), PageRank over edges
//! weighted by the (non-negative) cosine. The graph methods cost O(n²) in time
//! and memory, so above [`MAX_GRAPH_SENTENCES`] they fall back to the centroid.
//! Everything is deterministic and total: empty input gives empty output, zero
//! (or non-finite) vectors and sentences without content words score 0.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// LexRank links two sentences when their cosine is at least this. Erkan &
/// Radev found 0.1 the best of the thresholds they tried on DUC 2003/2004.
pub const LEXRANK_THRESHOLD: f64 = 0.1;

/// PageRank damping: the probability of following an edge rather than
/// jumping to a random sentence.
pub const DAMPING: f64 = 0.85;

/// The most (non-zero) sentences LexRank and TextRank rank as a graph; above
/// it they return centroid scores. 2,000 sentences is a 32 MB similarity
/// matrix and about 2·10⁶ dot products.
pub const MAX_GRAPH_SENTENCES: usize = 2_000;

/// Power iteration stops when the L1 change of the ranks drops below this…
const CONVERGENCE: f64 = 1e-6;
/// …or after this many iterations.
const MAX_ITERATIONS: usize = 100;

/// How sentence centrality is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Centrality {
    /// Cosine to the mean of all sentence vectors.
    #[default]
    Centroid,
    /// LexRank: PageRank over the thresholded cosine graph.
    Lexrank,
    /// TextRank: PageRank over the weighted cosine graph.
    Textrank,
}

/// One centrality score per vector (vectors need not be normalised).
///
/// Centroid scores are cosines in [-1, 1] to the mean of the L2-normalised
/// vectors (all 0 when that mean is the zero vector). Graph scores are the
/// PageRank stationary distribution over the non-zero vectors (they sum to 1);
/// the graph has no self-loops, a sentence without edges spreads its rank
/// evenly, and LexRank's transition rows are normalised by degree, TextRank's
/// by total edge weight. Vectors of different lengths are compared over their
/// common prefix (missing components read as 0).
pub fn centrality_scores(vectors: &[Vec<f32>], method: Centrality) -> Vec<f64> {
    let dim = vectors.iter().map(Vec::len).max().unwrap_or(0);
    let mut units = vec![0.0; vectors.len() * dim];
    let mut active = Vec::new();
    for (i, (vector, unit)) in vectors.iter().zip(units.chunks_exact_mut(dim.max(1))).enumerate() {
        if normalise_into(vector, unit) {
            active.push(i);
        }
    }
    rank(&Dense { units, dim }, vectors.len(), &active, method)
}

/// The no-model fallback: centrality over TF-IDF vectors of the sentences.
///
/// Words are maximal runs of alphanumeric characters (apostrophes inside a
/// word are dropped, so "don't" is "dont"), lowercased; stop words and
/// one-character words are not content. A term's weight in a sentence is
/// `(1 + ln tf) · (ln((1 + n) / (1 + df)) + 1)` over the `n` sentences given,
/// and each sentence vector is L2-normalised before [`centrality_scores`]'s
/// methods run on the sparse cosines.
pub fn tfidf_scores(sentences: &[&str], method: Centrality) -> Vec<f64> {
    let mut vocabulary: HashMap<String, usize> = HashMap::new();
    let terms: Vec<Vec<usize>> = sentences
        .iter()
        .map(|sentence| {
            let mut ids: Vec<usize> = content_words(sentence)
                .map(|word| {
                    let next = vocabulary.len();
                    *vocabulary.entry(word).or_insert(next)
                })
                .collect();
            ids.sort_unstable();
            ids
        })
        .collect();

    let mut document_frequency = vec![0usize; vocabulary.len()];
    for ids in &terms {
        for group in ids.chunk_by(|a, b| a == b) {
            document_frequency[group[0]] += 1;
        }
    }
    let n = sentences.len() as f64;
    let idf: Vec<f64> = document_frequency.iter().map(|&df| ((1.0 + n) / (1.0 + df as f64)).ln() + 1.0).collect();

    let mut active = Vec::new();
    let rows: Vec<Vec<(usize, f64)>> = terms
        .iter()
        .enumerate()
        .map(|(i, ids)| {
            let mut row: Vec<(usize, f64)> =
                ids.chunk_by(|a, b| a == b).map(|g| (g[0], (1.0 + (g.len() as f64).ln()) * idf[g[0]])).collect();
            let norm = row.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|(_, w)| *w /= norm);
                active.push(i);
            }
            row
        })
        .collect();
    rank(&Sparse { rows, dim: vocabulary.len() }, sentences.len(), &active, method)
}

/// Indices of the `k` best scores, in document order (ties: earlier first).
pub fn top_k_in_order(scores: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx.sort_unstable();
    idx
}

/// Unit vectors that can be compared pairwise and with their centroid.
trait UnitVectors {
    /// Cosine between vectors `i` and `j`.
    fn cosine(&self, i: usize, j: usize) -> f64;
    /// Each listed vector's cosine to the sum of the listed vectors (0 when
    /// that sum is zero).
    fn centroid_cosines(&self, active: &[usize]) -> Vec<f64>;
}

/// Row-major unit vectors, zero rows for zero inputs.
struct Dense {
    units: Vec<f64>,
    dim: usize,
}

impl Dense {
    fn row(&self, i: usize) -> &[f64] {
        &self.units[i * self.dim..(i + 1) * self.dim]
    }
}

impl UnitVectors for Dense {
    fn cosine(&self, i: usize, j: usize) -> f64 {
        dot(self.row(i), self.row(j))
    }

    fn centroid_cosines(&self, active: &[usize]) -> Vec<f64> {
        let mut centroid = vec![0.0; self.dim];
        for &i in active {
            centroid.iter_mut().zip(self.row(i)).for_each(|(c, u)| *c += u);
        }
        let norm = dot(&centroid, &centroid).sqrt();
        active.iter().map(|&i| if norm > 0.0 { dot(self.row(i), &centroid) / norm } else { 0.0 }).collect()
    }
}

/// Unit vectors as (term, weight) lists sorted by term.
struct Sparse {
    rows: Vec<Vec<(usize, f64)>>,
    dim: usize,
}

impl UnitVectors for Sparse {
    fn cosine(&self, i: usize, j: usize) -> f64 {
        let (a, b) = (&self.rows[i], &self.rows[j]);
        let (mut x, mut y, mut total) = (0, 0, 0.0);
        while let (Some(&(ta, wa)), Some(&(tb, wb))) = (a.get(x), b.get(y)) {
            match ta.cmp(&tb) {
                std::cmp::Ordering::Less => x += 1,
                std::cmp::Ordering::Greater => y += 1,
                std::cmp::Ordering::Equal => {
                    total += wa * wb;
                    x += 1;
                    y += 1;
                }
            }
        }
        total
    }

    fn centroid_cosines(&self, active: &[usize]) -> Vec<f64> {
        let mut centroid = vec![0.0; self.dim];
        for &i in active {
            for &(term, weight) in &self.rows[i] {
                centroid[term] += weight;
            }
        }
        let norm = dot(&centroid, &centroid).sqrt();
        let cosine = |i: usize| self.rows[i].iter().map(|&(term, weight)| weight * centroid[term]).sum::<f64>() / norm;
        active.iter().map(|&i| if norm > 0.0 { cosine(i) } else { 0.0 }).collect()
    }
}

/// Scores for `n` sentences of which only those in `active` (ascending) are
/// non-zero; the rest score 0.
fn rank(vectors: &impl UnitVectors, n: usize, active: &[usize], method: Centrality) -> Vec<f64> {
    let ranks = match method {
        Centrality::Lexrank | Centrality::Textrank if active.len() <= MAX_GRAPH_SENTENCES => {
            pagerank(&similarity_graph(vectors, active, method), active.len())
        }
        _ => vectors.centroid_cosines(active),
    };
    let mut scores = vec![0.0; n];
    for (&i, r) in active.iter().zip(ranks) {
        scores[i] = if r.is_finite() { r } else { 0.0 };
    }
    scores
}

/// The symmetric edge-weight matrix (row-major, zero diagonal) over `active`.
fn similarity_graph(vectors: &impl UnitVectors, active: &[usize], method: Centrality) -> Vec<f64> {
    let m = active.len();
    let mut weights = vec![0.0; m * m];
    for (a, &i) in active.iter().enumerate() {
        for (b, &j) in active.iter().enumerate().skip(a + 1) {
            let cosine = vectors.cosine(i, j).clamp(-1.0, 1.0);
            let weight = match method {
                Centrality::Lexrank if cosine >= LEXRANK_THRESHOLD => 1.0,
                Centrality::Lexrank => 0.0,
                _ => cosine.max(0.0),
            };
            weights[a * m + b] = weight;
            weights[b * m + a] = weight;
        }
    }
    weights
}

/// PageRank by power iteration over a symmetric weight matrix; a node without
/// edges hands its rank to every node equally.
fn pagerank(weights: &[f64], m: usize) -> Vec<f64> {
    if m == 0 {
        return Vec::new();
    }
    let out_weight: Vec<f64> = weights.chunks_exact(m).map(|row| row.iter().sum()).collect();
    let uniform = 1.0 / m as f64;
    let mut ranks = vec![uniform; m];
    let mut shares = vec![0.0; m];
    for _ in 0..MAX_ITERATIONS {
        let mut dangling = 0.0;
        for ((share, &r), &out) in shares.iter_mut().zip(&ranks).zip(&out_weight) {
            if out > 0.0 {
                *share = r / out;
            } else {
                *share = 0.0;
                dangling += r;
            }
        }
        let teleport = (1.0 - DAMPING + DAMPING * dangling) * uniform;
        let mut change = 0.0;
        // Row j of a symmetric matrix holds the weights of the edges into j.
        for (r, row) in ranks.iter_mut().zip(weights.chunks_exact(m)) {
            let next = teleport + DAMPING * dot(row, &shares);
            change += (next - *r).abs();
            *r = next;
        }
        if change < CONVERGENCE {
            break;
        }
    }
    ranks
}

/// Writes `vector / |vector|` into `unit`; false (leaving `unit` zero) for a
/// zero or non-finite vector.
fn normalise_into(vector: &[f32], unit: &mut [f64]) -> bool {
    if vector.iter().any(|x| !x.is_finite()) {
        return false;
    }
    let norm = vector.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    if !(norm > 0.0 && norm.is_finite()) {
        return false;
    }
    unit.iter_mut().zip(vector).for_each(|(u, &x)| *u = f64::from(x) / norm);
    true
}

/// Dot product with four independent accumulators, which lets the compiler
/// vectorise the loop without reordering a single running sum.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let (a, b) = if a.len() <= b.len() { (a, &b[..a.len()]) } else { (&a[..b.len()], b) };
    let (chunks_a, chunks_b) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = chunks_a.remainder().iter().zip(chunks_b.remainder()).map(|(x, y)| x * y).sum();
    let mut lanes = [0.0; 4];
    for (x, y) in chunks_a.zip(chunks_b) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

/// Lowercased content words of a sentence.
fn content_words(sentence: &str) -> impl Iterator<Item = String> + '_ {
    sentence
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '\u{2019}'))
        .map(|word| word.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>())
        .filter(|word| word.chars().nth(1).is_some() && STOP_WORDS.binary_search(&word.as_str()).is_err())
}

/// English function words, with apostrophes dropped as the tokeniser drops
/// them. Sorted, for binary search.
#[rustfmt::skip]
const STOP_WORDS: &[&str] = &[
    "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "arent", "as", "at",
    "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "cant", "could",
    "couldnt", "did", "didnt", "do", "does", "doesnt", "doing", "dont", "down", "during", "each", "either", "else",
    "even", "ever", "every", "few", "for", "from", "further", "had", "hadnt", "has", "hasnt", "have", "havent",
    "having", "he", "her", "here", "heres", "hers", "herself", "hes", "him", "himself", "his", "how", "however", "if",
    "im", "in", "into", "is", "isnt", "it", "its", "itself", "ive", "just", "let", "lets", "me", "might", "more",
    "most", "much", "must", "my", "myself", "neither", "no", "nor", "not", "now", "of", "off", "on", "once", "only",
    "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "shes", "should", "shouldnt", "so",
    "some", "still", "such", "than", "that", "thats", "the", "their", "theirs", "them", "themselves", "then", "there",
    "theres", "these", "they", "theyd", "theyll", "theyre", "theyve", "this", "those", "though", "through", "thus",
    "to", "too", "under", "until", "up", "upon", "us", "very", "was", "wasnt", "we", "were", "werent", "weve", "what",
    "whats", "when", "where", "whether", "which", "while", "who", "whom", "whose", "why", "will", "with", "within",
    "without", "wont", "would", "wouldnt", "yet", "you", "youd", "youll", "your", "youre", "yours", "yourself",
    "yourselves", "youve",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted_and_unique() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn tokeniser_lowercases_joins_apostrophes_and_drops_stop_words() {
        let words: Vec<String> = content_words("Don't PANIC: the Café's 42 towels, isn’t it? A b c").collect();
        assert_eq!(words, ["panic", "cafés", "42", "towels"]);
    }

    #[test]
    fn dot_handles_every_length() {
        for len in 0..11 {
            let a: Vec<f64> = (0..len).map(|i| i as f64).collect();
            let expected: f64 = a.iter().map(|x| x * x).sum();
            assert_eq!(dot(&a, &a), expected);
        }
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[1.0]), 1.0);
    }

    #[test]
    fn pagerank_sums_to_one_and_spreads_dangling_rank() {
        // Edges 0–1 and 1–2; node 3 is isolated.
        let weights = [0., 1., 0., 0., 1., 0., 1., 0., 0., 1., 0., 0., 0., 0., 0., 0.];
        let ranks = pagerank(&weights, 4);
        assert!((ranks.iter().sum::<f64>() - 1.0).abs() < 1e-6);
        assert!(ranks[1] > ranks[0] && ranks[0] > ranks[3]);
        assert!((ranks[0] - ranks[2]).abs() < 1e-12);
        assert!(pagerank(&[], 0).is_empty());
    }
}
