//! The shipped emotion lexicon: its header, its size, and that every entry is
//! reachable through the scorer exactly as written.

use osprey_nlp::emotion::{EmotionLexicon, EMOTIONS, NEUTRAL};

const TSV: &str = include_str!("../data/emotion_lexicon.tsv");

/// `(line number, term, emotion index, weight)` of every entry.
fn entries() -> Vec<(usize, &'static str, usize, f32)> {
    TSV.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(n, l)| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "line {}: {l:?}", n + 1);
            let class = EMOTIONS.iter().position(|&e| e == f[1]).unwrap_or(NEUTRAL);
            (n + 1, f[0], class, f[2].parse().unwrap_or(f32::NAN))
        })
        .collect()
}

#[test]
fn header_states_origin_format_and_licence() {
    let header: String = TSV.lines().take_while(|l| l.starts_with('#')).collect::<Vec<_>>().join("\n");
    for needle in ["osprey", "Apache-2.0", "term <TAB> emotion <TAB> weight"] {
        assert!(header.contains(needle), "header lacks {needle:?}");
    }
}

#[test]
fn every_entry_scores_its_own_emotion() {
    let lex = EmotionLexicon::builtin();
    for (line, term, class, weight) in entries() {
        assert!(class != NEUTRAL && weight > 0.0 && weight <= 1.0, "line {line}: {term:?}");
        let score = lex.score(term);
        assert!(score.matches >= 1, "line {line}: {term:?} matches nothing");
        assert!(score.dist.0[class] > 0.0, "line {line}: {term:?} gives no {}: {score:?}", EMOTIONS[class]);
    }
}

#[test]
fn coverage_is_broad() {
    let lex = EmotionLexicon::builtin();
    let per = lex.entries_per_emotion();
    assert_eq!(per.iter().sum::<usize>(), entries().len());
    assert!(lex.len() >= 1200, "{} entries", lex.len());
    for (class, &n) in per.iter().enumerate() {
        if class != NEUTRAL {
            assert!(n >= 150, "{}: only {n} entries", EMOTIONS[class]);
        }
    }
    let phrases = entries().iter().filter(|e| e.1.contains(' ')).count();
    assert!(phrases >= 200, "only {phrases} phrases");
}
