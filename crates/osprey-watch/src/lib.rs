//! Post sources for `osprey watch`.
//!
//! `osprey watch` collects posts from sources, then dedups, filters by
//! topics, summarises, runs emotion, stores and alerts. This crate is the
//! first step: each source is a small adapter behind the [`Source`] trait, so
//! the pipeline drives them all the same way and persists their state.
//!
//! # The contract
//!
//! ```text
//! let mut source = config.build()?;
//! if let Some(saved) = store.cursor(source.name()) { source.restore(&saved)?; }
//! loop {
//!     let batch = source.poll().await;          // new posts, oldest first, and the cursor after them
//!     if let Some(e) = &batch.error { report(e) } // the source already backed off
//!     store.posts(&batch.posts)?;                // dedup (content hash), filter, analyse, store
//!     store.save_cursor(source.name(), &batch.cursor)?;   // the commit: only after the posts are stored
//!     match batch.next_poll { Some(wait) => sleep(wait).await, None => break }
//! }
//! ```
//!
//! * [`Source::poll`] returns a [`Batch`]: the posts that are new since the
//!   previous batch, **oldest first**, and [`Batch::cursor`], the source's state
//!   *after* those posts. A source never returns a post again once it has
//!   returned it in an earlier batch of the same run, nor a post from before
//!   the cursor it was restored from (as far as its bounded memory of ids
//!   reaches; see below).
//! * **Committing is the pipeline's job.** The source advances in memory as it
//!   returns a batch; the pipeline saves `batch.cursor` only once the batch's
//!   posts are stored. After a restart, [`Source::restore`] with the last saved
//!   cursor resumes right after the last stored batch: no post is skipped, and
//!   a batch lost in a crash (returned, not committed) is returned again. That
//!   makes delivery at-least-once across crashes; the pipeline's content-hash
//!   dedup absorbs the repeats. When storing a batch fails without a crash,
//!   `restore` the last saved cursor to have it returned again.
//! * `poll` never fails: problems go in [`Batch::error`] ([`SourceError`], with
//!   [`SourceError::is_transient`]), the batch is empty and its cursor
//!   unchanged, and `next_poll` already includes the wait: the backoff for
//!   HTTP sources, the interval for file sources. Permanent problems (a 404
//!   subreddit, a malformed feed) are reported the same way and the source
//!   keeps trying, so a fixed upstream recovers on its own. (A malformed
//!   listing file is the exception: it is counted in [`Batch::skipped`] and
//!   passed over, as a recording will not change.)
//! * [`Batch::next_poll`] says when to poll next: the interval, a backoff, a
//!   server's `Retry-After` or rate-limit reset, zero when more is ready right
//!   away, and `None` when the source is finished (a file read to its end
//!   outside tail mode; see [`Batch::is_done`]). Waits after failures and those
//!   a server imposed are enforced: polling before they end makes no request
//!   and returns an empty batch with the time left. The interval is advice: an
//!   early poll after a success simply polls.
//! * `poll` is cancel-safe: a source changes its state only after its last
//!   `.await`, so dropping the future (shutdown in a `select!`) leaves it as it was.
//! * A source waits for nothing inside `poll` except its I/O; the pipeline owns
//!   the sleeping. A push source (`POST /v1/ingest`, living in the server) fits
//!   the same trait: its `poll` awaits the next items on a channel (bounded by a
//!   short deadline), its cursor is `null` and `restore` accepts only that, and
//!   its `next_poll` is zero.
//!
//! # Cursors
//!
//! A cursor is JSON ([`serde_json::Value`]) tagged with the source's kind, so a
//! cursor saved for one kind is refused ([`SourceError::InvalidCursor`]) by
//! another. Store it as it is; the shapes below are for reading, not writing.
//!
//! | kind | cursor |
//! |---|---|
//! | `reddit` | `{"type":"reddit","newest":{"name":"t3_…","created_utc":…},"recent":["t3_…",…],"http":{"etag":…,"last_modified":…}}` |
//! | `listing_files` | `{"type":"listing_files","last_file":"page-003.json","recent":["t3_…",…]}` |
//! | `jsonl` | `{"type":"jsonl","offset":1234,"file":{"dev":…,"ino":…,"head_len":256,"head_hash":…}}` |
//! | `rss` | `{"type":"rss","seen":["guid",…],"window_oldest":"2024-06-10T06:13:20Z","http":{…}}` |
//!
//! # The sources
//!
//! Each is configured by a [`SourceConfig`] (`type = "reddit" | "listing_files"
//! | "jsonl" | "rss"`), embedded in the watch section of osprey's settings;
//! every one takes an optional `name` (the key its cursor is saved under),
//! durations are seconds (`*_secs`, fractions allowed), and unknown keys are
//! refused.
//!
//! **Reddit** ([`RedditSource`]) reads the public `/r/<a>+<b>/new.json`
//! listing over HTTP, newest first, from a required `base_url`: this build
//! cannot reach `https://www.reddit.com` itself, so it is an `http://` proxy
//! or mirror of it. The cursor keeps the newest post seen
//! (fullname and `created_utc`) and the fullnames of recent ones; a post is
//! new when it is neither remembered nor older than the newest. Each poll
//! fetches the first page (conditionally: `If-None-Match` / `If-Modified-Since`
//! from the last full answer, a 304 meaning nothing new) and pages back with
//! `after` until it meets a post already seen, at most `max_pages` pages (past
//! that it logs the gap and moves on). With no cursor it takes `backfill_pages`
//! pages (1 by default; 0 starts from now). Rate limits: `x-ratelimit-remaining`
//! below 1 holds the next request until `x-ratelimit-reset`; 429 waits
//! `Retry-After` (seconds or an HTTP date); 5xx, timeouts and connection errors
//! back off exponentially with jitter up to a cap. Every request carries the
//! configured `User-Agent`, a timeout and a body-size limit.
//!
//! **Listing files** ([`ListingFilesSource`]) reads recorded listing pages: one
//! JSON file, or every `*.json` in a directory in name order, one file per
//! poll, each once. The cursor is the last file done plus recent fullnames, so
//! posts repeated across overlapping recordings are returned once. With
//! `tail = true` a directory is watched for new files; otherwise the source is
//! done after the last file. Write files atomically (write, then rename):
//! names starting with `.` are ignored.
//!
//! **JSONL** ([`JsonlSource`]) reads one post per line (`id`/`title`/`body`/
//! `author`/`created`, or Reddit's names: `name`, `selftext`, `created_utc`,
//! …). The cursor is a byte offset plus the file's identity (device, inode and
//! a hash of its first bytes), so a rotated or truncated file is read again
//! from the start. In tail mode (the default) a partial last line waits for its
//! newline and the source polls again after the interval at end of file;
//! otherwise the last line is taken as it is and the source is done. Unreadable
//! lines are counted in [`Batch::skipped`], logged and skipped.
//!
//! **RSS 2.0, RSS 1.0 and Atom** ([`RssSource`]) come over HTTP (with the same
//! conditional requests and backoff as Reddit) or from a file. Items become
//! posts: guid/id, title, content or description/summary with HTML stripped
//! and entities decoded, author, and pubDate/published/updated. A feed is a
//! moving window, so the cursor keeps the ids seen (bounded by `max_seen`, but
//! always every id of the last window) and the oldest
//! date of the last window: an item is new when its id was not seen and it is
//! not older than that window.
//!
//! # Posts
//!
//! A [`SourcePost`] carries what the pipeline needs plus the Reddit extras
//! (url, permalink, score, comment count, subreddit) where known.
//! [`SourcePost::into_post`] makes the analysis [`Post`](osprey_types::analysis::Post):
//! its id is `<source>:<external_id>` (`reddit:t3_1dcw9k2`, `rss:<guid>`,
//! `jsonl:<id>`; recorded listing pages are `reddit` posts too) and `created`
//! an RFC 3339 string.
//!
//! # Limits
//!
//! * This build has no TLS client, so source URLs must be `http://`; an
//!   `https://` URL is refused when the source is built, with a message saying
//!   so, rather than failing every poll. That is why Reddit's `base_url` has no
//!   default: it names an `http://` proxy or mirror of Reddit.
//! * Backoff ([`Backoff`]) is exponential with full jitter floored at the
//!   base: after `n` failures the wait is uniform in `[base, min(cap, base·2ⁿ)]`.
//! * The ids a cursor remembers are bounded (Reddit 500, listing files 2000,
//!   feeds `max_seen` or the last window's length if longer, itself bounded by
//!   `max_body_bytes`), which bounds the cursor's size too.
//! * Bodies and files are read up to their byte limit and no further, and
//!   large ones are parsed on tokio's blocking pool, off the async workers.
//! * A JSONL source follows its path: lines appended to a file after the last
//!   poll and before it was rotated away are not read.

