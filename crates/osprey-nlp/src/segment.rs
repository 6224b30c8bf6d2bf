//! Sentence segmentation for Reddit posts, tweets, reviews and long articles.
//!
//! [`split_sentences`] works in two passes, both linear in the input:
//!
//! 1. **Lines into blocks.** The text is read line by line (`\n`; a `\r`
//!    before it is whitespace). A block is a run of lines that belong to one
//!    paragraph; sentences never cross a block boundary.
//!    - A blank line always ends a block, and so does a thematic break
//!      (`---`, `***`, `___`, `===`), which yields no segment itself.
//!    - Markdown list items (`- `, `* `, `+ `, `1. `, `1) ` with at most three
//!      digits, task boxes `[ ]`/`[x]` included), ATX headings (`#` to
//!      `######` then a space) and blockquotes (`>` then a space, another `>`,
//!      a letter or digit, so `>:(` stays an emoticon) each start a block, and
//!      their marker is left out of the segment's range. A heading or
//!      blockquote line is a block on its own; a list item continues on the
//!      next line only when that line is indented (Markdown's continuation),
//!      otherwise the next line starts a new block.
//!    - Any other line continues the block before it (a soft wrap). A single
//!      newline after terminal punctuation still ends the sentence: that rule
//!      lives in pass 2, where a newline counts as a strong break.
//!    - A fenced code block (```` ``` ```` or `~~~`, closed by a fence of the
//!      same character at least as long, or by the end of the text) becomes
//!      exactly one segment, fences included: it is never split into
//!      sentences, and callers that want prose only can drop segments that
//!      start with a fence. Inline `` ```code``` `` on one line is prose.
//! 2. **Blocks into sentences.** A run of terminators (`.`, `!`, `?`, `…`,
//!    `‼`, `⁉`, `‽` and the full-width `。！？`) may end a sentence. Closing
//!    quotes and brackets right after it stay with the sentence, and so do
//!    emoji and emoticons that follow it on the same line (`Wow! 😀 Next.` →
//!    `Wow! 😀`, `Next.`). Whether the run ends the sentence:
//!    - it must be followed by whitespace or the end of the block; inside a
//!      token (`3.14`, `v1.2.3`, `config.toml`, `reddit.com/r/rust`, e-mail
//!      addresses, URLs, `e.g`) it never splits, except for a missing space
//!      between two sentences (`it.The`), recognised only when a lowercase
//!      word of two or more letters meets a capitalised one, the token is not
//!      a URL, an address or a path, and the next word is not a file
//!      extension or domain (`Node.Js` stays whole). Full-width `。！？` split
//!      without a following space, as CJK text has none.
//!    - `!`/`?` runs split, except before a lowercase word when a closing
//!      quote follows the run (`"Who's there?" she asked`);
//!    - ellipses (`...`, `..`, `…`) split unless the next word is lowercase
//!      (`Wait... what?` is one sentence);
//!    - a single `.` splits unless the word before it is an abbreviation:
//!      common titles (`Mr.`, `Dr.`, `Prof.`, `St.`) and inline abbreviations
//!      (`e.g.`, `i.e.`, `vs.`, `approx.`) never split; reference
//!      abbreviations (`No.`, `Fig.`, `Vol.`, `p.`) split unless a number
//!      follows; abbreviations that often end a sentence (`etc.`, `Inc.`,
//!      `Ltd.`, `Jr.`, months) split only before a capitalised word; single
//!      initials (`J. R. R. Tolkien`), initialisms (`U.S.`, `a.m.`) and titles
//!      that are also words (`Gen.`, `Rep.`, `Sen.`) split only before a
//!      capitalised common sentence opener (`It`, `The`, `We`…);
//!      a bare number of up to three digits that opens the sentence or
//!      follows a colon is an inline list marker (`Steps: 1. Mix 2. Bake`
//!      splits only at real sentence ends). After an abbreviation, a newline
//!      counts as a break for all but titles, inline and reference ones.
//!
//! A text without a terminator is one segment. Segments are trimmed of
//! whitespace (also U+FEFF and U+200B) and never empty.

use serde::Serialize;

/// One sentence of a source text. `start..end` is a byte range for slicing;
/// `char_start..char_end` is the same range in Unicode scalar values, the
/// offsets the API reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
    pub char_start: usize,
    pub char_end: usize,
}

impl Segment {
    /// The segment's text within `source` (the text it was split from).
    pub fn text<'a>(&self, source: &'a str) -> &'a str {
        &source[self.start..self.end]
    }
}

/// Splits `text` into sentences, in order, trimmed of surrounding whitespace;
/// empty and whitespace-only stretches produce no segment.
pub fn split_sentences(text: &str) -> Vec<Segment> {
    let mut ranges = Vec::new();
    split_blocks(text, &mut ranges);
    with_char_offsets(text, &ranges)
}

/// Adds char offsets to ordered, non-overlapping byte ranges in one pass.
fn with_char_offsets(text: &str, ranges: &[(usize, usize)]) -> Vec<Segment> {
    let mut out = Vec::with_capacity(ranges.len());
    let (mut byte_pos, mut char_pos) = (0, 0);
    for &(start, end) in ranges {
        char_pos += text[byte_pos..start].chars().count();
        let char_start = char_pos;
        char_pos += text[start..end].chars().count();
        byte_pos = end;
        out.push(Segment { start, end, char_start, char_end: char_pos });
    }
    out
}

/// Whitespace for trimming and splitting: Unicode whitespace plus the BOM and
/// zero-width space, which editors and scrapers leave at the edges of text.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}' || c == '\u{200b}'
}

