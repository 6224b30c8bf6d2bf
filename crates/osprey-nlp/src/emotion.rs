//! Emotion classes, osprey's emotion lexicon, the VADER-derived distribution
//! and blending.
//!
//! # The lexicon
//! `data/emotion_lexicon.tsv` was written for osprey by its authors and is
//! licensed Apache-2.0 like the rest of the project; no entry comes from
//! another lexicon. Each line is `term<TAB>emotion<TAB>weight`: a lowercase
//! word, a phrase, an emoji or an emoticon; one of the six non-neutral
//! classes; a weight in (0, 1]. A term may carry several emotions on separate
//! lines. The file is compiled in and parsed once ([`EmotionLexicon::builtin`]);
//! a malformed line is a bug, caught by a unit test that parses the file.
//!
//! # Scoring ([`EmotionLexicon::score`])
//! - **Tokens.** Lowercased words (letters, digits, inner apostrophes; `’` reads
//!   as `'`; a hyphen separates words, so `mind-blowing` matches the phrase
//!   `mind blowing`), emoji (one token per emoji, skin tones and variation
//!   selectors ignored, a ZWJ sequence falling back to its first emoji) and
//!   emoticons (a whole whitespace-separated chunk, trailing `.,!?;` allowed,
//!   or a chunk's tail as in `thanks:)`). Laughter is canonicalised (`hahahah`
//!   → `hahaha`, `lolol` → `lol`) and elongations collapsed (`soooo` → `so`,
//!   `goooood` → `good`), an elongated hit counting ×1.2.
//! - **Clauses.** `. , ; : ? ! …`, brackets, dashes, newlines and the words
//!   `but`/`however` end a clause; negation, modifiers and phrases never
//!   reach across one.
//! - **Matching.** At each token the longest phrase (up to six words) wins,
//!   then the single word, then its inflections where the base is listed:
//!   `-s`, `-es`, `-ies`/`-ied` (→ `-y`), `-ed`, `-ing` (also `+e` and doubled
//!   consonants: `hating`, `sobbed`), `-ly`, `-ily`, `-ically`, `-bly`/`-ply`
//!   (→ `-ble`/`-ple`); bases shorter than three letters never count.
//!   Modifier words (below) are never hits themselves.
//! - **Negation.** A negator (`not`, `no`, `never`, any `n't` form or its
//!   apostrophe-less spelling, `without`, `hardly`, `barely`, `scarcely`,
//!   `nothing`, `nobody`, `none`, `neither`, `nor`, `cannot`…) among the three
//!   tokens before a hit, in its clause and not itself part of a hit, negates
//!   it: joy turns into sadness at half weight (`not happy`), sadness into
//!   joy at 0.2 (`not sad` is only mildly positive), fear into joy at 0.1
//!   (relief; `not afraid` mostly cancels), and anger, disgust and surprise
//!   are cancelled. `never so …`/`never this …` is not a negation.
//! - **Intensity.** The two tokens before a hit may boost it (`very`, `so`,
//!   `really` ×1.3, `super` ×1.4, `extremely`, `utterly` ×1.5…) or damp it
//!   (`slightly`, `kinda`, `a bit`, `kind of` ×0.6, `somewhat` ×0.65…);
//!   `af` right after a hit ×1.4. A word in ALL CAPS (two letters or more) in
//!   a text that has lowercase letters counts ×1.3; each `!` closing the
//!   hit's clause adds 10% (at most three). The product is clamped to
//!   [0.2, 2.5].
//! - **Distribution.** Evidence per class is the sum of weighted hits. A
//!   neutral prior `k = 0.5 + 0.025 × tokens` keeps weak evidence neutral and
//!   lets one emotional word in a long text weigh less than in a tweet:
//!   `p(class) = evidence / (k + total)`, `p(neutral) = k / (k + total)`.
//!   No hit gives pure neutral.
//!
//! # VADER
//! [`vader_emotion`] maps VADER's `pos`/`neu`/`neg` proportions onto the
//! seven classes for the model+VADER ensemble: see [`VADER_NEG_SPLIT`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use serde::Serialize;

use crate::error::NlpError;
use crate::segment::{is_emoji_char, is_emoji_component, is_space};
use crate::vader::Sentiment;

/// The seven classes, in the order every distribution uses.
pub const EMOTIONS: [&str; 7] = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"];
pub const NEUTRAL: usize = 4;

const ANGER: usize = 0;
const DISGUST: usize = 1;
const FEAR: usize = 2;
const JOY: usize = 3;
const SADNESS: usize = 5;

/// How VADER's `neg` proportion is shared among anger, disgust, fear and
/// sadness (in that order; sums to 1). VADER's negative vocabulary is mostly
/// loss, hurt and general badness, and in social-media text sadness and anger
/// are the most frequent negative emotions, with fear rarer and disgust the
/// rarest; the split follows that prior. VADER cannot tell them apart, so the
/// ensemble leaves the choice to the model (70%) and this only nudges it.
pub const VADER_NEG_SPLIT: [f32; 4] = [0.30, 0.15, 0.20, 0.35];

/// The neutral prior's fixed part and its growth per token (see the module
/// docs).
pub const PRIOR_BASE: f32 = 0.5;
pub const PRIOR_PER_TOKEN: f32 = 0.025;

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

    /// `(class name, probability)` pairs in [`EMOTIONS`] order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f32)> + '_ {
        EMOTIONS.iter().copied().zip(self.0.iter().copied())
    }

    /// The distribution keyed by class name.
    pub fn to_map(&self) -> BTreeMap<&'static str, f32> {
        self.iter().collect()
    }

    /// Shannon entropy in nats (0 for a certain class, ln 7 for uniform).
    pub fn entropy(&self) -> f32 {
        self.0.iter().filter(|&&p| p > 0.0).map(|&p| -p * p.ln()).sum()
    }
}

/// What the lexicon found in one text.
#[derive(Debug, Clone, PartialEq)]
pub struct LexiconScore {
    pub dist: EmotionDist,
    /// Lexicon entries (words or phrases) that matched.
    pub matches: usize,
}

type Weights = [f32; 7];

/// The longest phrase, in words.
const MAX_PHRASE: usize = 6;
/// The longest emoticon, in bytes; longer chunks skip the emoticon look-ups.
const MAX_EMOTICON: usize = 16;

const BUILTIN_TSV: &str = include_str!("../data/emotion_lexicon.tsv");
const BUILTIN_NAME: &str = "emotion_lexicon.tsv";

