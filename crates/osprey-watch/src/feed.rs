//! RSS 2.0, RSS 1.0 (RDF) and Atom documents to feed items.

use chrono::{DateTime, Utc};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::html::{decode_entity, html_to_text, is_block_tag, normalize_text};
use crate::post::{parse_timestamp, SourcePost};

/// One item of a feed, in plain text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FeedItem {
    /// guid / id, else the link, else the title.
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) body: String,
    pub(crate) author: Option<String>,
    pub(crate) created: Option<DateTime<Utc>>,
    pub(crate) link: Option<String>,
}

impl FeedItem {
    pub(crate) fn into_source_post(self) -> SourcePost {
        SourcePost {
            source: "rss".into(),
            external_id: self.id,
            title: self.title,
            body: self.body,
            author: self.author,
            created: self.created,
            persona_id: None,
            url: self.link,
            permalink: None,
            score: None,
            num_comments: None,
            subreddit: None,
        }
    }
}

/// A parsed feed: its items in document order and how many were unusable.
#[derive(Debug)]
pub(crate) struct Feed {
    pub(crate) items: Vec<FeedItem>,
    pub(crate) skipped: usize,
}

/// How the text of a field is written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Markup {
    /// HTML, possibly escaped or in CDATA (RSS, Atom `type="html"`/`"text"`): stripped.
    Html,
    /// Atom `type="xhtml"`: the markup is XML elements, already reduced to text while reading.
    Xhtml,
}

/// The text of one child element of an item, collected while reading it.
#[derive(Debug)]
struct Field {
    name: String,
    markup: Markup,
    text: String,
    /// Text of a nested `<name>` (Atom's `<author><name>…</name></author>`).
    nested_name: Option<String>,
    in_nested_name: bool,
}

impl Field {
    fn push(&mut self, text: &str) {
        self.text.push_str(text);
        if self.in_nested_name {
            self.nested_name.get_or_insert_with(String::new).push_str(text);
        }
    }

    fn plain(&self) -> String {
        match self.markup {
            Markup::Html => html_to_text(&self.text),
            Markup::Xhtml => normalize_text(&self.text),
        }
    }
}

#[derive(Debug, Default)]
struct ItemBuilder {
    id: Option<String>,
    title: Option<String>,
    link: Option<String>,
    summary: Option<String>,
    content: Option<String>,
    author: Option<String>,
    published: Option<String>,
    updated: Option<String>,
}

impl ItemBuilder {
    fn take(&mut self, field: Field) {
        let slot = match field.name.as_str() {
            "guid" | "id" => &mut self.id,
            "title" => &mut self.title,
            "link" => &mut self.link,
            "description" | "summary" => &mut self.summary,
            "content:encoded" | "content" => &mut self.content,
            "author" | "dc:creator" => &mut self.author,
            "pubDate" | "published" | "dc:date" | "issued" => &mut self.published,
            "updated" | "modified" => &mut self.updated,
            _ => return,
        };
        let value = match field.name.as_str() {
            "author" | "dc:creator" => author_name(&field),
            "guid" | "id" | "link" | "pubDate" | "published" | "dc:date" | "issued" | "updated" | "modified" => {
                field.text.trim().to_owned()
            }
            _ => field.plain(),
        };
        // The first non-empty occurrence wins (a feed may repeat a field).
        if slot.is_none() && !value.is_empty() {
            *slot = Some(value);
        }
    }

    fn build(self) -> Option<FeedItem> {
        let title = self.title.map(|t| t.replace('\n', " ")).unwrap_or_default();
        let id = self.id.or_else(|| self.link.clone()).or_else(|| (!title.is_empty()).then(|| title.clone()))?;
        let created = self.published.or(self.updated).as_deref().and_then(parse_timestamp);
        let body = self.content.or(self.summary).unwrap_or_default();
        Some(FeedItem { id, title, body, author: self.author, created, link: self.link })
    }
}

/// `Jane Doe` from Atom's `<name>`, from RSS's `jane@example.com (Jane Doe)`, or the text as it is.
fn author_name(field: &Field) -> String {
    if let Some(name) = field.nested_name.as_deref().map(normalize_text).filter(|n| !n.is_empty()) {
        return name;
    }
    let text = normalize_text(&field.text);
    if let (Some(open), true) = (text.find('('), text.ends_with(')')) {
        let inner = text[open + 1..text.len() - 1].trim();
        if !inner.is_empty() && text[..open].contains('@') {
            return inner.to_owned();
        }
    }
    text
}

/// The element's name with an `atom:` prefix dropped (other prefixes kept: `dc:creator`).
fn element_name(start: &BytesStart<'_>) -> String {
    let name = start.name().into_inner();
    name.strip_prefix("atom:").unwrap_or(name).to_owned()
}