mod backoff;
mod bodies;
mod config;
mod error;
mod feed;
mod html;
mod http;
mod jsonl;
mod listing;
mod listing_files;
mod post;
mod recent;
mod reddit;
mod rss;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use backoff::Backoff;
pub use config::{build_all, SourceConfig};
pub use error::{ConfigError, SourceError};
pub use jsonl::{JsonlConfig, JsonlSource};
pub use listing_files::{ListingFilesConfig, ListingFilesSource};
pub use post::SourcePost;
pub use reddit::{RedditConfig, RedditSource};
pub use rss::{RssConfig, RssSource};

/// The future [`Source::poll`] returns: boxed, so sources can live behind `dyn Source`.
pub type PollFuture<'a> = Pin<Box<dyn Future<Output = Batch> + Send + 'a>>;

/// Something that yields new posts when polled. See the [crate docs](crate) for the contract.
pub trait Source: Send {
    /// The key the pipeline saves this source's cursor under.
    fn name(&self) -> &str;

    /// Resume from a cursor saved from an earlier [`Batch::cursor`] of a source
    /// of the same kind. On error the source keeps its current state.
    fn restore(&mut self, cursor: &serde_json::Value) -> Result<(), SourceError>;

    /// The next batch of new posts, oldest first, with the cursor after them.
    fn poll(&mut self) -> PollFuture<'_>;
}

