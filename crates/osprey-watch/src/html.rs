//! HTML fragments (feed descriptions and content) to plain text.

/// Tags that end a line of text.
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tr",
    "ul",
];

/// Tags whose content is not text.
const SKIPPED_TAGS: &[&str] = &["script", "style", "template", "noscript"];

/// Named entities beyond XML's five that feeds commonly carry.
const ENTITIES: &[(&str, &str)] = &[
    ("amp", "&"),
    ("lt", "<"),
    ("gt", ">"),
    ("quot", "\""),
    ("apos", "'"),
    ("nbsp", "\u{a0}"),
    ("ensp", "\u{2002}"),
    ("emsp", "\u{2003}"),
    ("thinsp", "\u{2009}"),
    ("ndash", "–"),
    ("mdash", "—"),
    ("hellip", "…"),
    ("lsquo", "‘"),
    ("rsquo", "’"),
    ("sbquo", "‚"),
    ("ldquo", "“"),
    ("rdquo", "”"),
    ("bdquo", "„"),
    ("laquo", "«"),
    ("raquo", "»"),
    ("bull", "•"),
    ("middot", "·"),
    ("copy", "©"),
    ("reg", "®"),
    ("trade", "™"),
    ("deg", "°"),
    ("plusmn", "±"),
    ("times", "×"),
    ("divide", "÷"),
    ("euro", "€"),
    ("pound", "£"),
    ("yen", "¥"),
    ("cent", "¢"),
    ("sect", "§"),
    ("para", "¶"),
    ("dagger", "†"),
    ("larr", "←"),
    ("rarr", "→"),
    ("uarr", "↑"),
    ("darr", "↓"),
    ("hearts", "♥"),
    ("shy", ""),
    ("zwj", "\u{200d}"),
    ("zwnj", "\u{200c}"),
    ("iexcl", "¡"),
    ("iquest", "¿"),
    ("szlig", "ß"),
    ("auml", "ä"),
    ("ouml", "ö"),
    ("uuml", "ü"),
    ("Auml", "Ä"),
    ("Ouml", "Ö"),
    ("Uuml", "Ü"),
    ("aacute", "á"),
    ("eacute", "é"),
    ("iacute", "í"),
    ("oacute", "ó"),
    ("uacute", "ú"),
    ("agrave", "à"),
    ("egrave", "è"),
    ("ecirc", "ê"),
    ("ccedil", "ç"),
    ("ntilde", "ñ"),
    ("oslash", "ø"),
    ("aring", "å"),
    ("aelig", "æ"),
];

/// Whether an element ends a line of text.
pub(crate) fn is_block_tag(name: &str) -> bool {
    BLOCK_TAGS.contains(&name)
}

/// The text an entity reference (`amp`, `#39`, `#x27`) stands for; `None` if unknown.
pub(crate) fn decode_entity(name: &str) -> Option<String> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse::<u32>().ok()?,
        };
        let c = char::from_u32(code).filter(|c| *c != '\0').unwrap_or(char::REPLACEMENT_CHARACTER);
        return Some(c.to_string());
    }
    ENTITIES.iter().find(|(entity, _)| *entity == name).map(|(_, text)| (*text).to_owned())
}

/// Strip tags (dropping script and style content), decode entities, and
/// tidy whitespace: block elements end lines, blank lines go.
///
/// A `<` not followed by a letter, `/`, `!` or `?` is text, so "a < b" survives.
pub(crate) fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find(['<', '&']) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if rest.starts_with('&') {
            rest = decode_one_entity(rest, &mut out);
        } else {
            rest = skip_tag(rest, &mut out);
        }
    }
    out.push_str(rest);
    normalize_text(&out)
}

/// `text` with its entities decoded and any `<` kept as text.
fn push_decoded(mut text: &str, out: &mut String) {
    while let Some(at) = text.find('&') {
        out.push_str(&text[..at]);
        text = decode_one_entity(&text[at..], out);
    }
    out.push_str(text);
}

/// Where `needle` (ASCII) first occurs in `haystack`, ignoring ASCII case. Allocates nothing.
fn find_ignore_ascii_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack.as_bytes().windows(needle.len()).position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Decode the entity `rest` starts with (or keep the `&`); returns what follows.
fn decode_one_entity<'a>(rest: &'a str, out: &mut String) -> &'a str {
    let name_end = rest[1..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '#')).map(|i| i + 1);
    if let Some(end) = name_end.filter(|end| *end > 1 && *end <= 32 && rest[*end..].starts_with(';')) {
        if let Some(text) = decode_entity(&rest[1..end]) {
            out.push_str(&text);
            return &rest[end + 1..];
        }
    }
    out.push('&');
    &rest[1..]
}