/// osprey's own emotion lexicon.
pub struct EmotionLexicon {
    /// Single words.
    words: HashMap<Box<str>, Weights>,
    /// Multi-word phrases, words joined by one space.
    phrases: HashMap<Box<str>, Weights>,
    /// First word of a phrase → its longest phrase, in words.
    phrase_heads: HashMap<Box<str>, usize>,
    /// Emoji (normalised) and emoticons (exact).
    symbols: HashMap<Box<str>, Weights>,
    /// Every word the scorer knows, for picking the form of elongated words.
    vocab: HashSet<Box<str>>,
    /// Entries (lines) per class.
    entries: [usize; 7],
}

impl EmotionLexicon {
    /// The lexicon shipped inside the crate.
    pub fn builtin() -> &'static EmotionLexicon {
        static BUILTIN: OnceLock<EmotionLexicon> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            // The file is part of the source and a unit test parses it.
            Self::from_tsv(BUILTIN_TSV).unwrap_or_else(|e| panic!("built-in emotion lexicon: {e}"))
        })
    }

    /// Parses a lexicon in the `term<TAB>emotion<TAB>weight` format.
    pub fn from_tsv(src: &str) -> Result<Self, NlpError> {
        let mut lex = EmotionLexicon {
            words: HashMap::new(),
            phrases: HashMap::new(),
            phrase_heads: HashMap::new(),
            symbols: HashMap::new(),
            vocab: HashSet::new(),
            entries: [0; 7],
        };
        let mut seen = HashSet::new();
        for (n, line) in src.lines().enumerate() {
            let bad = |reason: String| NlpError::InvalidLexicon { name: BUILTIN_NAME.into(), line: n + 1, reason };
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let [term, emotion, weight] = fields[..] else {
                return Err(bad(format!("expected 3 tab-separated fields, found {}", fields.len())));
            };
            let class = EMOTIONS
                .iter()
                .position(|&e| e == emotion)
                .filter(|&i| i != NEUTRAL)
                .ok_or_else(|| bad(format!("unknown emotion {emotion:?}")))?;
            let weight: f32 = weight.parse().map_err(|_| bad(format!("weight {weight:?} is not a number")))?;
            if !(weight > 0.0 && weight <= 1.0) {
                return Err(bad(format!("weight {weight} is outside (0, 1]")));
            }
            let (table, key) = classify_term(term).map_err(|reason| bad(format!("term {term:?}: {reason}")))?;
            if !seen.insert((key.clone(), class)) {
                return Err(bad(format!("duplicate entry for {term:?} and {emotion}")));
            }
            let map = match table {
                Table::Word => &mut lex.words,
                Table::Phrase => &mut lex.phrases,
                Table::Symbol => &mut lex.symbols,
            };
            map.entry(key.into_boxed_str()).or_insert([0.0; 7])[class] = weight;
            lex.entries[class] += 1;
        }
        for phrase in lex.phrases.keys() {
            let words: Vec<&str> = phrase.split(' ').collect();
            let head = lex.phrase_heads.entry(words[0].into()).or_insert(0);
            *head = (*head).max(words.len());
            lex.vocab.extend(words.iter().map(|&w| Box::from(w)));
        }
        lex.vocab.extend(lex.words.keys().cloned());
        Ok(lex)
    }

    /// Number of entries (lines).
    pub fn len(&self) -> usize {
        self.entries.iter().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries (lines) per class, in [`EMOTIONS`] order (neutral is 0).
    pub fn entries_per_emotion(&self) -> [usize; 7] {
        self.entries
    }

    pub fn score(&self, text: &str) -> LexiconScore {
        let mut tokens = Tokens::new(text.len());
        tokens.read(text, Some(self));
        let mut evidence = [0f32; 7];
        let mut matches = 0;
        let mut key = String::new();
        let mut i = 0;
        while i < tokens.list.len() {
            let Some((weights, len)) = self.hit_at(&tokens, i, &mut key) else {
                i += 1;
                continue;
            };
            let (scale, negated) = modifiers(&tokens, i, i + len);
            let weights = if negated { negate(weights) } else { *weights };
            for (e, w) in evidence.iter_mut().zip(weights) {
                *e += w * scale;
            }
            for token in &mut tokens.list[i..i + len] {
                token.hit = true;
            }
            matches += 1;
            i += len;
        }
        let total: f32 = evidence.iter().sum();
        if matches == 0 || total <= 0.0 || !total.is_finite() {
            return LexiconScore { dist: EmotionDist::neutral(), matches };
        }
        let prior = PRIOR_BASE + PRIOR_PER_TOKEN * tokens.list.len() as f32;
        let denom = prior + total;
        let mut p = evidence.map(|e| e / denom);
        p[NEUTRAL] = prior / denom;
        LexiconScore { dist: EmotionDist(p), matches }
    }

    /// The lexicon entry starting at token `i` and its length in tokens:
    /// the longest phrase, else the word or one of its inflections.
    fn hit_at(&self, tokens: &Tokens, i: usize, key: &mut String) -> Option<(&Weights, usize)> {
        let token = &tokens.list[i];
        let text = tokens.text(token);
        if token.kind == Kind::Symbol {
            if let Some(w) = self.symbols.get(text) {
                return Some((w, 1));
            }
            let first = text.split('\u{200D}').next().unwrap_or(text);
            return self.symbols.get(first).map(|w| (w, 1));
        }
        if let Some(&longest) = self.phrase_heads.get(text) {
            let longest = longest.min(tokens.list.len() - i);
            for len in (2..=longest).rev() {
                let span = &tokens.list[i..i + len];
                if span.iter().any(|t| t.kind != Kind::Word || t.clause != token.clause) {
                    continue;
                }
                key.clear();
                for (n, t) in span.iter().enumerate() {
                    if n > 0 {
                        key.push(' ');
                    }
                    key.push_str(tokens.text(t));
                }
                if let Some(w) = self.phrases.get(key.as_str()) {
                    return Some((w, len));
                }
            }
        }
        if is_modifier(text) {
            return None;
        }
        self.lookup_word(text, key).map(|w| (w, 1))
    }

    /// A word or, failing that, the listed base of its inflection.
    fn lookup_word(&self, word: &str, scratch: &mut String) -> Option<&Weights> {
        if let Some(w) = self.words.get(word) {
            return Some(w);
        }
        let b = word.as_bytes();
        let n = b.len();
        if n < 4 || !word.is_ascii() || NO_INFLECTION.contains(&word) {
            return None;
        }
        let mut try_base = |stem: &str, suffix: &str| -> Option<&Weights> {
            if stem.len() + suffix.len() < 3 {
                return None;
            }
            scratch.clear();
            scratch.push_str(stem);
            scratch.push_str(suffix);
            self.words.get(scratch.as_str())
        };
        let doubled = |cut: usize| n > cut + 1 && b[n - cut - 1] == b[n - cut - 2];
        let candidates: &[(usize, &str, bool)] = if word.ends_with("ies") || word.ends_with("ied") {
            &[(3, "y", true), (1, "", true)]
        } else if word.ends_with("es") {
            &[(2, "", true), (1, "", true)]
        } else if word.ends_with('s') {
            if word.ends_with("ss") || word.ends_with("us") || word.ends_with("is") {
                &[]
            } else {
                &[(1, "", true)]
            }
        } else if word.ends_with("ed") {
            &[(2, "", true), (1, "", true), (3, "", doubled(2))]
        } else if word.ends_with("ing") {
            &[(3, "", true), (3, "e", true), (4, "", doubled(3))]
        } else if word.ends_with("ically") {
            &[(4, "", true)]
        } else if word.ends_with("ily") {
            &[(3, "y", true)]
        } else if word.ends_with("bly") || word.ends_with("ply") {
            &[(1, "e", true)]
        } else if word.ends_with("ly") {
            &[(2, "", true)]
        } else {
            &[]
        };
        candidates.iter().filter(|c| c.2).find_map(|&(cut, suffix, _)| try_base(&word[..n - cut], suffix))
    }
}