fn attribute(start: &BytesStart<'_>, key: &str) -> Option<String> {
    start
        .attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == key)
        .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok().map(|v| v.into_owned()))
}

/// The `href` of an Atom `<link>` that points at the item itself (`rel` absent or `alternate`).
fn alternate_href(start: &BytesStart<'_>) -> Option<String> {
    let rel = attribute(start, "rel");
    if rel.as_deref().is_some_and(|r| r != "alternate") {
        return None;
    }
    attribute(start, "href").filter(|h| !h.trim().is_empty())
}

/// Parse an RSS or Atom document. `Err` says why it is not a feed.
pub(crate) fn parse_feed(text: &str) -> Result<Feed, String> {
    let mut reader = Reader::from_str(text);
    let mut depth = 0usize;
    let mut root_seen = false;
    // The item being read and its depth; the child field being collected.
    let mut item: Option<(ItemBuilder, usize)> = None;
    let mut field: Option<Field> = None;
    let mut feed = Feed { items: Vec::new(), skipped: 0 };
    loop {
        let event = reader.read_event().map_err(|e| format!("XML error at byte {}: {e}", reader.error_position()))?;
        if let (false, Event::Start(start) | Event::Empty(start)) = (root_seen, &event) {
            let name = element_name(start);
            let local = name.rsplit(':').next().unwrap_or_default();
            if !matches!(local, "rss" | "feed" | "RDF") {
                return Err(format!("root element <{name}> is not <rss>, <feed> or <rdf:RDF>"));
            }
            root_seen = true;
            depth += usize::from(matches!(event, Event::Start(_)));
            continue;
        }
        match event {
            Event::Start(start) => {
                let name = element_name(&start);
                match (&mut item, &mut field) {
                    (None, _) if name == "item" || name == "entry" => item = Some((ItemBuilder::default(), depth)),
                    (Some((builder, item_depth)), None) if depth == *item_depth + 1 => {
                        if name == "link" {
                            if let Some(href) = alternate_href(&start) {
                                builder.link.get_or_insert(href);
                            }
                        }
                        let markup = match attribute(&start, "type").as_deref() {
                            Some("xhtml") => Markup::Xhtml,
                            _ => Markup::Html,
                        };
                        field =
                            Some(Field { name, markup, text: String::new(), nested_name: None, in_nested_name: false });
                    }
                    (Some(_), Some(field)) => {
                        if is_block_tag(&name) {
                            field.push("\n");
                        }
                        field.in_nested_name |= name == "name";
                    }
                    _ => {}
                }
                depth += 1;
            }
            Event::Empty(start) => {
                let name = element_name(&start);
                match (&mut item, &mut field) {
                    (Some((builder, item_depth)), None) if depth == *item_depth + 1 && name == "link" => {
                        if let Some(href) = alternate_href(&start) {
                            builder.link.get_or_insert(href);
                        }
                    }
                    (Some(_), Some(field)) if is_block_tag(&name) => field.push("\n"),
                    _ => {}
                }
            }
            Event::End(end) => {
                depth = depth.saturating_sub(1);
                let qualified = end.name().into_inner();
                let name = qualified.strip_prefix("atom:").unwrap_or(qualified);
                match (&mut item, field.take()) {
                    (Some((builder, item_depth)), Some(done)) if depth == *item_depth + 1 => builder.take(done),
                    (Some(_), Some(mut open)) => {
                        if is_block_tag(name) {
                            open.push("\n");
                        }
                        if name == "name" {
                            open.in_nested_name = false;
                        }
                        field = Some(open);
                    }
                    (Some((_, item_depth)), None) if depth == *item_depth => {
                        if let Some((builder, _)) = item.take() {
                            match builder.build() {
                                Some(built) => feed.items.push(built),
                                None => feed.skipped += 1,
                            }
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(text) => {
                if let Some(field) = &mut field {
                    field.push(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some(field) = &mut field {
                    field.push(&data.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(field) = &mut field {
                    let name: &str = &reference;
                    match decode_entity(name) {
                        Some(decoded) => field.push(&decoded),
                        None => field.push(&format!("&{name};")),
                    }
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !root_seen {
        return Err("no root element: not an XML document".into());
    }
    Ok(feed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_items_with_html_and_entities() {
        let rss = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>This Week in Rust</title><link>https://this-week-in-rust.org/</link>
<item>
  <title>This Week in Rust 550 &amp; more</title>
  <link>https://this-week-in-rust.org/blog/2024/06/05/this-week-in-rust-550/</link>
  <guid isPermaLink="false">twir-550</guid>
  <description>&lt;p&gt;Hello &amp;amp; welcome&lt;/p&gt;&lt;p&gt;Second&amp;nbsp;para&lt;/p&gt;</description>
  <dc:creator>Rust Community</dc:creator>
  <pubDate>Wed, 05 Jun 2024 00:00:00 +0000</pubDate>
</item>
<item>
  <title><![CDATA[CDATA <em>title</em>]]></title>
  <link>https://example.com/2</link>
  <author>editor@example.com (Ed Itor)</author>
  <description>short</description>
  <content:encoded><![CDATA[<p>Full &ldquo;content&rdquo;</p><script>x()</script>]]></content:encoded>
</item>
<item><description>no id, no link, no title</description></item>
</channel></rss>"#;
        let feed = parse_feed(rss).expect("feed");
        assert_eq!(feed.skipped, 1);
        let [first, second] = &feed.items[..] else { panic!("two items expected: {:?}", feed.items) };
        assert_eq!(first.id, "twir-550");
        assert_eq!(first.title, "This Week in Rust 550 & more");
        assert_eq!(first.body, "Hello & welcome\nSecond\u{a0}para".replace('\u{a0}', " "));
        assert_eq!(first.author.as_deref(), Some("Rust Community"));
        assert_eq!(first.created.map(|t| t.to_rfc3339()), Some("2024-06-05T00:00:00+00:00".into()));
        assert_eq!(second.id, "https://example.com/2");
        assert_eq!(second.title, "CDATA title");
        assert_eq!(second.body, "Full “content”");
        assert_eq!(second.author.as_deref(), Some("Ed Itor"));
        assert_eq!(second.created, None);
    }

    #[test]
    fn reads_atom_entries() {
        let atom = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Inside Rust</title>
  <link rel="self" href="https://blog.rust-lang.org/inside-rust/feed.xml"/>
  <entry>
    <title type="html">Announcing &lt;code&gt;cargo&lt;/code&gt; news</title>
    <link rel="alternate" href="https://blog.rust-lang.org/inside-rust/2024/06/01/news.html" type="text/html"/>
    <link rel="replies" href="https://example.com/comments"/>
    <id>tag:blog.rust-lang.org,2024:news</id>
    <updated>2024-06-02T10:00:00Z</updated>
    <published>2024-06-01T09:30:00+02:00</published>
    <author><name>The Cargo Team</name><email>cargo@example.com</email></author>
    <summary type="html">&lt;p&gt;Summary only&lt;/p&gt;</summary>
  </entry>
  <atom:entry xmlns:atom="http://www.w3.org/2005/Atom">
    <atom:id>urn:uuid:2</atom:id>
    <atom:title>Second</atom:title>
    <atom:updated>2024-06-03T00:00:00Z</atom:updated>
    <atom:content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>a &lt; b</p><p>and <b>bold</b></p></div></atom:content>
  </atom:entry>
</feed>"#;
        let feed = parse_feed(atom).expect("feed");
        let [first, second] = &feed.items[..] else { panic!("two entries expected: {:?}", feed.items) };
        assert_eq!(first.id, "tag:blog.rust-lang.org,2024:news");
        assert_eq!(first.title, "Announcing cargo news");
        assert_eq!(first.link.as_deref(), Some("https://blog.rust-lang.org/inside-rust/2024/06/01/news.html"));
        assert_eq!(first.author.as_deref(), Some("The Cargo Team"));
        assert_eq!(first.body, "Summary only");
        assert_eq!(first.created.map(|t| t.to_rfc3339()), Some("2024-06-01T07:30:00+00:00".into()));
        assert_eq!(second.id, "urn:uuid:2");
        assert_eq!(second.body, "a < b\nand bold");
        assert_eq!(second.created.map(|t| t.to_rfc3339()), Some("2024-06-03T00:00:00+00:00".into()));
    }

    #[test]
    fn reads_rss_1_and_refuses_what_is_not_a_feed() {
        let rdf = r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://example.com/"><title>t</title></channel>
  <item rdf:about="https://example.com/1"><title>One</title><link>https://example.com/1</link><dc:date>2024-06-01T00:00:00Z</dc:date></item>
</rdf:RDF>"#;
        let feed = parse_feed(rdf).expect("rss 1.0");
        assert_eq!(feed.items.len(), 1);
        assert_eq!(feed.items[0].id, "https://example.com/1");
        assert!(feed.items[0].created.is_some());

        assert!(parse_feed("<html><body>Not found</body></html>").expect_err("html").contains("<html>"));
        assert!(parse_feed("").expect_err("empty").contains("no root element"));
        assert!(parse_feed("<rss><channel><item><title>x</item></channel></rss>").is_err());
        assert!(parse_feed("{\"kind\":\"Listing\"}").is_err());
    }
}
