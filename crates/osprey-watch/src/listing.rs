//! Reddit's listing format, read by the Reddit source and the listing-files source.
//!
//! `{"kind":"Listing","data":{"after":"t3_x"|null,"children":[{"kind":"t3","data":{…}}]}}`;
//! a comment page's array of listings is read too (its `t1` comments are ignored).

use serde::Deserialize;

use crate::post::{from_epoch_secs, SourcePost};

/// One page of a listing: its posts in listing order and the `after` cursor to the next page.
#[derive(Debug)]
pub(crate) struct ListingPage {
    pub(crate) after: Option<String>,
    pub(crate) posts: Vec<RedditPost>,
    /// `t3` children that lacked the fields a post needs.
    pub(crate) skipped: usize,
}

/// The fields of a `t3` (link or self post) the sources use.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RedditPost {
    id: String,
    /// The fullname, `t3_<id>`.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    selftext: String,
    #[serde(default)]
    author: Option<String>,
    pub(crate) created_utc: f64,
    #[serde(default)]
    permalink: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    score: Option<i64>,
    #[serde(default)]
    num_comments: Option<u64>,
    #[serde(default)]
    subreddit: Option<String>,
}

impl RedditPost {
    /// The fullname, `t3_<id>` (built from `id` when the listing left `name` out).
    pub(crate) fn fullname(&self) -> String {
        match &self.name {
            Some(name) if !name.is_empty() => name.clone(),
            _ => format!("t3_{}", self.id),
        }
    }

    /// The post as a source returns it; recorded pages are Reddit posts too, so `source` is `reddit`.
    pub(crate) fn into_source_post(self) -> SourcePost {
        SourcePost {
            source: "reddit".to_owned(),
            external_id: self.fullname(),
            title: self.title,
            body: self.selftext,
            // Reddit writes "[deleted]" for removed accounts: no author.
            author: self.author.filter(|a| !a.is_empty() && a != "[deleted]"),
            created: from_epoch_secs(self.created_utc),
            persona_id: None,
            url: self.url,
            permalink: self.permalink,
            score: self.score,
            num_comments: self.num_comments,
            subreddit: self.subreddit,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDocument {
    One(RawListing),
    Many(Vec<RawListing>),
}

#[derive(Deserialize)]
struct RawListing {
    kind: String,
    data: RawListingData,
}

#[derive(Deserialize)]
struct RawListingData {
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    children: Vec<RawThing>,
}

#[derive(Deserialize)]
struct RawThing {
    kind: String,
    data: serde_json::Value,
}

/// Parse a listing body; `Err` carries a description of what is wrong with it.
pub(crate) fn parse_listing(body: &[u8]) -> Result<ListingPage, String> {
    let listings = match serde_json::from_slice::<RawDocument>(body) {
        Ok(RawDocument::One(listing)) => vec![listing],
        Ok(RawDocument::Many(listings)) => listings,
        Err(e) => return Err(describe_json_error(body, &e)),
    };
    if let Some(other) = listings.iter().find(|l| l.kind != "Listing") {
        return Err(format!("expected kind \"Listing\", found {:?}", other.kind));
    }
    let after = listings.first().and_then(|l| l.data.after.clone()).filter(|a| !a.is_empty());
    let mut posts = Vec::new();
    let mut skipped = 0;
    for thing in listings.into_iter().flat_map(|l| l.data.children) {
        if thing.kind != "t3" {
            continue;
        }
        match serde_json::from_value::<RedditPost>(thing.data) {
            Ok(post) => posts.push(post),
            Err(e) => {
                skipped += 1;
                tracing::warn!(error = %e, "skipping a listing entry that is not a readable post");
            }
        }
    }
    Ok(ListingPage { after, posts, skipped })
}

/// serde_json's message, or a plainer one for bodies that are not JSON at all (an HTML error page).
fn describe_json_error(body: &[u8], error: &serde_json::Error) -> String {
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        let start = String::from_utf8_lossy(&body[..body.len().min(60)]).replace(char::is_whitespace, " ");
        format!("not JSON ({error}); the body starts {start:?}")
    } else {
        format!("not a listing: {error}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_posts_skips_comments_and_counts_broken_entries() {
        let body = br#"{"kind":"Listing","data":{"after":"t3_b","before":null,"children":[
            {"kind":"t3","data":{"id":"b","name":"t3_b","title":"B","selftext":"","author":"[deleted]","created_utc":1718000100.0,"score":5}},
            {"kind":"t1","data":{"id":"c1","body":"a comment"}},
            {"kind":"t3","data":{"id":"a","title":"no time"}},
            {"kind":"t3","data":{"id":"z","title":"Z","created_utc":1718000000}}
        ]}}"#;
        let page = parse_listing(body).expect("listing");
        assert_eq!(page.after.as_deref(), Some("t3_b"));
        assert_eq!(page.skipped, 1);
        let names: Vec<String> = page.posts.iter().map(RedditPost::fullname).collect();
        assert_eq!(names, ["t3_b", "t3_z"]);
        let post = page.posts[0].clone().into_source_post();
        assert_eq!(post.author, None);
        assert_eq!(post.score, Some(5));
    }

    #[test]
    fn reads_a_comment_page_and_rejects_what_is_not_a_listing() {
        let page = parse_listing(
            br#"[{"kind":"Listing","data":{"after":null,"children":[{"kind":"t3","data":{"id":"q","name":"t3_q","title":"Q","created_utc":1.0}}]}},
                {"kind":"Listing","data":{"after":null,"children":[{"kind":"t1","data":{"id":"c"}}]}}]"#,
        )
        .expect("comment page");
        assert_eq!(page.posts.len(), 1);
        assert_eq!(page.after, None);

        let not_json = parse_listing(b"<html><body>502 Bad Gateway</body></html>").expect_err("html");
        assert!(not_json.starts_with("not JSON"), "{not_json}");
        let wrong_kind = parse_listing(br#"{"kind":"t3","data":{"children":[]}}"#).expect_err("kind");
        assert!(wrong_kind.contains("Listing"), "{wrong_kind}");
        let wrong_shape = parse_listing(br#"{"data":[]}"#).expect_err("shape");
        assert!(wrong_shape.starts_with("not a listing"), "{wrong_shape}");
    }
}
