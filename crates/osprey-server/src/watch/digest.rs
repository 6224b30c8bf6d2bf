//! The digest: per topic, the posts kept since the last digest, their mean
//! sentiment and emotion mix, the best-matching posts, and a summary: the
//! most central sentences of the posts' own summaries (TF-IDF centroid).
//!
//! The collection lives in memory: a restart loses at most one period.

use std::collections::BTreeMap;

use osprey_nlp::summary::{tfidf_scores, top_k_in_order, Centrality};
use serde_json::{json, Value};

use super::settings::DigestSettings;

/// Summary sentences kept per topic and period, to bound memory.
const MAX_SENTENCES: usize = 500;

#[derive(Default)]
struct TopicDigest {
    posts: u64,
    compound_sum: f64,
    with_sentiment: u64,
    labels: BTreeMap<String, u64>,
    /// (topic score, id, title), best first, at most `top`.
    best: Vec<(f32, String, String)>,
    sentences: Vec<String>,
}

/// What one kept post adds to the digest.
pub struct DigestEntry<'a> {
    pub topic: &'a str,
    pub score: f32,
    pub id: &'a str,
    pub title: &'a str,
    pub compound: Option<f64>,
    pub emotion: Option<&'a str>,
    pub summary: Vec<String>,
}

pub struct Digest {
    pub settings: DigestSettings,
    topics: BTreeMap<String, TopicDigest>,
    since: i64,
}

impl Digest {
    pub fn new(settings: DigestSettings, now: i64) -> Self {
        Self { settings, topics: BTreeMap::new(), since: now }
    }

    pub fn add(&mut self, e: DigestEntry<'_>) {
        let top = self.settings.top;
        let d = self.topics.entry(e.topic.to_string()).or_default();
        d.posts += 1;
        if let Some(c) = e.compound {
            d.compound_sum += c;
            d.with_sentiment += 1;
        }
        if let Some(l) = e.emotion {
            *d.labels.entry(l.to_string()).or_default() += 1;
        }
        let at = d.best.partition_point(|b| b.0 >= e.score);
        if at < top {
            d.best.insert(at, (e.score, e.id.to_string(), e.title.to_string()));
            d.best.truncate(top);
        }
        let room = MAX_SENTENCES.saturating_sub(d.sentences.len());
        d.sentences.extend(e.summary.into_iter().take(room));
    }

    /// The digest of the period ending `now` (`None` when nothing was kept),
    /// and a fresh period.
    pub fn take(&mut self, now: i64) -> Option<Value> {
        let topics = std::mem::take(&mut self.topics);
        let since = std::mem::replace(&mut self.since, now);
        if topics.is_empty() {
            return None;
        }
        let k = self.settings.sentences;
        let per_topic: Vec<Value> = topics
            .into_iter()
            .map(|(topic, d)| {
                let refs: Vec<&str> = d.sentences.iter().map(String::as_str).collect();
                let summary: Vec<&str> = if refs.len() <= k {
                    refs.clone()
                } else {
                    let scores = tfidf_scores(&refs, Centrality::Centroid);
                    top_k_in_order(&scores, k).into_iter().map(|i| refs[i]).collect()
                };
                json!({
                    "topic": topic,
                    "posts": d.posts,
                    "mean_compound": (d.with_sentiment > 0).then(|| d.compound_sum / d.with_sentiment as f64),
                    "emotions": d.labels,
                    "top_posts": d.best.iter().map(|(s, id, title)| json!({"id": id, "title": title, "score": s})).collect::<Vec<_>>(),
                    "summary": summary,
                })
            })
            .collect();
        Some(json!({ "since": since, "until": now, "topics": per_topic }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn entry<'a>(topic: &'a str, score: f32, id: &'a str, summary: &[&str]) -> DigestEntry<'a> {
        DigestEntry {
            topic,
            score,
            id,
            title: id,
            compound: Some(0.5),
            emotion: Some("joy"),
            summary: summary.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn groups_by_topic_keeps_the_best_posts_and_summarises() {
        let mut d = Digest::new(DigestSettings { every: Duration::from_secs(60), top: 2, sentences: 1 }, 0);
        d.add(entry("rust", 0.5, "a", &["Cargo builds are slow.", "Incremental builds help."]));
        d.add(entry("rust", 0.9, "b", &["Cargo builds are slow again."]));
        d.add(entry("rust", 0.7, "c", &[]));
        d.add(entry("sql", 0.6, "d", &["Indexes fix slow queries."]));
        let v = d.take(1_000).expect("digest");
        assert_eq!(v["since"], 0);
        assert_eq!(v["until"], 1_000);
        let rust = &v["topics"][0];
        assert_eq!(rust["topic"], "rust");
        assert_eq!(rust["posts"], 3);
        let ids: Vec<&str> = rust["top_posts"]
            .as_array()
            .expect("test value")
            .iter()
            .map(|p| p["id"].as_str().expect("test value"))
            .collect();
        assert_eq!(ids, ["b", "c"]);
        assert_eq!(rust["summary"].as_array().expect("test value").len(), 1);
        assert_eq!(rust["emotions"]["joy"], 3);
        assert_eq!(v["topics"][1]["summary"][0], "Indexes fix slow queries.");
        // The next period starts empty.
        assert!(d.take(2_000).is_none());
    }
}