/// Pictographic characters: the emoji blocks, dingbats, miscellaneous
/// symbols and technical symbols.
pub(crate) fn is_emoji_char(c: char) -> bool {
    matches!(c,
        '\u{1F000}'..='\u{1FAFF}'
        | '\u{2600}'..='\u{27BF}'
        | '\u{2300}'..='\u{23FF}'
        | '\u{2B00}'..='\u{2BFF}'
        | '\u{3030}' | '\u{303D}' | '\u{3297}' | '\u{3299}')
}

/// Characters that only modify a neighbouring emoji: zero-width joiner,
/// variation selectors, the keycap mark and tag characters (skin tones lie
/// inside the main emoji block).
pub(crate) fn is_emoji_component(c: char) -> bool {
    matches!(c, '\u{200D}' | '\u{FE0E}' | '\u{FE0F}' | '\u{20E3}' | '\u{E0020}'..='\u{E007F}')
}

/// Text emoticons that stay with the sentence they follow.
const EMOTICONS: &[&str] = &[
    ":)", ":-)", ":(", ":-(", ":D", ":-D", "D:", ":P", ":-P", ":p", ":-p", ";)", ";-)", ";D", ":/", ":-/", ":O", ":o",
    ":-O", ":-o", ":'(", ":')", ">:(", ">:-(", "<3", "</3", "xD", "XD", "^_^", "^^", "T_T", ";_;", "-_-", "o_O", "O_o",
    "O_O", ":3", "=)", "=(", "=D", ":|", ":*", ":]", ":[", "(:", "):", ":c", "c:", ":S", ":s", "\\o/", "ಠ_ಠ",
];

/// The longest entry of [`EMOTICONS`] in bytes, which bounds the look-ahead.
const MAX_EMOTICON_LEN: usize = 8;

// ---------------------------------------------------------------------------
// Pass 1: lines into blocks
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// Blank line or thematic break: ends the block, yields nothing.
    Break,
    Plain,
    List,
    Heading,
    Quote,
}

/// A classified line: its kind, its content range (absolute, trimmed, marker
/// removed; empty when there is no content) and whether it is indented.
struct Line {
    kind: LineKind,
    content: (usize, usize),
    indented: bool,
}

/// Tracks the current block and emits it when it ends.
struct Blocks<'a> {
    text: &'a str,
    current: Option<(usize, usize)>,
    out: &'a mut Vec<(usize, usize)>,
}

impl Blocks<'_> {
    fn flush(&mut self) {
        if let Some((start, end)) = self.current.take() {
            split_block(self.text, start, end, self.out);
        }
    }

    /// Starts a new block with `content` (nothing when empty).
    fn start(&mut self, content: (usize, usize)) {
        self.flush();
        if content.0 < content.1 {
            self.current = Some(content);
        }
    }

    fn extend(&mut self, content: (usize, usize)) {
        match &mut self.current {
            Some(block) if content.0 < content.1 => block.1 = content.1,
            Some(_) => {}
            None => self.start(content),
        }
    }
}

fn split_blocks(text: &str, out: &mut Vec<(usize, usize)>) {
    let mut blocks = Blocks { text, current: None, out };
    let mut prev = LineKind::Break;
    let mut pos = 0;
    while pos < text.len() {
        let line_end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
        let next = (line_end + 1).min(text.len());
        if let Some((fence_char, fence_len, fence_start)) = fence_open(text, pos, line_end) {
            blocks.flush();
            let (end, after) = fence_close(text, next, fence_char, fence_len);
            push_trimmed(text, fence_start, end, blocks.out);
            prev = LineKind::Break;
            pos = after;
            continue;
        }
        let line = classify_line(text, pos, line_end);
        match line.kind {
            LineKind::Break => blocks.flush(),
            LineKind::List | LineKind::Heading | LineKind::Quote => blocks.start(line.content),
            LineKind::Plain => {
                let continues = match prev {
                    LineKind::Plain => true,
                    LineKind::List => line.indented,
                    _ => false,
                };
                if continues {
                    blocks.extend(line.content);
                } else {
                    blocks.start(line.content);
                }
            }
        }
        prev = line.kind;
        pos = next;
    }
    blocks.flush();
}

/// Byte index of the first non-space char of `text[from..to]`, or `to`.
fn skip_spaces(text: &str, from: usize, to: usize) -> usize {
    text[from..to].char_indices().find(|&(_, c)| !is_space(c)).map_or(to, |(i, _)| from + i)
}

/// End of `text[from..to]` with trailing spaces removed.
fn trim_end_at(text: &str, from: usize, to: usize) -> usize {
    from + text[from..to].trim_end_matches(is_space).len()
}

fn push_trimmed(text: &str, start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let start = skip_spaces(text, start, end);
    let end = trim_end_at(text, start, end);
    if start < end {
        out.push((start, end));
    }
}

/// An opening code fence on the line `text[start..end]`: its character, its
/// length and the byte where it starts.
fn fence_open(text: &str, start: usize, end: usize) -> Option<(u8, usize, usize)> {
    let at = skip_spaces(text, start, end);
    let rest = &text.as_bytes()[at..end];
    let fence_char = *rest.first()?;
    if fence_char != b'`' && fence_char != b'~' {
        return None;
    }
    let len = rest.iter().take_while(|&&b| b == fence_char).count();
    if len < 3 {
        return None;
    }
    // A backtick fence's info string has no backticks: ```x``` is inline code.
    if fence_char == b'`' && rest[len..].contains(&b'`') {
        return None;
    }
    Some((fence_char, len, at))
}

