//! Parity of the VADER port with `vaderSentiment` 3.3.2.
//!
//! `fixtures/vader/reference.json` holds the reference's scores for every
//! tweet of the VADER paper's corpora, samples of its Amazon, movie and NYT
//! sets and hand-written edge cases (written by
//! `scripts/reference/make_vader_fixture.py`). The lexicons come from
//! `models/vader/`, installed by `scripts/fetch-models`; without them the test
//! is skipped, except under `CI=true` where that is a failure.
//!
//! Throughput (a figure, never an assertion):
//! `cargo test --release -p osprey-nlp --test vader_parity -- --ignored --nocapture`

use std::path::{Path, PathBuf};
use std::time::Instant;

use osprey_nlp::vader::{Sentiment, Vader};
use serde::Deserialize;

const TOLERANCE: f64 = 1e-4;

#[derive(Deserialize)]
struct Fixture {
    vader_version: String,
    sources: std::collections::BTreeMap<String, usize>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    source: String,
    neg: f64,
    neu: f64,
    pos: f64,
    compound: f64,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The analyser, or `None` (after a loud message) when the lexicons are not
/// installed outside CI.
fn load_vader() -> Option<Vader> {
    let dir = repo_root().join("models/vader");
    let installed = dir.join(osprey_nlp::vader::LEXICON_FILE).is_file()
        && dir.join(osprey_nlp::vader::EMOJI_LEXICON_FILE).is_file();
    if !installed {
        let message = format!("VADER lexicons not found in {}; run scripts/fetch-models", dir.display());
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{message}");
        }
        eprintln!("SKIPPED: {message}");
        return None;
    }
    Some(Vader::from_dir(&dir).expect("the installed VADER lexicons load"))
}

fn load_fixture() -> Fixture {
    let path = repo_root().join("fixtures/vader/reference.json");
    let data = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&data).expect("fixtures/vader/reference.json parses")
}

fn matches(got: &Sentiment, case: &Case) -> bool {
    [(got.neg, case.neg), (got.neu, case.neu), (got.pos, case.pos), (got.compound, case.compound)]
        .iter()
        .all(|(a, b)| (a - b).abs() <= TOLERANCE)
}

fn shorten(text: &str) -> String {
    const MAX: usize = 160;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        format!("{:?}… ({} chars)", text.chars().take(MAX).collect::<String>(), text.chars().count())
    }
}

#[test]
fn every_fixture_case_matches_the_reference() {
    let Some(vader) = load_vader() else { return };
    let fixture = load_fixture();
    assert_eq!(fixture.vader_version, osprey_nlp::vader::REFERENCE_VERSION);
    let counted: usize = fixture.sources.values().sum();
    assert_eq!(counted, fixture.cases.len(), "source counts add up to the cases");
    assert!(fixture.cases.len() >= 6000, "the fixture is the full one");

    let mut failures = Vec::new();
    for case in &fixture.cases {
        let got = vader.polarity_scores(&case.text);
        if !matches(&got, case) {
            failures.push((case, got));
        }
    }
    if !failures.is_empty() {
        let mut report = format!("{} of {} cases differ from vaderSentiment:\n", failures.len(), fixture.cases.len());
        for (case, got) in failures.iter().take(10) {
            report.push_str(&format!(
                "  [{}] {}\n    want neg={} neu={} pos={} compound={}\n    got  neg={} neu={} pos={} compound={}\n",
                case.source,
                shorten(&case.text),
                case.neg,
                case.neu,
                case.pos,
                case.compound,
                got.neg,
                got.neu,
                got.pos,
                got.compound,
            ));
        }
        panic!("{report}");
    }
}

/// Texts per second over the fixture's corpus texts on one thread.
#[test]
#[ignore = "a throughput figure; run in release with --ignored --nocapture"]
fn throughput() {
    let Some(vader) = load_vader() else { return };
    let fixture = load_fixture();
    let texts: Vec<&str> = fixture.cases.iter().filter(|c| c.source != "edge").map(|c| c.text.as_str()).collect();
    let tweets: Vec<&str> = fixture.cases.iter().filter(|c| c.source == "tweets").map(|c| c.text.as_str()).collect();
    for (name, set) in [("tweets", &tweets), ("all corpus texts", &texts)] {
        let mut checksum = 0.0;
        for text in set.iter() {
            checksum += vader.polarity_scores(text).compound;
        }
        let rounds = 20;
        let start = Instant::now();
        for _ in 0..rounds {
            for text in set.iter() {
                checksum += vader.polarity_scores(std::hint::black_box(text)).compound;
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        let n = (rounds * set.len()) as f64;
        println!(
            "vader {name}: {} texts in {elapsed:.3}s = {:.0} texts/s ({:.2} µs/text, checksum {checksum:.1})",
            n,
            n / elapsed,
            elapsed / n * 1e6
        );
    }
}