/// Which table a lexicon term goes to.
enum Table {
    Word,
    Phrase,
    Symbol,
}

/// Validates a term and returns its table and lookup key.
fn classify_term(term: &str) -> Result<(Table, String), String> {
    if term.is_empty() || term != term.trim() {
        return Err("empty or padded with spaces".into());
    }
    if term.chars().any(|c| is_emoji_char(c) || is_emoji_component(c)) {
        let mut tokens = Tokens::new(term.len());
        tokens.read(term, None);
        return match tokens.list.as_slice() {
            [t] if t.kind == Kind::Symbol && term.chars().all(|c| is_emoji_char(c) || is_emoji_component(c)) => {
                Ok((Table::Symbol, tokens.text(t).to_string()))
            }
            _ => Err("an emoji term must be exactly one emoji".into()),
        };
    }
    let is_wordy = term.chars().all(|c| c.is_alphanumeric() || c == ' ' || c == '\'' || c == '-');
    if !is_wordy {
        if term.chars().any(is_space) || term.len() > MAX_EMOTICON || !emoticon_candidate(term) {
            return Err("not a word, phrase, emoji or recognisable emoticon".into());
        }
        return Ok((Table::Symbol, term.to_string()));
    }
    if term != term.to_lowercase() {
        return Err("words and phrases must be lowercase".into());
    }
    let mut tokens = Tokens::new(term.len());
    tokens.read(term, None);
    let words: Vec<&str> = tokens.list.iter().map(|t| tokens.text(t)).collect();
    let spelled: Vec<&str> = term.split([' ', '-']).collect();
    if words != spelled {
        return Err(format!("does not read back as itself (tokens {words:?}); use the canonical spelling"));
    }
    if words.len() == 1 {
        if is_modifier(words[0]) {
            return Err("is a negator or intensity modifier, which never matches as a word".into());
        }
        Ok((Table::Word, term.to_string()))
    } else if words.len() <= MAX_PHRASE {
        Ok((Table::Phrase, words.join(" ")))
    } else {
        Err(format!("phrases have at most {MAX_PHRASE} words"))
    }
}

// ---------------------------------------------------------------------------
// Modifiers
// ---------------------------------------------------------------------------

fn booster(word: &str) -> Option<f32> {
    Some(match word {
        "extremely" | "incredibly" | "insanely" | "utterly" | "fucking" | "fuckin" => 1.5,
        "super" | "absolutely" | "deeply" | "enormously" | "exceptionally" | "freaking" | "frickin" | "fricking"
        | "friggin" | "frigging" | "effing" | "hella" | "hugely" | "intensely" | "tremendously" | "bloody" => 1.4,
        "very" | "so" | "really" | "totally" | "completely" | "highly" | "truly" | "seriously" | "awfully"
        | "terribly" | "thoroughly" | "remarkably" | "greatly" | "majorly" | "mega" | "uber" | "wildly"
        | "entirely" => 1.3,
        "such" | "too" | "especially" | "particularly" | "literally" | "genuinely" | "fully" | "most"
        | "considerably" => 1.2,
        "quite" | "pretty" => 1.1,
        _ => return None,
    })
}

fn dampener(word: &str) -> Option<f32> {
    Some(match word {
        "marginally" => 0.5,
        "slightly" | "kinda" | "sorta" | "mildly" | "less" => 0.6,
        "somewhat" => 0.65,
        "partly" | "partially" | "occasionally" => 0.7,
        "moderately" => 0.75,
        "fairly" => 0.8,
        "rather" => 0.85,
        _ => return None,
    })
}

/// Two-word dampeners, read from the two tokens before a hit.
const DAMPENING_PAIRS: &[(&str, &str)] =
    &[("kind", "of"), ("sort", "of"), ("a", "bit"), ("a", "little"), ("a", "tad"), ("little", "bit")];
const PAIR_DAMPING: f32 = 0.6;

/// Negators besides the `n't` forms (apostrophe-less spellings included).
const NEGATORS: &[&str] = &[
    "not", "no", "never", "nor", "neither", "without", "hardly", "barely", "scarcely", "cannot", "nothing", "nobody",
    "none", "nowhere", "aint", "dont", "doesnt", "didnt", "isnt", "wasnt", "werent", "arent", "cant", "couldnt",
    "wouldnt", "shouldnt", "wont", "havent", "hasnt", "hadnt", "mustnt", "neednt",
];

fn is_negator(word: &str) -> bool {
    word.ends_with("n't") || NEGATORS.contains(&word)
}

/// Words that end a clause (and are not tokens themselves).
fn is_clause_word(word: &str) -> bool {
    matches!(word, "but" | "however")
}

fn is_modifier(word: &str) -> bool {
    is_negator(word) || booster(word).is_some() || dampener(word).is_some()
}

