//! Recorded Reddit listing pages: one JSON file, or a directory of them read in name order.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bodies::{parse_off_runtime, read_capped};
use crate::config::secs;
use crate::error::{ConfigError, SourceError};
use crate::listing::{parse_listing, RedditPost};
use crate::recent::RecentIds;
use crate::{decode_cursor, encode_cursor, Batch, PollFuture, Source};

/// How many fullnames a cursor remembers across files.
const RECENT_CAP: usize = 2000;

/// Settings of a `type = "listing_files"` source.
///
/// ```toml
/// [[watch.sources]]
/// type = "listing_files"
/// path = "recordings/r-rust"   # a listing JSON file, or a directory of *.json pages
/// tail = false                 # true: keep watching the directory for new files
/// interval_secs = 30           # how often a tailed directory is listed
/// max_file_bytes = 33554432
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListingFilesConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub path: PathBuf,
    #[serde(default)]
    pub tail: bool,
    #[serde(default = "default_interval_secs")]
    pub interval_secs: f64,
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
}

fn default_interval_secs() -> f64 {
    30.0
}
fn default_max_file_bytes() -> u64 {
    32 * 1024 * 1024
}

impl ListingFilesConfig {
    /// `name`, or `listing_files:<path>`.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("listing_files:{}", self.path.display()))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "listing_files")]
struct FilesCursor {
    /// The last file read (files are read in name order).
    #[serde(default)]
    last_file: Option<String>,
    /// Fullnames returned lately: recordings overlap.
    #[serde(default)]
    recent: RecentIds,
}

/// The listing-files source. See the [crate docs](crate) for its behaviour.
#[derive(Debug)]
pub struct ListingFilesSource {
    name: String,
    path: PathBuf,
    tail: bool,
    interval: Duration,
    max_file_bytes: u64,
    cursor: FilesCursor,
}

/// One file's fate in a poll.
enum FileOutcome {
    Read(Vec<RedditPost>, usize),
    /// Unreadable as a listing: counted, reported, and not tried again.
    Rejected(SourceError),
}

impl ListingFilesSource {
    pub fn new(config: &ListingFilesConfig) -> Result<Self, ConfigError> {
        let name = config.name();
        if config.path.as_os_str().is_empty() {
            return Err(ConfigError::new(&name, "path is empty"));
        }
        if config.max_file_bytes == 0 {
            return Err(ConfigError::new(&name, "max_file_bytes must be at least 1"));
        }
        Ok(ListingFilesSource {
            interval: secs(&name, "interval_secs", config.interval_secs, true)?,
            path: config.path.clone(),
            tail: config.tail,
            max_file_bytes: config.max_file_bytes,
            cursor: FilesCursor::default(),
            name,
        })
    }

    /// Files not read yet, in name order: the file itself, or the directory's `*.json`.
    async fn pending(&self) -> Result<(Vec<(String, PathBuf)>, bool), SourceError> {
        let io = |e: std::io::Error| SourceError::io(&self.path, &e);
        let meta = tokio::fs::metadata(&self.path).await.map_err(io)?;
        let mut files = Vec::new();
        if meta.is_file() {
            if let Some(name) = self.path.file_name().and_then(|n| n.to_str()) {
                files.push((name.to_owned(), self.path.clone()));
            }
        } else {
            let mut entries = tokio::fs::read_dir(&self.path).await.map_err(io)?;
            while let Some(entry) = entries.next_entry().await.map_err(io)? {
                let Ok(name) = entry.file_name().into_string() else {
                    tracing::warn!(source = %self.name, file = ?entry.file_name(), "skipping a file whose name is not UTF-8");
                    continue;
                };
                if name.starts_with('.') || !name.ends_with(".json") {
                    continue;
                }
                if tokio::fs::metadata(entry.path()).await.map_err(io)?.is_file() {
                    files.push((name, entry.path()));
                }
            }
        }
        files.retain(|(name, _)| self.cursor.last_file.as_ref().is_none_or(|last| name > last));
        files.sort();
        Ok((files, meta.is_file()))
    }

    async fn read(&self, path: &Path) -> Result<FileOutcome, SourceError> {
        let Some(body) = read_capped(path, self.max_file_bytes).await.map_err(|e| SourceError::io(path, &e))? else {
            let origin = path.display().to_string();
            return Ok(FileOutcome::Rejected(SourceError::TooLarge { origin, limit: self.max_file_bytes }));
        };
        Ok(match parse_off_runtime(body, |body| parse_listing(&body)).await {
            Ok(page) => FileOutcome::Read(page.posts, page.skipped),
            Err(message) => FileOutcome::Rejected(SourceError::Malformed {
                origin: path.display().to_string(),
                format: "listing",
                message,
            }),
        })
    }

    fn batch(
        &self,
        posts: Vec<RedditPost>,
        next_poll: Option<Duration>,
        skipped: usize,
        error: Option<SourceError>,
    ) -> Batch {
        Batch {
            posts: posts.into_iter().map(RedditPost::into_source_post).collect(),
            cursor: encode_cursor(&self.cursor),
            next_poll,
            skipped,
            error,
        }
    }

    async fn poll_files(&mut self) -> Batch {
        let (files, single_file) = match self.pending().await {
            Ok(found) => found,
            Err(error) => return self.batch(Vec::new(), Some(self.interval), 0, Some(error)),
        };
        let Some((file_name, path)) = files.first() else {
            let next = (self.tail && !single_file).then_some(self.interval);
            return self.batch(Vec::new(), next, 0, None);
        };
        let outcome = match self.read(path).await {
            Ok(outcome) => outcome,
            Err(error) => return self.batch(Vec::new(), Some(self.interval), 0, Some(error)),
        };
        let (mut fresh, skipped, error) = match outcome {
            FileOutcome::Read(posts, skipped) => (posts, skipped, None),
            FileOutcome::Rejected(error) => {
                tracing::warn!(source = %self.name, %error, "skipping a listing file");
                (Vec::new(), 1, Some(error))
            }
        };
        let mut names = HashSet::with_capacity(fresh.len());
        fresh.retain(|post| {
            let name = post.fullname();
            !self.cursor.recent.contains(&name) && names.insert(name)
        });
        // Oldest first; posts of the same second keep the reverse of listing order.
        fresh.reverse();
        fresh.sort_by(|a, b| a.created_utc.total_cmp(&b.created_utc));
        self.cursor.recent.remember(fresh.iter().rev().map(RedditPost::fullname), RECENT_CAP);
        self.cursor.last_file = Some(file_name.clone());
        let next =
            if files.len() > 1 { Some(Duration::ZERO) } else { (self.tail && !single_file).then_some(self.interval) };
        self.batch(fresh, next, skipped, error)
    }
}

impl Source for ListingFilesSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn restore(&mut self, cursor: &serde_json::Value) -> Result<(), SourceError> {
        self.cursor = decode_cursor(cursor, "listing_files")?;
        Ok(())
    }

    fn poll(&mut self) -> PollFuture<'_> {
        Box::pin(self.poll_files())
    }
}