/// Skip the tag, comment or declaration `rest` starts with; returns what follows.
fn skip_tag<'a>(rest: &'a str, out: &mut String) -> &'a str {
    let after = &rest[1..];
    if let Some(comment) = after.strip_prefix("!--") {
        return comment.find("-->").map_or("", |end| &comment[end + 3..]);
    }
    if !after.starts_with(|c: char| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?')) {
        out.push('<');
        return after;
    }
    let Some(end) = after.find('>') else {
        // No `>` follows, so no tag does either: the rest is text.
        out.push('<');
        push_decoded(after, out);
        return "";
    };
    let tag = &after[..end];
    let closing = tag.starts_with('/');
    let name: String = tag
        .trim_start_matches('/')
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let remainder = &after[end + 1..];
    if is_block_tag(&name) {
        out.push('\n');
    } else if matches!(name.as_str(), "td" | "th" | "img") {
        out.push(' ');
    }
    if !closing && !tag.ends_with('/') && SKIPPED_TAGS.contains(&name.as_str()) {
        let close = format!("</{name}");
        return match find_ignore_ascii_case(remainder, &close) {
            Some(at) => remainder[at..].find('>').map_or("", |end| &remainder[at + end + 1..]),
            None => "",
        };
    }
    remainder
}

/// Collapse runs of whitespace within lines, trim lines, drop blank ones.
pub(crate) fn normalize_text(text: &str) -> String {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tags_and_decodes_entities() {
        let html =
            "<p>Rust&nbsp;1.80 is <b>out</b>&#33; Read the <a href=\"https://blog.rust-lang.org/\">post</a>.</p>\
                    <p>Fish &amp; chips &mdash; &#x1F980; &unknown; &amp</p><br/>Bye";
        assert_eq!(html_to_text(html), "Rust 1.80 is out! Read the post.\nFish & chips — 🦀 &unknown; &amp\nBye");
    }

    #[test]
    fn drops_scripts_comments_and_keeps_lone_brackets() {
        let html = "a < b and c<!-- hidden --> <script type=\"x\">if (a<b) {}</script><STYLE>p{}</STYLE>done";
        assert_eq!(html_to_text(html), "a < b and c done");
        assert_eq!(html_to_text("&lt;b&gt; stays text"), "<b> stays text");
        assert_eq!(html_to_text("<ul><li>one</li><li>two</li></ul>"), "one\ntwo");
        assert_eq!(html_to_text("<table><tr><td>a</td><td>b</td></tr></table>"), "a b");
        assert_eq!(html_to_text("unterminated <a href="), "unterminated <a href=");
        assert_eq!(html_to_text("<script>never closed"), "");
    }

    #[test]
    fn skipped_elements_end_at_their_closing_tag_in_any_case() {
        assert_eq!(html_to_text("a<script>x()</ScRiPt>b<STYLE>p{}</style >c<Script>y</SCRIPT>d"), "abcd");
        assert_eq!(html_to_text("<NoScript>no</noscript>shown"), "shown");
        assert_eq!(find_ignore_ascii_case("ab</ScRiPt>", "</script"), Some(2));
        assert_eq!(find_ignore_ascii_case("</scrip", "</script"), None);
    }

    /// Each skipped element once lowercased the whole rest of the input: O(n²) on this.
    #[test]
    fn many_skipped_elements_strip_in_linear_time() {
        let repeats = (1 << 20) / "<script></script>x".len();
        let html = "<script></script>x".repeat(repeats);
        assert_eq!(html_to_text(&html), "x".repeat(repeats));
        let mixed = "<SCRIPT>if (a<b) {}</ScRiPt>x".repeat(repeats / 2);
        assert_eq!(html_to_text(&mixed), "x".repeat(repeats / 2));
    }

    /// Brackets with no `>` after them once searched the whole rest each.
    #[test]
    fn unclosed_brackets_stay_text_in_linear_time() {
        let brackets = "<<a&amp;".repeat(1 << 17);
        assert_eq!(html_to_text(&brackets), "<<a&".repeat(1 << 17));
    }

    #[test]
    fn decodes_numeric_references_defensively() {
        assert_eq!(decode_entity("#39").as_deref(), Some("'"));
        assert_eq!(decode_entity("#X27").as_deref(), Some("'"));
        assert_eq!(decode_entity("#0").as_deref(), Some("\u{fffd}"));
        assert_eq!(decode_entity("#xD800").as_deref(), Some("\u{fffd}"));
        assert_eq!(decode_entity("#99999999999"), None);
        assert_eq!(decode_entity("nope"), None);
    }
}