/// Words whose look-alike suffix is not an inflection of a listed word.
const NO_INFLECTION: &[&str] = &["badly", "madly", "sings", "lately", "likely", "lovely", "only", "early"];

/// Intensity scale of the hit spanning `first..end`, and whether it is negated.
fn modifiers(tokens: &Tokens, first: usize, end: usize) -> (f32, bool) {
    let list = &tokens.list;
    let clause = list[first].clause;
    let before = |back: usize| -> Option<&str> {
        let k = first.checked_sub(back)?;
        let t = &list[k];
        (t.clause == clause && t.kind == Kind::Word && !t.hit).then(|| tokens.text(t))
    };
    let mut scale = 1.0f32;
    let pair = (before(2), before(1));
    if let (Some(a), Some(b)) = pair {
        if DAMPENING_PAIRS.contains(&(a, b)) {
            scale *= PAIR_DAMPING;
        }
    }
    if scale == 1.0 {
        for word in [pair.0, pair.1].into_iter().flatten() {
            scale *= booster(word).or_else(|| dampener(word)).unwrap_or(1.0);
        }
    }
    let mut negated = false;
    for back in 1..=3 {
        let Some(word) = before(back) else { continue };
        if is_negator(word) {
            // "never so happy", "never this good": emphasis, not negation.
            let emphatic = word == "never" && (1..back).any(|b| matches!(before(b), Some("so" | "this")));
            negated = !emphatic;
            break;
        }
    }
    if let Some(after) = list.get(end) {
        if after.clause == clause && matches!(tokens.text(after), "af" | "asf") {
            scale *= 1.4;
        }
    }
    let span = &list[first..end];
    if tokens.has_lower && span.iter().all(|t| t.kind == Kind::Word && t.caps) {
        scale *= 1.3;
    }
    if span.iter().any(|t| t.elongated) {
        scale *= 1.2;
    }
    let bangs = tokens.bangs.get(clause as usize).copied().unwrap_or(0).min(3);
    scale *= 1.0 + 0.1 * f32::from(bangs);
    (scale.clamp(0.2, 2.5), negated)
}

/// The negation rule (see the module docs).
fn negate(w: &Weights) -> Weights {
    let mut out = [0.0; 7];
    out[SADNESS] = w[JOY] * 0.5;
    out[JOY] = w[SADNESS] * 0.2 + w[FEAR] * 0.1;
    out
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Symbol,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    /// Byte range of the normalised form in `Tokens::norm`.
    start: usize,
    end: usize,
    clause: u32,
    /// Written in capitals (two letters or more, no lowercase).
    caps: bool,
    /// Written with a letter repeated three times or more.
    elongated: bool,
    /// Part of a lexicon hit already (so not a modifier of another).
    hit: bool,
}

/// The tokens of one text, their normalised forms in one buffer.
struct Tokens {
    norm: String,
    list: Vec<Token>,
    /// `!` count closing each clause.
    bangs: Vec<u8>,
    clause: u32,
    pending_break: bool,
    has_lower: bool,
    scratch: String,
}

impl Tokens {
    fn new(capacity: usize) -> Self {
        Tokens {
            norm: String::with_capacity(capacity + capacity / 4),
            list: Vec::with_capacity(capacity / 4 + 1),
            bangs: vec![0],
            clause: 0,
            pending_break: false,
            has_lower: false,
            scratch: String::new(),
        }
    }

    fn text(&self, t: &Token) -> &str {
        &self.norm[t.start..t.end]
    }

    fn clause_break(&mut self) {
        self.pending_break = true;
    }

    fn bang(&mut self) {
        let b = &mut self.bangs[self.clause as usize];
        *b = b.saturating_add(1);
        self.pending_break = true;
    }

    fn push(&mut self, kind: Kind, start: usize, caps: bool, elongated: bool) {
        let current_has_tokens = self.list.last().is_some_and(|t| t.clause == self.clause);
        if self.pending_break && current_has_tokens {
            self.clause += 1;
            self.bangs.push(0);
        } else if self.pending_break {
            // Punctuation before the clause's first token closes nothing.
            self.bangs[self.clause as usize] = 0;
        }
        self.pending_break = false;
        let end = self.norm.len();
        self.list.push(Token { kind, start, end, clause: self.clause, caps, elongated, hit: false });
    }

    /// Splits `text` into tokens. With a lexicon, emoticons are recognised and
    /// elongated words take the form the lexicon knows.
    fn read(&mut self, text: &str, lex: Option<&EmotionLexicon>) {
        let mut rest = text;
        while !rest.is_empty() {
            let ws = rest.len() - rest.trim_start_matches(is_space).len();
            if rest[..ws].contains('\n') {
                self.clause_break();
            }
            rest = &rest[ws..];
            let chunk_len = rest.find(is_space).unwrap_or(rest.len());
            let chunk = &rest[..chunk_len];
            rest = &rest[chunk_len..];
            if !chunk.is_empty() {
                self.chunk(chunk, lex);
            }
        }
    }

    fn chunk(&mut self, chunk: &str, lex: Option<&EmotionLexicon>) {
        if let Some(lex) = lex {
            if let Some((body, emoticon, tail)) = split_emoticon(chunk, &lex.symbols) {
                self.scan(body, lex);
                let start = self.norm.len();
                self.norm.push_str(emoticon);
                self.push(Kind::Symbol, start, false, false);
                self.scan(tail, lex);
                return;
            }
        }
        match lex {
            Some(lex) => self.scan(chunk, lex),
            None => self.scan(chunk, empty_lexicon()),
        }
    }

    /// Words, emoji and punctuation of a chunk.
    fn scan(&mut self, s: &str, lex: &EmotionLexicon) {
        let mut word_start = None;
        let mut iter = s.char_indices().peekable();
        while let Some((i, c)) = iter.next() {
            let next = iter.peek().map(|&(_, n)| n);
            let in_word = is_word_char(c)
                || (word_start.is_some() && is_apostrophe(c) && next.is_some_and(char::is_alphanumeric));
            if in_word {
                word_start.get_or_insert(i);
                continue;
            }
            if let Some(ws) = word_start.take() {
                self.word(&s[ws..i], lex);
            }
            if is_emoji_char(c) {
                self.emoji(c, &mut iter);
                continue;
            }
            match c {
                '!' | '！' | '‼' => self.bang(),
                '.' | ',' | ';' | ':' | '?' | '…' | '(' | ')' | '[' | ']' | '{' | '}' | '—' | '–' | '|' | '•'
                | '。' | '？' | '，' => self.clause_break(),
                _ => {}
            }
        }
        if let Some(ws) = word_start {
            self.word(&s[ws..], lex);
        }
    }