/// Finds the closing fence from line start `pos`: the end of the segment and
/// where the next line starts. Unclosed fences run to the end of the text.
fn fence_close(text: &str, mut pos: usize, fence_char: u8, fence_len: usize) -> (usize, usize) {
    while pos < text.len() {
        let line_end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
        let at = skip_spaces(text, pos, line_end);
        let end = trim_end_at(text, at, line_end);
        let rest = &text.as_bytes()[at..end];
        if rest.len() >= fence_len && rest.iter().all(|&b| b == fence_char) {
            return (end, (line_end + 1).min(text.len()));
        }
        pos = line_end + 1;
    }
    (text.len(), text.len())
}

fn classify_line(text: &str, start: usize, end: usize) -> Line {
    let bytes = text.as_bytes();
    let first = skip_spaces(text, start, end);
    let last = trim_end_at(text, first, end);
    let indented = text[start..first].chars().count() >= 2 || text[start..first].contains('\t');
    let plain = |kind, content| Line { kind, content, indented };
    if first == last || is_thematic_break(&bytes[first..last]) {
        return plain(LineKind::Break, (last, last));
    }
    let mut kind = LineKind::Plain;
    let mut at = first;
    // Blockquote markers, possibly nested (`> > text`).
    while at < last && bytes[at] == b'>' {
        let next = text[at + 1..last].chars().next();
        let is_marker = match next {
            None => true,
            Some(c) => is_space(c) || c == '>' || c.is_alphanumeric(),
        };
        if !is_marker {
            break;
        }
        kind = LineKind::Quote;
        at = skip_spaces(text, at + 1, last);
    }
    if let Some(after) = heading_marker(bytes, at, last) {
        let content_end = strip_closing_hashes(text, after, last);
        return plain(LineKind::Heading, (after, content_end));
    }
    if let Some(after) = list_marker(bytes, at, last) {
        let after = skip_spaces(text, after, last);
        let after = skip_task_box(text, after, last);
        let kind = if kind == LineKind::Quote { kind } else { LineKind::List };
        return plain(kind, (after, last));
    }
    plain(kind, (at, last))
}

/// `---`, `***`, `___` or `===` (three or more, spaces allowed between).
fn is_thematic_break(line: &[u8]) -> bool {
    let Some(&c) = line.first() else { return false };
    if !matches!(c, b'-' | b'*' | b'_' | b'=') {
        return false;
    }
    let mut count = 0;
    for &b in line {
        if b == c {
            count += 1;
        } else if b != b' ' && b != b'\t' {
            return false;
        }
    }
    count >= 3
}