/// What one [`Source::poll`] produced.
#[derive(Debug, Clone)]
#[must_use = "the cursor must be saved once the posts are stored"]
pub struct Batch {
    /// New posts, oldest first.
    pub posts: Vec<SourcePost>,
    /// The source's state after `posts`: save it once they are stored, hand it to [`Source::restore`].
    pub cursor: serde_json::Value,
    /// When to poll again; `None` when the source is finished.
    pub next_poll: Option<Duration>,
    /// Records that could not be read and were skipped (bad JSONL lines, broken listing entries, files).
    pub skipped: usize,
    /// What went wrong in this poll, if anything. The source keeps going.
    pub error: Option<SourceError>,
}

impl Batch {
    /// The source has nothing more to give (`next_poll` is `None`).
    pub fn is_done(&self) -> bool {
        self.next_poll.is_none()
    }
}

/// Serialize a cursor. The cursor types are plain structs with string keys,
/// for which `serde_json` cannot fail; `null` would only make a later
/// `restore` refuse the cursor and the source start over.
fn encode_cursor<T: Serialize>(cursor: &T) -> serde_json::Value {
    serde_json::to_value(cursor).unwrap_or(serde_json::Value::Null)
}

/// Read a cursor of the given kind. (serde writes a struct's `type` tag but does not check it.)
fn decode_cursor<T: DeserializeOwned>(cursor: &serde_json::Value, kind: &str) -> Result<T, SourceError> {
    match cursor.get("type").and_then(serde_json::Value::as_str) {
        Some(found) if found == kind => {}
        Some(found) => return Err(SourceError::InvalidCursor(format!("a {found} cursor, not a {kind} one"))),
        None => return Err(SourceError::InvalidCursor(format!("not a {kind} cursor (no \"type\")"))),
    }
    T::deserialize(cursor).map_err(|e| SourceError::InvalidCursor(e.to_string()))
}