    /// One emoji token: `first` plus its modifiers and ZWJ-joined parts.
    fn emoji(&mut self, first: char, iter: &mut std::iter::Peekable<std::str::CharIndices<'_>>) {
        let start = self.norm.len();
        self.norm.push(first);
        let is_flag = |c: char| ('\u{1F1E6}'..='\u{1F1FF}').contains(&c);
        if is_flag(first) {
            if let Some(&(_, c)) = iter.peek().filter(|&&(_, c)| is_flag(c)) {
                self.norm.push(c);
                iter.next();
            }
        }
        while let Some(&(_, c)) = iter.peek() {
            if is_skin_tone(c) || c == '\u{FE0F}' || c == '\u{FE0E}' || ('\u{E0020}'..='\u{E007F}').contains(&c) {
                iter.next();
            } else if c == '\u{20E3}' {
                self.norm.push(c);
                iter.next();
            } else if c == '\u{200D}' {
                iter.next();
                match iter.peek() {
                    Some(&(_, joined)) if is_emoji_char(joined) => {
                        self.norm.push('\u{200D}');
                        self.norm.push(joined);
                        iter.next();
                    }
                    _ => break,
                }
            } else {
                break;
            }
        }
        self.push(Kind::Symbol, start, false, false);
    }

    fn word(&mut self, raw: &str, lex: &EmotionLexicon) {
        if is_clause_word_raw(raw) {
            self.clause_break();
            return;
        }
        let start = self.norm.len();
        let (mut letters, mut upper, mut lower) = (0, 0, 0);
        for c in raw.chars() {
            if c.is_alphabetic() {
                letters += 1;
                upper += usize::from(c.is_uppercase());
                lower += usize::from(c.is_lowercase());
            }
            if is_apostrophe(c) {
                self.norm.push('\'');
            } else if c.is_ascii() {
                self.norm.push(c.to_ascii_lowercase());
            } else {
                self.norm.extend(c.to_lowercase());
            }
        }
        self.has_lower |= lower > 0;
        let caps = letters >= 2 && lower == 0 && upper > 0;
        let elongated = self.canonicalise(start, lex);
        self.push(Kind::Word, start, caps, elongated);
    }

    /// Rewrites the word at `norm[start..]` in canonical form: laughter, then
    /// elongation (runs of three or more). True when it was elongated.
    fn canonicalise(&mut self, start: usize, lex: &EmotionLexicon) -> bool {
        let word = &self.norm[start..];
        if let Some(laugh) = laughter(word) {
            self.norm.truncate(start);
            self.norm.push_str(laugh);
            return false;
        }
        if !has_triple(word) {
            return false;
        }
        collapse(word, 2, &mut self.scratch);
        let keep_two = lex.vocab.contains(self.scratch.as_str()) || is_modifier(&self.scratch);
        if !keep_two {
            let word = &self.norm[start..];
            collapse(word, 1, &mut self.scratch);
        }
        self.norm.truncate(start);
        self.norm.push_str(&self.scratch);
        true
    }
}

/// An empty lexicon for reading lexicon terms themselves.
fn empty_lexicon() -> &'static EmotionLexicon {
    static EMPTY: OnceLock<EmotionLexicon> = OnceLock::new();
    EMPTY.get_or_init(|| EmotionLexicon {
        words: HashMap::new(),
        phrases: HashMap::new(),
        phrase_heads: HashMap::new(),
        symbols: HashMap::new(),
        vocab: HashSet::new(),
        entries: [0; 7],
    })
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || ('\u{300}'..='\u{36F}').contains(&c)
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | 'ʼ')
}

fn is_skin_tone(c: char) -> bool {
    ('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
}

fn is_clause_word_raw(raw: &str) -> bool {
    raw.len() <= 7 && raw.is_ascii() && {
        let mut buf = [0u8; 7];
        for (d, b) in buf.iter_mut().zip(raw.bytes()) {
            *d = b.to_ascii_lowercase();
        }
        std::str::from_utf8(&buf[..raw.len()]).is_ok_and(is_clause_word)
    }
}

/// Characters that can appear in an emoticon and not in a plain word.
fn emoticon_candidate(s: &str) -> bool {
    s.bytes().any(|b| b":;=<>^_()[]\\/*&".contains(&b)) || (s.len() <= 3 && s.contains('.'))
}

/// Finds an emoticon in a chunk: the whole chunk, the chunk less trailing
/// `.,!?;`, or its tail after a word (`thanks:)`). Returns the text before
/// it, the emoticon and the punctuation after it.
fn split_emoticon<'a>(chunk: &'a str, symbols: &HashMap<Box<str>, Weights>) -> Option<(&'a str, &'a str, &'a str)> {
    if chunk.len() > MAX_EMOTICON + 8 || !emoticon_candidate(chunk) {
        return None;
    }
    if symbols.contains_key(chunk) {
        return Some(("", chunk, ""));
    }
    let core = chunk.trim_end_matches(['.', ',', '!', '?', ';']);
    let tail = &chunk[core.len()..];
    if core.len() < chunk.len() && symbols.contains_key(core) {
        return Some(("", core, tail));
    }
    let at = core.rfind([':', ';', '=', '<'])?;
    if at > 0 && core[..at].chars().all(char::is_alphanumeric) && symbols.contains_key(&core[at..]) {
        return Some((&core[..at], &core[at..], tail));
    }
    None
}

/// Canonical laughter: `hahahah` → `hahaha`, `haha`; `hehehe` → `hehe`;
/// `lolol`, `loool` → `lol`; `jajaja` → `jaja`.
fn laughter(word: &str) -> Option<&'static str> {
    let b = word.as_bytes();
    let count = |c: u8| b.iter().filter(|&&x| x == c).count();
    let only = |set: &[u8]| b.iter().all(|x| set.contains(x));
    if b.len() >= 4 && only(b"ha") && count(b'h') >= 2 && count(b'a') >= 2 {
        return Some(if b.len() >= 6 { "hahaha" } else { "haha" });
    }
    if b.len() >= 4 && only(b"he") && count(b'h') >= 2 && count(b'e') >= 2 {
        return Some("hehe");
    }
    if b.len() >= 4 && only(b"ja") && count(b'j') >= 2 && count(b'a') >= 2 {
        return Some("jaja");
    }
    if b.len() >= 4 && only(b"lo") && b[0] == b'l' && b[b.len() - 1] == b'l' && count(b'o') >= 1 {
        return Some("lol");
    }
    None
}