fn is_blank_byte(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `#` to `######` followed by a space or the end of the line.
fn heading_marker(bytes: &[u8], at: usize, end: usize) -> Option<usize> {
    let hashes = bytes[at..end].iter().take_while(|&&b| b == b'#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let after = at + hashes;
    (after == end || is_blank_byte(bytes[after])).then_some(after)
}

/// Removes an ATX heading's closing `###` (only when a space precedes it, so
/// `C#` keeps its hash).
fn strip_closing_hashes(text: &str, start: usize, end: usize) -> usize {
    let bytes = text.as_bytes();
    let mut cut = end;
    while cut > start && bytes[cut - 1] == b'#' {
        cut -= 1;
    }
    if cut == end {
        return end;
    }
    if cut == start || is_blank_byte(bytes[cut - 1]) {
        return trim_end_at(text, start, cut);
    }
    end
}

/// `- `, `* `, `+ `, `1. ` or `1) ` (one to three digits); a marker alone on
/// its line counts too.
fn list_marker(bytes: &[u8], at: usize, end: usize) -> Option<usize> {
    let ends_marker = |i: usize| i == end || is_blank_byte(bytes[i]);
    match bytes.get(at)? {
        b'-' | b'*' | b'+' => ends_marker(at + 1).then_some(at + 1),
        b'0'..=b'9' => {
            let digits = bytes[at..end].iter().take_while(|b| b.is_ascii_digit()).count();
            let dot = at + digits;
            let is_marker =
                digits <= 3 && dot < end && (bytes[dot] == b'.' || bytes[dot] == b')') && ends_marker(dot + 1);
            is_marker.then_some(dot + 1)
        }
        _ => None,
    }
}

/// Skips a task-list box (`[ ]`, `[x]`, `[X]`) after a list marker.
fn skip_task_box(text: &str, at: usize, end: usize) -> usize {
    let rest = &text.as_bytes()[at..end];
    let is_box = rest.len() >= 3
        && rest[0] == b'['
        && matches!(rest[1], b' ' | b'x' | b'X')
        && rest[2] == b']'
        && (rest.len() == 3 || is_blank_byte(rest[3]));
    if is_box {
        skip_spaces(text, at + 3, end)
    } else {
        at
    }
}

// ---------------------------------------------------------------------------
// Pass 2: a block into sentences
// ---------------------------------------------------------------------------

/// What a run of terminators contains.
#[derive(Default)]
struct Run {
    dots: usize,
    strong: bool,
    ellipsis_char: bool,
    cjk: bool,
}

impl Run {
    fn add(&mut self, c: char) {
        match c {
            '.' => self.dots += 1,
            '…' => self.ellipsis_char = true,
            '。' | '！' | '？' => self.cjk = true,
            _ => self.strong = true,
        }
    }

    fn is_ellipsis(&self) -> bool {
        !self.strong && (self.ellipsis_char || self.dots >= 2)
    }
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '‼' | '⁉' | '‽' | '。' | '！' | '？')
}

fn is_closing_quote(c: char) -> bool {
    matches!(c, '"' | '\'' | '”' | '’' | '»' | '›' | '」' | '』')
}

fn is_closer(c: char) -> bool {
    is_closing_quote(c) || matches!(c, ')' | ']' | '}' | '*' | '_')
}

fn is_opener(c: char) -> bool {
    matches!(c, '"' | '\'' | '“' | '‘' | '«' | '‹' | '(' | '[' | '{' | '¿' | '¡' | '*' | '_' | '`' | '「' | '『')
}

/// The char at byte `i` of `s` (`i` on a char boundary, `i < s.len()`).
fn char_at(s: &str, i: usize) -> char {
    s[i..].chars().next().unwrap_or('\0')
}

/// The token boundaries and URL-ness cached for the missing-space rule, so a
/// long token is scanned once however many terminators it holds.
#[derive(Default)]
struct TokenCache {
    end: usize,
    urlish: bool,
}

fn split_block(text: &str, block_start: usize, block_end: usize, out: &mut Vec<(usize, usize)>) {
    let s = &text[block_start..block_end];
    let mut emit = |a: usize, b: usize| push_trimmed(text, block_start + a, block_start + b, out);
    let mut sentence = 0;
    let mut cache = TokenCache::default();
    let mut i = 0;
    while i < s.len() {
        let c = char_at(s, i);
        if !is_terminator(c) {
            i += c.len_utf8();
            continue;
        }
        let run_start = i;
        let mut run = Run::default();
        while i < s.len() && is_terminator(char_at(s, i)) {
            run.add(char_at(s, i));
            i += char_at(s, i).len_utf8();
        }
        let run_end = i;
        let mut j = run_end;
        let mut quote_closed = false;
        while j < s.len() {
            let c = char_at(s, j);
            if is_closer(c) {
                quote_closed |= is_closing_quote(c);
            } else if is_terminator(c) {
                run.add(c);
            } else {
                break;
            }
            j += c.len_utf8();
        }
        while j < s.len() && is_emoji_run_char(char_at(s, j)) {
            j += char_at(s, j).len_utf8();
        }
        if j == s.len() {
            break;
        }
        if !is_space(char_at(s, j)) {
            let glued =
                run.cjk || (j == run_end && missing_space_boundary(s, sentence, run_start, run_end, &run, &mut cache));
            if glued {
                emit(sentence, j);
                sentence = j;
            }
            i = j;
            continue;
        }
        let after_ws = j + s[j..].len() - s[j..].trim_start_matches(is_space).len();
        if after_ws == s.len() {
            break;
        }
        let newline = s[j..after_ws].contains('\n');
        let next = NextWord::read(s, after_ws);
        let split = if run.strong || run.cjk {
            !(quote_closed && next.lower && !newline)
        } else if run.is_ellipsis() {
            newline || !next.lower
        } else {
            period_splits(s, sentence, run_start, &next, newline, quote_closed)
        };
        if split {
            let end = absorb_trailing_symbols(s, j);
            emit(sentence, end);
            sentence = end;
            i = end;
        } else {
            i = after_ws;
        }
    }
    emit(sentence, s.len());
}

fn is_emoji_run_char(c: char) -> bool {
    is_emoji_char(c) || is_emoji_component(c)
}

/// Extends a sentence end over emoji and emoticon tokens that follow it on
/// the same line.
fn absorb_trailing_symbols(s: &str, mut end: usize) -> usize {
    loop {
        let mut k = end;
        while k < s.len() {
            let c = char_at(s, k);
            if !is_space(c) || c == '\n' {
                break;
            }
            k += c.len_utf8();
        }
        if k == end || k >= s.len() {
            return end;
        }
        let token_end = if is_emoji_char(char_at(s, k)) {
            let mut t = k;
            while t < s.len() && is_emoji_run_char(char_at(s, t)) {
                t += char_at(s, t).len_utf8();
            }
            t
        } else {
            let limit = (k + MAX_EMOTICON_LEN + 1).min(s.len());
            match s.as_bytes()[k..limit].iter().position(|&b| b.is_ascii_whitespace()) {
                Some(p) => k + p,
                None if limit == s.len() => limit,
                None => return end,
            }
        };
        let ends_token = token_end == s.len() || is_space(char_at(s, token_end));
        let is_symbol = ends_token
            && (is_emoji_char(char_at(s, k))
                || (s.is_char_boundary(token_end) && EMOTICONS.contains(&&s[k..token_end])));
        if !is_symbol {
            return end;
        }
        end = token_end;
    }
}

/// The start of the word after a candidate boundary (openers skipped).
struct NextWord {
    upper: bool,
    lower: bool,
    digit: bool,
    /// A capitalised common sentence opener (`The`, `It`, `We`…).
    starter: bool,
    /// A single letter followed by a period: another initial.
    initial: bool,
}

impl NextWord {
    fn read(s: &str, mut at: usize) -> Self {
        let mut skipped = 0;
        while at < s.len() && skipped < 8 && is_opener(char_at(s, at)) {
            at += char_at(s, at).len_utf8();
            skipped += 1;
        }
        let c = if at < s.len() { char_at(s, at) } else { '\0' };
        let mut word = [0u8; 12];
        let mut len = 0;
        let bytes = s.as_bytes();
        while at + len < s.len() && len < word.len() && bytes[at + len].is_ascii_alphabetic() {
            word[len] = bytes[at + len].to_ascii_lowercase();
            len += 1;
        }
        let after = bytes.get(at + len).copied();
        let complete = len > 0 && !after.is_some_and(|b| b.is_ascii_alphabetic());
        let word = &word[..len];
        Self {
            upper: c.is_uppercase(),
            lower: c.is_lowercase(),
            digit: c.is_numeric(),
            starter: complete && c.is_uppercase() && STARTERS.contains(&word),
            initial: len == 1 && after == Some(b'.'),
        }
    }
}

/// Common capitalised sentence openers: after an initial or initialism only
/// these make the period a sentence end.
const STARTERS: &[&[u8]] = &[
    b"a", b"after", b"also", b"an", b"and", b"as", b"at", b"before", b"but", b"he", b"her", b"here", b"his", b"how",
    b"however", b"i", b"if", b"in", b"it", b"its", b"maybe", b"my", b"no", b"now", b"on", b"our", b"she", b"so",
    b"some", b"still", b"that", b"the", b"their", b"then", b"there", b"these", b"they", b"this", b"those", b"today",
    b"we", b"what", b"when", b"why", b"yes", b"yet", b"you", b"your",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abbrev {
    /// Not an abbreviation: a period after it ends the sentence.
    None,
    /// Never ends a sentence: titles and inline abbreviations.
    Never,
    /// Ends the sentence unless a number follows (`No. 5`).
    Reference,
    /// Ends the sentence before a capitalised word (`etc.`, `Inc.`).
    Flexible,
    /// Initial or initialism: ends it only before a sentence opener.
    Initial,
    /// An inline list number (`Steps: 1. Mix`).
    ListNumber,
}

const NEVER: &[&str] = &[
    "mr", "mrs", "ms", "mx", "dr", "prof", "st", "mt", "messrs", "mme", "mlle", "e.g", "eg", "i.e", "ie", "vs", "v",
    "cf", "viz", "approx", "appx", "incl", "esp", "resp", "ca", "aka", "a.k.a",
];
/// Titles that are also everyday words (`one more rep.`): treated like
/// initials, as a name follows them but a sentence opener rarely does.
const RARE_TITLES: &[&str] =
    &["col", "lt", "sgt", "capt", "cmdr", "adm", "gov", "sen", "rep", "rev", "hon", "pres", "supt", "gen"];
const REFERENCE: &[&str] =
    &["no", "nos", "fig", "figs", "vol", "vols", "pp", "p", "pg", "art", "ch", "chap", "sec", "eq", "eqs", "ref", "op"];
const FLEXIBLE: &[&str] = &[
    "etc", "inc", "ltd", "co", "corp", "llc", "plc", "jr", "sr", "bros", "al", "dept", "univ", "assn", "ave", "blvd",
    "rd", "ft", "hrs", "mins", "secs", "yrs", "mos", "oz", "lb", "lbs", "pt", "pts", "qty", "govt", "intl", "natl",
    "misc", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "tues",
    "thu", "thur", "thurs", "fri", "ph.d", "phd", "m.d", "b.a", "m.a", "b.sc", "m.sc",
];

/// Classifies the word before a period. `word_start..word_end` is that word
/// within `s`; `sentence` is where the current sentence starts.
fn classify_abbrev(s: &str, sentence: usize, word_start: usize, word_end: usize) -> Abbrev {
    let word = &s[word_start..word_end];
    if word.is_empty() || word.len() > 16 {
        return Abbrev::None;
    }
    let mut buf = [0u8; 16];
    for (dst, b) in buf.iter_mut().zip(word.bytes()) {
        *dst = b.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&buf[..word.len()]).unwrap_or("");
    if NEVER.contains(&lower) {
        return Abbrev::Never;
    }
    if REFERENCE.contains(&lower) {
        return Abbrev::Reference;
    }
    if FLEXIBLE.contains(&lower) {
        return Abbrev::Flexible;
    }
    if RARE_TITLES.contains(&lower) {
        return Abbrev::Initial;
    }
    let mut chars = word.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        if c.is_alphabetic() {
            return Abbrev::Initial;
        }
    }
    // Initialisms: single letters joined by periods (`U.S`, `a.m`).
    let is_initialism = word.contains('.')
        && word.split('.').all(|part| part.chars().count() == 1 && part.chars().all(char::is_alphabetic));
    if is_initialism {
        return Abbrev::Initial;
    }
    if word.len() <= 3 && word.bytes().all(|b| b.is_ascii_digit()) {
        let before = s[sentence.min(word_start)..word_start].trim_end_matches(is_space);
        if before.is_empty() || before.ends_with(':') {
            return Abbrev::ListNumber;
        }
    }
    Abbrev::None
}

/// The word that ends right before `run_start`, with leading openers and
/// punctuation removed; looks back at most 64 bytes (longer tokens are no
/// abbreviation), which keeps segmentation linear.
fn word_before(s: &str, run_start: usize) -> (usize, usize) {
    let floor = run_start.saturating_sub(64);
    let mut start = run_start;
    for (i, c) in s[..run_start].char_indices().rev() {
        if is_space(c) {
            break;
        }
        if i < floor {
            return (run_start, run_start);
        }
        start = i;
    }
    let word = &s[start..run_start];
    let trimmed = word.trim_start_matches(|c: char| !c.is_alphanumeric());
    (run_start - trimmed.len(), run_start)
}

fn period_splits(s: &str, sentence: usize, run_start: usize, next: &NextWord, newline: bool, quoted: bool) -> bool {
    let (word_start, word_end) = word_before(s, run_start);
    match classify_abbrev(s, sentence, word_start, word_end) {
        Abbrev::Never | Abbrev::ListNumber => false,
        Abbrev::Reference => !next.digit,
        Abbrev::Flexible => newline || next.upper,
        Abbrev::Initial => newline || (next.starter && !next.initial),
        Abbrev::None => !(quoted && next.lower && !newline),
    }
}

/// File extensions and top-level domains: `name.Ext` is not two sentences.
const EXTENSIONS: &[&[u8]] = &[
    b"com", b"org", b"net", b"io", b"co", b"uk", b"de", b"fr", b"dev", b"app", b"ai", b"gov", b"edu", b"js", b"ts",
    b"py", b"rs", b"md", b"txt", b"html", b"json", b"toml", b"yaml", b"yml", b"csv", b"pdf", b"png", b"jpg", b"exe",
    b"net", b"cpp", b"java", b"go", b"sh",
];

/// A sentence end glued to the next sentence (`it.The`).
fn missing_space_boundary(
    s: &str,
    sentence: usize,
    run_start: usize,
    run_end: usize,
    run: &Run,
    cache: &mut TokenCache,
) -> bool {
    if run.is_ellipsis() {
        return false;
    }
    let bytes = s.as_bytes();
    // Two lowercase ASCII letters before, a capital and a lowercase letter
    // (or `I` and a non-letter) after.
    if run_start < 2 || !bytes[run_start - 1].is_ascii_lowercase() || !bytes[run_start - 2].is_ascii_alphabetic() {
        return false;
    }
    let next = &bytes[run_end..];
    let capital_word = match next {
        [b'I', rest @ ..] if rest.first().is_none_or(|b| !b.is_ascii_alphabetic()) => true,
        [a, b, ..] => a.is_ascii_uppercase() && b.is_ascii_lowercase(),
        _ => false,
    };
    if !capital_word {
        return false;
    }
    let word_len = next.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let mut word = [0u8; 8];
    if word_len <= word.len() {
        for (dst, b) in word.iter_mut().zip(&next[..word_len]) {
            *dst = b.to_ascii_lowercase();
        }
        if EXTENSIONS.contains(&&word[..word_len]) {
            return false;
        }
    }
    if run_start >= cache.end {
        let start = s[..run_start].rfind(is_space).map_or(0, |i| i + char_at(s, i).len_utf8());
        let end = s[run_start..].find(is_space).map_or(s.len(), |i| run_start + i);
        let token = &s[start..end];
        let urlish = token.contains("://")
            || token.contains('@')
            || token.contains('/')
            || token.contains('\\')
            || token.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("www."));
        *cache = TokenCache { end, urlish };
    }
    if cache.urlish {
        return false;
    }
    let (word_start, word_end) = word_before(s, run_start);
    // Within a glued token, only the part after the last period counts.
    let word_start = s[word_start..word_end].rfind(['.', '!', '?']).map_or(word_start, |i| word_start + i + 1);
    classify_abbrev(s, sentence, word_start, word_end) == Abbrev::None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The segments' texts, after checking every segment's offsets.
    fn split(src: &str) -> Vec<&str> {
        let segments = split_sentences(src);
        check_invariants(src, &segments);
        segments.iter().map(|s| s.text(src)).collect()
    }

    fn check_invariants(src: &str, segments: &[Segment]) {
        let mut prev_end = 0;
        for seg in segments {
            assert!(seg.start < seg.end, "empty segment {seg:?} in {src:?}");
            assert!(seg.end <= src.len(), "out of bounds {seg:?} in {src:?}");
            assert!(seg.start >= prev_end, "overlap or disorder {seg:?} in {src:?}");
            assert!(src.is_char_boundary(seg.start) && src.is_char_boundary(seg.end), "{seg:?} in {src:?}");
            let text = seg.text(src);
            assert!(!text.starts_with(is_space) && !text.ends_with(is_space), "untrimmed {text:?} in {src:?}");
            assert_eq!(seg.char_start, src[..seg.start].chars().count(), "char_start of {seg:?} in {src:?}");
            assert_eq!(seg.char_end - seg.char_start, text.chars().count(), "char_end of {seg:?} in {src:?}");
            let by_chars: String = src.chars().skip(seg.char_start).take(seg.char_end - seg.char_start).collect();
            assert_eq!(by_chars, text);
            prev_end = seg.end;
        }
    }

    #[test]
    fn empty_and_blank_inputs_have_no_segments() {
        assert!(split("").is_empty());
        assert!(split("   \n\t \r\n  ").is_empty());
        assert!(split("\u{feff}\u{200b} ").is_empty());
    }

    #[test]
    fn text_without_terminator_is_one_segment() {
        assert_eq!(split("  just some words here  "), ["just some words here"]);
        assert_eq!(split("no punctuation at all 😀"), ["no punctuation at all 😀"]);
    }

    #[test]
    fn terminal_punctuation_splits() {
        assert_eq!(split("Hello there. How are you? I'm fine!"), ["Hello there.", "How are you?", "I'm fine!"]);
        assert_eq!(split("What?! No way!!! Really?"), ["What?!", "No way!!!", "Really?"]);
        assert_eq!(split("Wow‼ Great."), ["Wow‼", "Great."]);
    }

    #[test]
    fn ellipsis_splits_unless_a_lowercase_word_follows() {
        assert_eq!(split("Well... I don't know."), ["Well...", "I don't know."]);
        assert_eq!(split("Wait... what? Fine."), ["Wait... what?", "Fine."]);
        assert_eq!(split("Hmm… Maybe. Or not… who knows"), ["Hmm…", "Maybe.", "Or not… who knows"]);
        assert_eq!(split("So.. That happened"), ["So..", "That happened"]);
    }

    #[test]
    fn closing_quotes_and_brackets_stay_with_the_sentence() {
        assert_eq!(split("He said \"stop.\" Then he left."), ["He said \"stop.\"", "Then he left."]);
        assert_eq!(split("(This is an aside.) Back to it."), ["(This is an aside.)", "Back to it."]);
        assert_eq!(split("She yelled “Run!” and we ran."), ["She yelled “Run!” and we ran."]);
        assert_eq!(split("\"Who's there?\" she asked. Nobody."), ["\"Who's there?\" she asked.", "Nobody."]);
    }

    #[test]
    fn emoji_and_emoticons_after_a_terminator_stay() {
        assert_eq!(split("Wow! 😀 Next one."), ["Wow! 😀", "Next one."]);
        assert_eq!(split("Love it!!! :) :D See you."), ["Love it!!! :) :D", "See you."]);
        assert_eq!(split("Done.👍🏽 Next"), ["Done.👍🏽", "Next"]);
        assert_eq!(split("Family! 👨‍👩‍👧 time. Yes"), ["Family! 👨‍👩‍👧", "time.", "Yes"]);
        assert_eq!(split("Ugh. >:( Whatever."), ["Ugh. >:(", "Whatever."]);
    }

    #[test]
    fn abbreviations_do_not_split() {
        let cases = [
            "Mr. Smith met Mrs. Jones and Dr. Who.",
            "Prof. Xavier lives on Baker St. near the park.",
            "Cats vs. dogs is an old debate.",
            "Bring fruit, e.g. apples, i.e. the red ones.",
            "It weighs approx. three kilos.",
            "See Fig. 3 and No. 5 for details.",
            "J. R. R. Tolkien wrote it.",
            "George W. Bush spoke at 9 a.m. yesterday.",
            "She moved to the U.S. last year.",
            "Acme Inc. announced profits.",
            "They met on Jan. 5 and again in Dec. last year.",
        ];
        for case in cases {
            assert_eq!(split(case), [case], "{case}");
        }
    }

    #[test]
    fn abbreviations_that_end_a_sentence_split_before_a_new_one() {
        assert_eq!(split("Apples, pears, etc. The rest was bread."), ["Apples, pears, etc.", "The rest was bread."]);
        assert_eq!(split("I live in the U.S. It is big."), ["I live in the U.S.", "It is big."]);
        assert_eq!(split("We left at 5 p.m. Then it rained."), ["We left at 5 p.m.", "Then it rained."]);
        assert_eq!(split("It was Plan B. We had no other."), ["It was Plan B.", "We had no other."]);
        assert_eq!(split("I said no. Then I left."), ["I said no.", "Then I left."]);
        assert_eq!(split("Thanks OP. This helped."), ["Thanks OP.", "This helped."]);
        assert_eq!(split("One more rep. Then rest."), ["One more rep.", "Then rest."]);
        assert_eq!(split("Ask Gen. Patton."), ["Ask Gen. Patton."]);
    }

    #[test]
    fn numbers_versions_urls_and_files_do_not_split() {
        let cases = [
            "Pi is 3.14 roughly.",
            "Upgrade to v1.2.3 now.",
            "It costs $4.99 only.",
            "Visit https://example.com/a.b?x=1.5&y=2 for more.",
            "Go to www.example.org today.",
            "Read reddit.com/r/rust daily.",
            "Mail john.doe@example.co.uk please.",
            "Edit config.toml and main.rs first.",
            "Try Node.Js sometime.",
        ];
        for case in cases {
            assert_eq!(split(case), [case], "{case}");
        }
        assert_eq!(split("It costs $4.99. Cheap!"), ["It costs $4.99.", "Cheap!"]);
        assert_eq!(split("See https://x.com/foo. Then go."), ["See https://x.com/foo.", "Then go."]);
        assert_eq!(split("Edit config.toml. Restart."), ["Edit config.toml.", "Restart."]);
    }

    #[test]
    fn missing_space_between_sentences_splits() {
        assert_eq!(split("I loved it.The acting was great."), ["I loved it.", "The acting was great."]);
        assert_eq!(split("really good!I mean it"), ["really good!", "I mean it"]);
        assert_eq!(split("Ask Mr.Smith now"), ["Ask Mr.Smith now"]);
    }

    #[test]
    fn inline_numbered_lists_are_not_sentences() {
        assert_eq!(split("Steps: 1. Mix flour. 2. Bake it."), ["Steps: 1. Mix flour.", "2. Bake it."]);
        assert_eq!(split("I ate 3. Then I slept."), ["I ate 3.", "Then I slept."]);
    }

    #[test]
    fn cjk_terminators_split_without_spaces() {
        assert_eq!(split("今日は晴れ。明日は雨！"), ["今日は晴れ。", "明日は雨！"]);
    }

    #[test]
    fn blank_line_always_ends_a_segment() {
        assert_eq!(split("First paragraph without end\n\nSecond one"), ["First paragraph without end", "Second one"]);
        assert_eq!(split("a\r\n\r\nb"), ["a", "b"]);
        assert_eq!(split("Dr.\n\nSmith"), ["Dr.", "Smith"]);
    }

    #[test]
    fn single_newline_is_a_soft_wrap_unless_a_sentence_ended() {
        assert_eq!(split("This sentence is\nwrapped over lines."), ["This sentence is\nwrapped over lines."]);
        assert_eq!(split("Great movie!\nloved it"), ["Great movie!", "loved it"]);
        assert_eq!(split("It ended.\nnext line"), ["It ended.", "next line"]);
        assert_eq!(split("Well...\nand then"), ["Well...", "and then"]);
        assert_eq!(split("We met Dr.\nSmith today."), ["We met Dr.\nSmith today."]);
        assert_eq!(split("line one\r\nline two"), ["line one\r\nline two"]);
    }

    #[test]
    fn markdown_lists_start_segments_without_their_marker() {
        let src = "Things:\n- first item\n* second item\n+ third\n1. one\n2) two\n- [x] done task";
        assert_eq!(split(src), ["Things:", "first item", "second item", "third", "one", "two", "done task"]);
        assert_eq!(split("- item one\nnext line"), ["item one", "next line"]);
        assert_eq!(
            split("- a long item that\n  wraps onto the next line"),
            ["a long item that\n  wraps onto the next line"]
        );
        assert_eq!(split("  - nested item. Two sentences."), ["nested item.", "Two sentences."]);
    }

    #[test]
    fn markdown_headings_and_quotes_start_segments() {
        let src = "# Title\nSome text here\n## Section ##\n> quoted line\n> > nested\nAfter";
        assert_eq!(split(src), ["Title", "Some text here", "Section", "quoted line", "nested", "After"]);
        assert_eq!(split("#hashtag is not a heading"), ["#hashtag is not a heading"]);
        assert_eq!(split(">be me\n>go outside"), ["be me", "go outside"]);
        assert_eq!(split(">:( so angry"), [">:( so angry"]);
        assert_eq!(split("I love C#\nreally"), ["I love C#\nreally"]);
        assert_eq!(split("Text\n---\nMore"), ["Text", "More"]);
        assert_eq!(split("> - quoted item"), ["quoted item"]);
    }

    #[test]
    fn fenced_code_is_one_segment() {
        let src = "Look at this:\n```rust\nfn main() { println!(\"Hi. There\"); }\n\nlet x = 1.5;\n```\nWorks now.";
        let fence = "```rust\nfn main() { println!(\"Hi. There\"); }\n\nlet x = 1.5;\n```";
        assert_eq!(split(src), ["Look at this:", fence, "Works now."]);
        assert_eq!(split("~~~\nunclosed. Code\n\nhere"), ["~~~\nunclosed. Code\n\nhere"]);
        assert_eq!(split("Use ```x = 1``` here. Ok"), ["Use ```x = 1``` here.", "Ok"]);
        assert_eq!(split("```\n```"), ["```\n```"]);
    }

    #[test]
    fn offsets_agree_with_chars() {
        let src = "  Ça va? Très bien! 😀\n\n- ünïcödé item. Ende…";
        let segments = split_sentences(src);
        let texts: Vec<_> = segments.iter().map(|s| s.text(src)).collect();
        assert_eq!(texts, ["Ça va?", "Très bien! 😀", "ünïcödé item.", "Ende…"]);
        assert_eq!((segments[0].char_start, segments[0].char_end), (2, 8));
        assert_eq!((segments[1].start, segments[1].char_start), (10, 9));
        check_invariants(src, &segments);
    }

    #[test]
    fn weird_inputs_do_not_panic() {
        let cases = [
            "\u{301}",
            "\u{301}.\u{301}",
            ".",
            "...",
            "!?!",
            "\0\u{1}\u{7f}. \u{1b}[0m",
            "a.\u{301}B",
            "👍🏽.",
            "- ",
            "#",
            ">",
            "> ",
            "1.",
            "```",
            "[x]",
            "- [x]",
            "\n\n\n",
            "e.g.",
            "。",
            "a\u{2028}b. C",
        ];
        for case in cases {
            split(case);
        }
    }

    #[test]
    fn large_inputs_are_handled() {
        let mb = 1 << 20;
        for piece in ["a", ".", "a.", "a. ", "A. ", "\n", "```\n", "...", "- x\n", "😀", "http://x.y/", "Ab.Cd"] {
            let src = piece.repeat(mb / piece.len());
            let segments = split_sentences(&src);
            check_invariants_fast(&src, &segments);
        }
    }

    /// Invariants without the quadratic char-count re-check.
    fn check_invariants_fast(src: &str, segments: &[Segment]) {
        let mut prev_end = 0;
        for seg in segments {
            assert!(seg.start < seg.end && seg.end <= src.len() && seg.start >= prev_end);
            assert!(src.is_char_boundary(seg.start) && src.is_char_boundary(seg.end));
            prev_end = seg.end;
        }
    }

    use crate::testing::Rng;

    #[test]
    fn generated_inputs_keep_the_invariants() {
        let pieces = [
            "Dr.",
            "e.g.",
            " ",
            " ",
            " ",
            "\n",
            "\n\n",
            "- ",
            "* ",
            "# ",
            "> ",
            ">",
            "```",
            "~~~",
            "...",
            "…",
            "!",
            "?",
            ".",
            ". ",
            "😀",
            "👍🏽",
            "\u{200d}",
            "\u{301}",
            "\r",
            "\t",
            "\0",
            "word",
            "Word",
            "B",
            "3.14",
            "\"",
            ")",
            "(",
            ":)",
            "1. ",
            "2) ",
            "www.a.com",
            "é",
            "中",
            "。",
            "-",
            "#",
            "U.S.",
            "etc.",
            "---",
            "\u{feff}",
            "'",
            "I",
            "The",
            "no",
            "a.m.",
            "[ ]",
            "+",
            "=",
            "http://x.io/p",
            "it.The",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let n = (rng.next() % 40) as usize;
            let src: String = (0..n).map(|_| rng.pick(&pieces)).collect();
            let segments = split_sentences(&src);
            check_invariants(&src, &segments);
            // Every letter lies in some segment: only markers, fences' blank
            // edges and breaks are left out, and none of them is a letter.
            for (i, c) in src.char_indices() {
                if c.is_alphabetic() {
                    assert!(
                        segments.iter().any(|s| s.start <= i && i < s.end),
                        "letter at {i} dropped from {src:?}: {segments:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn segments_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Segment>();
    }

    /// Throughput figure: `cargo test --release -p osprey-nlp --lib
    /// segment::tests::throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, not a check"]
    fn throughput() {
        let text = "Just watched the new episode!!! Honestly... it was great. Dr. Who never disappoints :) \
                    See https://example.com/review for my full take. Anyone else think the ending was rushed?";
        let n = 200_000;
        let started = std::time::Instant::now();
        let mut total = 0;
        for _ in 0..n {
            total += split_sentences(std::hint::black_box(text)).len();
        }
        let secs = started.elapsed().as_secs_f64();
        println!("split_sentences: {:.0} texts/s ({} bytes each, {total} segments)", n as f64 / secs, text.len());
        let article = text.repeat(5000);
        let started = std::time::Instant::now();
        let count = split_sentences(&article).len();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "split_sentences: {:.1} MB/s on a {} byte text ({count} segments)",
            article.len() as f64 / secs / 1e6,
            article.len()
        );
    }
}