fn has_triple(word: &str) -> bool {
    let b = word.as_bytes();
    b.windows(3).any(|w| w[0] == w[1] && w[1] == w[2])
}

/// Copies `word` into `out` with every run of three or more equal chars cut
/// to `keep` (runs of two stay).
fn collapse(word: &str, keep: usize, out: &mut String) {
    out.clear();
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let mut j = i;
        while j < chars.len() && chars[j] == chars[i] {
            j += 1;
        }
        let run = j - i;
        let n = if run >= 3 { keep } else { run };
        out.extend(std::iter::repeat_n(chars[i], n));
        i = j;
    }
}

// ---------------------------------------------------------------------------
// VADER and blending
// ---------------------------------------------------------------------------

/// The seven-class distribution derived from VADER's scores: joy gets `pos`,
/// neutral `neu`, and `neg` is shared by anger, disgust, fear and sadness as
/// [`VADER_NEG_SPLIT`] says; surprise gets nothing (VADER has no notion of
/// it). Proportions are renormalised; negative or non-finite parts count as
/// 0, and all-zero input is neutral.
pub fn vader_emotion(sentiment: &Sentiment) -> EmotionDist {
    let clean = |x: f64| if x.is_finite() && x > 0.0 { x as f32 } else { 0.0 };
    let (pos, neu, neg) = (clean(sentiment.pos), clean(sentiment.neu), clean(sentiment.neg));
    let total = pos + neu + neg;
    if total <= 0.0 || !total.is_finite() {
        return EmotionDist::neutral();
    }
    let mut p = [0f32; 7];
    p[JOY] = pos / total;
    p[NEUTRAL] = neu / total;
    let neg = neg / total;
    for (class, share) in [ANGER, DISGUST, FEAR, SADNESS].into_iter().zip(VADER_NEG_SPLIT) {
        p[class] = neg * share;
    }
    EmotionDist(p)
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

#[cfg(test)]
mod tests {
    use super::*;

    const SURPRISE: usize = 6;

    fn lex() -> &'static EmotionLexicon {
        EmotionLexicon::builtin()
    }

    fn p(text: &str, class: usize) -> f32 {
        lex().score(text).dist.0[class]
    }

    fn dominant(text: &str) -> &'static str {
        EMOTIONS[lex().score(text).dist.dominant().0]
    }

    /// The strongest non-neutral class, for texts too weak to beat the prior.
    fn top_emotion(text: &str) -> &'static str {
        let mut d = lex().score(text).dist;
        d.0[NEUTRAL] = 0.0;
        EMOTIONS[d.dominant().0]
    }

    fn assert_distribution(d: &EmotionDist, context: &str) {
        let sum: f32 = d.0.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6, "sum {sum} for {context:?}: {d:?}");
        assert!(d.0.iter().all(|p| p.is_finite() && *p >= 0.0), "{context:?}: {d:?}");
    }

    #[test]
    fn builtin_lexicon_parses_every_line() {
        match EmotionLexicon::from_tsv(BUILTIN_TSV) {
            Ok(lex) => assert!(lex.len() >= 1200, "only {} entries", lex.len()),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn malformed_lines_are_rejected_with_their_line_number() {
        let cases = [
            ("happy\tjoy", "3 tab-separated"),
            ("happy\tjoy\t0.5\textra", "3 tab-separated"),
            ("happy joy 0.5", "3 tab-separated"),
            ("happy\tglee\t0.5", "unknown emotion"),
            ("happy\tneutral\t0.5", "unknown emotion"),
            ("happy\tjoy\t0", "outside"),
            ("happy\tjoy\t1.5", "outside"),
            ("happy\tjoy\tNaN", "outside"),
            ("happy\tjoy\tlots", "not a number"),
            ("Happy\tjoy\t0.5", "lowercase"),
            (" happy\tjoy\t0.5", "padded"),
            ("\tjoy\t0.5", "empty"),
            ("very\tjoy\t0.5", "modifier"),
            ("not\tsadness\t0.5", "modifier"),
            ("sooo\tjoy\t0.5", "canonical"),
            ("hahahah\tjoy\t0.5", "canonical"),
            ("happy  days\tjoy\t0.5", "canonical"),
            ("one two three four five six seven\tjoy\t0.5", "at most"),
            ("😀😀\tjoy\t0.5", "one emoji"),
            ("happy 😀\tjoy\t0.5", "one emoji"),
            ("a+b\tjoy\t0.5", "recognisable"),
        ];
        for (line, reason) in cases {
            let src = format!("# header\n\n{line}\n");
            match EmotionLexicon::from_tsv(&src) {
                Err(NlpError::InvalidLexicon { line: 3, reason: r, .. }) => {
                    assert!(r.contains(reason), "{line:?}: {r}")
                }
                Err(e) => panic!("{line:?}: unexpected {e}"),
                Ok(_) => panic!("{line:?} was accepted"),
            }
        }
        let dup = EmotionLexicon::from_tsv("mind blowing\tsurprise\t0.8\nmind-blowing\tsurprise\t0.7\n");
        assert!(matches!(dup, Err(NlpError::InvalidLexicon { line: 2, .. })));
        let ok = EmotionLexicon::from_tsv("# c\r\nglad\tjoy\t0.7\r\nglad\tsurprise\t0.1\r\n:)\tjoy\t1\r\n");
        assert_eq!(ok.map(|l| l.entries_per_emotion()).ok(), Some([0, 0, 0, 2, 0, 0, 1]));
    }

    #[test]
    fn obvious_texts_get_their_class() {
        let cases = [
            ("I am absolutely furious with this company", "anger"),
            ("This is so annoying, I hate it", "anger"),
            ("That smell is disgusting, gross", "disgust"),
            ("Ew, this food is rotten and revolting", "disgust"),
            ("I'm terrified and anxious about tomorrow", "fear"),
            ("So scared right now, worried sick", "fear"),
            ("I love this, I'm so happy and grateful", "joy"),
            ("lol that was hilarious", "joy"),
            ("I feel so sad and lonely, I miss her", "sadness"),
            ("Heartbroken. Depressed.", "sadness"),
            ("Wow, I'm shocked, didn't see that coming", "surprise"),
            ("whoa, totally unexpected", "surprise"),
            ("The meeting is at 3pm in room 4", "neutral"),
        ];
        for (text, class) in cases {
            assert_eq!(dominant(text), class, "{text:?}: {:?}", lex().score(text));
        }
    }

    #[test]
    fn no_match_is_pure_neutral() {
        for text in ["", "   ", "The table has four legs.", "12345", "\u{301}", "🪑"] {
            let s = lex().score(text);
            assert_eq!(s, LexiconScore { dist: EmotionDist::neutral(), matches: 0 }, "{text:?}");
        }
    }

    #[test]
    fn weak_evidence_stays_neutral_and_long_texts_dilute() {
        assert_eq!(dominant("ok thanks"), "neutral");
        assert_eq!(dominant("hmm, curious"), "neutral");
        let short = p("I am sad", SADNESS);
        let filler = " the report covers the usual topics in the usual order".repeat(8);
        let long = p(&format!("I am sad.{filler}"), SADNESS);
        assert!(long < short / 2.0, "{long} vs {short}");
    }

    #[test]
    fn phrases_beat_words() {
        let s = lex().score("I'm over the moon");
        assert_eq!((s.matches, dominant("I'm over the moon")), (1, "joy"));
        assert_eq!(dominant("I am sick of this"), "anger");
        assert_eq!(top_emotion("I feel sick"), "disgust");
        assert_eq!(dominant("no way!"), "surprise");
        assert_eq!((top_emotion("not bad at all"), p("not bad at all", SADNESS)), ("joy", 0.0));
        assert_eq!(dominant("it broke my heart"), "sadness");
        assert_eq!(dominant("I can't wait"), "joy");
        assert_eq!(dominant("I can't stand him"), "anger");
        assert_eq!(dominant("I was blown away"), "surprise");
        assert_eq!(dominant("that was mind-blowing"), "surprise");
        assert_eq!(dominant("freaked out"), "fear");
        assert_eq!(dominant("pissed off"), "anger");
        assert_eq!(lex().score("fed up").matches, 1);
    }

    #[test]
    fn negation_flips_or_cancels() {
        let not_happy = lex().score("I am not happy").dist;
        assert_eq!(not_happy.0[JOY], 0.0);
        assert!(not_happy.0[SADNESS] > 0.0 && not_happy.0[SADNESS] < p("I am sad", SADNESS));
        let not_afraid = lex().score("I am not afraid").dist;
        assert_eq!(not_afraid.0[FEAR], 0.0);
        assert!(not_afraid.0[JOY] < 0.15 && not_afraid.0[NEUTRAL] > 0.85, "{not_afraid:?}");
        assert_eq!(p("I don't hate it", ANGER), 0.0);
        assert_eq!(p("I dont hate it", ANGER), 0.0);
        assert_eq!(p("I don’t hate it", ANGER), 0.0);
        assert!(p("not sad", JOY) > 0.0);
        assert_eq!(p("never been so happy", SADNESS), 0.0);
        assert_eq!(p("without fear", FEAR), 0.0);
        assert_eq!(p("hardly surprised", SURPRISE), 0.0);
        // Three tokens back at most, never across a clause.
        assert!(p("not that I am happy", JOY) > 0.0);
        assert!(p("No, I am happy", JOY) > 0.0);
        assert!(p("not great but happy", JOY) > 0.0);
        // A negator inside a matched phrase negates nothing after it.
        assert!(p("no way I love it", JOY) > 0.0);
    }

    #[test]
    fn boosters_dampeners_caps_and_bangs_scale() {
        let base = p("I am happy", JOY);
        assert!(p("I am very happy", JOY) > base);
        assert!(p("I am extremely happy", JOY) > p("I am very happy", JOY));
        assert!(p("I am slightly happy", JOY) < base);
        assert!(p("I am kind of happy", JOY) < base);
        assert!(p("I am a bit happy", JOY) < base);
        assert!(p("I am happy af", JOY) > base);
        assert!(p("I am sooooo happy", JOY) > base);
        assert!(p("I HATE this", ANGER) > p("I hate this", ANGER));
        assert!((p("I HATE THIS", ANGER) - p("I hate this", ANGER)).abs() < 1e-6);
        assert!(p("I hate this!!!", ANGER) > p("I hate this!", ANGER));
        assert!(p("I hate this!", ANGER) > p("I hate this", ANGER));
        assert!((p("I hate this!!!!!!", ANGER) - p("I hate this!!!", ANGER)).abs() < 1e-6);
        // A bang closes its own clause only.
        assert!((p("I hate this. Fine!!!", ANGER) - p("I hate this. Fine", ANGER)).abs() < 1e-6);
    }

    #[test]
    fn emoji_and_emoticons_are_tokens() {
        let cases = [
            ("😡", "anger"),
            ("🤬🤬", "anger"),
            ("🤢", "disgust"),
            ("🤮", "disgust"),
            ("😱", "fear"),
            ("😨", "fear"),
            ("😂", "joy"),
            ("😍", "joy"),
            ("🥰", "joy"),
            ("❤️", "joy"),
            ("👍🏽", "joy"),
            ("❤️‍🔥", "joy"),
            ("😢", "sadness"),
            ("😭", "sadness"),
            ("😮", "surprise"),
            ("😲", "surprise"),
            ("🤯", "surprise"),
            (":)", "joy"),
            (":D", "joy"),
            ("thanks:)", "joy"),
            ("see you <3", "joy"),
            ("xD", "joy"),
            (":(", "sadness"),
            (":'(", "sadness"),
            ("D:", "fear"),
            (">:(", "anger"),
            ("ok :O", "surprise"),
        ];
        for (text, class) in cases {
            assert_eq!(top_emotion(text), class, "{text:?}: {:?}", lex().score(text));
        }
        assert_eq!(dominant("😭"), "sadness");
        assert_eq!(dominant("🤬"), "anger");
        assert_eq!(lex().score("great:)").matches, 2);
        assert_eq!(lex().score("😂😂😂").matches, 3);
        assert_eq!(lex().score(":d").matches, 0);
        assert!(p(":D!!", JOY) > p(":D", JOY));
    }

    #[test]
    fn inflections_match_listed_bases_only() {
        for (text, class) in [
            ("he hates me", ANGER),
            ("she hated it", ANGER),
            ("stop hating", ANGER),
            ("she said angrily", ANGER),
            ("sobbing all night", SADNESS),
            ("the baby cries", SADNESS),
            ("she cried", SADNESS),
            ("he worries a lot", FEAR),
            ("loves it", JOY),
            ("happily ever after", JOY),
            ("tragically", SADNESS),
            ("miserably", SADNESS),
        ] {
            assert!(p(text, class) > 0.0, "{text:?}: {:?}", lex().score(text));
        }
        for text in ["she sings", "a thing", "the bus", "is it", "during", "badly parked", "kinging"] {
            assert_eq!(lex().score(text).matches, 0, "{text:?}");
        }
    }

    #[test]
    fn laughter_and_elongation_are_canonicalised() {
        for text in ["hahahahaha", "HAHAHA", "ahahah", "lololol", "loool", "hehehe", "lmaooooo", "yaaaay"] {
            assert_eq!(dominant(text), "joy", "{text:?}");
        }
        assert_eq!(dominant("haaaappy"), "joy");
        assert_eq!(dominant("nooooo way"), "surprise");
        assert_eq!(dominant("ewwwww"), "disgust");
        assert_eq!(dominant("grrrrr"), "anger");
    }

    use crate::testing::Rng;

    #[test]
    fn generated_texts_give_distributions() {
        let pieces = [
            "happy",
            "not",
            "very",
            "HATE",
            "so",
            "kind",
            "of",
            "a",
            "bit",
            "!",
            "!!!",
            ".",
            ",",
            " ",
            " ",
            " ",
            "\n",
            "😂",
            "👍🏽",
            "\u{200d}",
            "\u{fe0f}",
            ":)",
            ":(",
            "D:",
            "over",
            "the",
            "moon",
            "fed",
            "up",
            "can't",
            "’",
            "'",
            "-",
            "sooooo",
            "hahaha",
            "never",
            "but",
            "afraid",
            "\u{301}",
            "\0",
            "é",
            "ß",
            "İ",
            "中",
            "af",
            "but",
            "no",
            "way",
            "<3",
            "thanks:)",
            "x",
            "sad",
            "surprised",
            "disgusting",
            "ed",
            "ing",
            "s",
            "lol",
        ];
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..5000 {
            let n = (rng.next() % 30) as usize;
            let text: String = (0..n).map(|_| pieces[(rng.next() % pieces.len() as u64) as usize]).collect();
            let score = lex().score(&text);
            assert_distribution(&score.dist, &text);
            if score.matches == 0 {
                assert_eq!(score.dist, EmotionDist::neutral());
            }
        }
    }

    #[test]
    fn weird_and_huge_inputs_do_not_panic() {
        for text in ["\u{301}", "'''", "n't", "’s", "\u{200d}\u{200d}", "🏽", "🇺🇸", "1️⃣", "::::)))", "a\0b", "!!!!"]
        {
            assert_distribution(&lex().score(text).dist, text);
        }
        let mb = 1 << 20;
        for piece in ["a", "happy ", "!", "😂", ":)", "not ", "sooo", "\u{301}", "ha"] {
            let text = piece.repeat(mb / piece.len());
            assert_distribution(&lex().score(&text).dist, piece);
        }
    }

    #[test]
    fn vader_emotion_splits_negativity() {
        let s = |compound, pos, neu, neg| Sentiment { compound, pos, neu, neg };
        let d = vader_emotion(&s(0.5, 0.4, 0.5, 0.1));
        assert_distribution(&d, "mixed");
        assert!((d.0[JOY] - 0.4).abs() < 1e-6 && (d.0[NEUTRAL] - 0.5).abs() < 1e-6);
        assert_eq!(d.0[SURPRISE], 0.0);
        for (class, share) in [ANGER, DISGUST, FEAR, SADNESS].into_iter().zip(VADER_NEG_SPLIT) {
            assert!((d.0[class] - 0.1 * share).abs() < 1e-6);
        }
        assert!((VADER_NEG_SPLIT.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(vader_emotion(&s(0.0, 0.0, 0.0, 0.0)), EmotionDist::neutral());
        assert_eq!(vader_emotion(&s(f64::NAN, f64::NAN, f64::INFINITY, -1.0)), EmotionDist::neutral());
        let unnormalised = vader_emotion(&s(0.0, 2.0, 2.0, 0.0));
        assert!((unnormalised.0[JOY] - 0.5).abs() < 1e-6);
        let mut rng = Rng(7);
        for _ in 0..1000 {
            let mut r = || (rng.next() % 1000) as f64 / 1000.0;
            let d = vader_emotion(&s(r() * 2.0 - 1.0, r(), r(), r()));
            assert_distribution(&d, "random");
        }
    }

    #[test]
    fn dist_helpers() {
        let n = EmotionDist::neutral();
        assert_eq!(n.entropy(), 0.0);
        assert_eq!(n.to_map()["neutral"], 1.0);
        assert_eq!(n.to_map().len(), 7);
        let uniform = EmotionDist([1.0 / 7.0; 7]);
        assert!((uniform.entropy() - 7f32.ln()).abs() < 1e-5);
        let blended =
            blend(&[(0.7, &n), (0.3, &vader_emotion(&Sentiment { compound: 0.0, pos: 1.0, neu: 0.0, neg: 0.0 }))]);
        assert!((blended.0[JOY] - 0.3).abs() < 1e-6);
    }

    #[test]
    fn lexicon_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<EmotionLexicon>();
        assert_send_sync::<EmotionDist>();
        assert_send_sync::<LexiconScore>();
    }

    /// Throughput figure: `cargo test --release -p osprey-nlp --lib
    /// emotion::tests::throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, not a check"]
    fn throughput() {
        let texts = [
            "Just watched the new episode and honestly I'm not happy with the ending 😡 #disappointed",
            "lol this is the best thing I've seen all week 😂😂 thanks for sharing!!",
            "Can't believe they cancelled my flight again. So fed up with this airline.",
            "The package arrived on time and works as described. Would buy again.",
        ];
        let lex = lex();
        let n = 200_000;
        let started = std::time::Instant::now();
        let mut matches = 0;
        for i in 0..n {
            matches += lex.score(std::hint::black_box(texts[i % texts.len()])).matches;
        }
        let secs = started.elapsed().as_secs_f64();
        println!("EmotionLexicon::score: {:.0} texts/s ({matches} matches)", n as f64 / secs);
    }
}
