//! One post per line of a JSON Lines file, optionally followed as it grows (`tail -F`).

use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, BufReader};

use crate::config::secs;
use crate::error::{ConfigError, SourceError};
use crate::post::{from_epoch_secs, parse_timestamp, SourcePost};
use crate::{decode_cursor, encode_cursor, Batch, PollFuture, Source};

/// Bytes at the start of the file hashed into its identity (catches copy-truncate rotation).
const HEAD_LEN: u64 = 256;

/// Settings of a `type = "jsonl"` source.
///
/// ```toml
/// [[watch.sources]]
/// type = "jsonl"
/// path = "/var/lib/osprey/inbox.jsonl"
/// tail = true                # false: read to the end once, then finish
/// interval_secs = 5          # how often the end of the file is checked in tail mode
/// max_batch = 500            # lines per poll
/// max_line_bytes = 1048576   # longer lines are skipped as bad
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub path: PathBuf,
    #[serde(default = "default_tail")]
    pub tail: bool,
    #[serde(default = "default_interval_secs")]
    pub interval_secs: f64,
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
}

fn default_tail() -> bool {
    true
}
fn default_interval_secs() -> f64 {
    5.0
}
fn default_max_batch() -> usize {
    500
}
fn default_max_line_bytes() -> usize {
    1024 * 1024
}

impl JsonlConfig {
    /// `name`, or `jsonl:<path>`.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("jsonl:{}", self.path.display()))
    }
}

/// Which file the offset belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FileIdentity {
    #[serde(default)]
    dev: Option<u64>,
    #[serde(default)]
    ino: Option<u64>,
    /// How many leading bytes `head_hash` covers (up to 256).
    head_len: u64,
    /// FNV-1a of those bytes.
    head_hash: u64,
}

impl FileIdentity {
    fn of(meta: &std::fs::Metadata, head: &[u8]) -> Self {
        let (dev, ino) = device_and_inode(meta);
        FileIdentity { dev, ino, head_len: head.len() as u64, head_hash: fnv1a(head) }
    }

    /// Whether `now` (whose first bytes are `head`) is still the file this identity was taken of.
    fn same_file(&self, now: &FileIdentity, head: &[u8]) -> bool {
        self.dev == now.dev
            && self.ino == now.ino
            && usize::try_from(self.head_len)
                .ok()
                .and_then(|len| head.get(..len))
                .is_some_and(|h| fnv1a(h) == self.head_hash)
    }
}

#[cfg(unix)]
fn device_and_inode(meta: &std::fs::Metadata) -> (Option<u64>, Option<u64>) {
    use std::os::unix::fs::MetadataExt;
    (Some(meta.dev()), Some(meta.ino()))
}

#[cfg(not(unix))]
fn device_and_inode(_meta: &std::fs::Metadata) -> (Option<u64>, Option<u64>) {
    (None, None)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "jsonl")]
struct JsonlCursor {
    /// Bytes consumed: the start of the first line not yet returned.
    offset: u64,
    #[serde(default)]
    file: Option<FileIdentity>,
}

/// The JSONL source. See the [crate docs](crate) for its behaviour.
#[derive(Debug)]
pub struct JsonlSource {
    name: String,
    path: PathBuf,
    tail: bool,
    interval: Duration,
    max_batch: usize,
    max_line_bytes: usize,
    cursor: JsonlCursor,
}

/// What one read from the cursor on found.
struct Scan {
    posts: Vec<SourcePost>,
    skipped: usize,
    cursor: JsonlCursor,
    /// Stopped at `max_batch` lines with more bytes after them.
    more: bool,
}

impl JsonlSource {
    pub fn new(config: &JsonlConfig) -> Result<Self, ConfigError> {
        let name = config.name();
        if config.path.as_os_str().is_empty() {
            return Err(ConfigError::new(&name, "path is empty"));
        }
        if config.max_batch == 0 || config.max_line_bytes == 0 {
            return Err(ConfigError::new(&name, "max_batch and max_line_bytes must be at least 1"));
        }
        Ok(JsonlSource {
            interval: secs(&name, "interval_secs", config.interval_secs, true)?,
            path: config.path.clone(),
            tail: config.tail,
            max_batch: config.max_batch,
            max_line_bytes: config.max_line_bytes,
            cursor: JsonlCursor::default(),
            name,
        })
    }

    async fn scan(&self) -> Result<Scan, SourceError> {
        let io = |e: std::io::Error| SourceError::io(&self.path, &e);
        let mut file = tokio::fs::File::open(&self.path).await.map_err(io)?;
        let meta = file.metadata().await.map_err(io)?;
        let mut head = Vec::new();
        (&mut file).take(HEAD_LEN).read_to_end(&mut head).await.map_err(io)?;
        let identity = FileIdentity::of(&meta, &head);

        let mut offset = self.cursor.offset;
        let continues =
            meta.len() >= offset && self.cursor.file.as_ref().is_none_or(|before| before.same_file(&identity, &head));
        if !continues {
            if offset > 0 {
                tracing::info!(source = %self.name, path = %self.path.display(), "file was rotated or truncated; reading it from the start");
            }
            offset = 0;
        }
        file.seek(SeekFrom::Start(offset)).await.map_err(io)?;
        let mut reader = BufReader::with_capacity(64 * 1024, file);

        let mut scan = Scan { posts: Vec::new(), skipped: 0, cursor: JsonlCursor::default(), more: false };
        let limit = self.max_line_bytes as u64 + 1;
        let mut line = Vec::new();
        let mut lines = 0;
        loop {
            if lines == self.max_batch {
                scan.more = !reader.fill_buf().await.map_err(io)?.is_empty();
                break;
            }
            line.clear();
            let read = (&mut reader).take(limit).read_until(b'\n', &mut line).await.map_err(io)? as u64;
            if read == 0 {
                break;
            }
            let complete = line.last() == Some(&b'\n');
            if !complete && read == limit {
                // Longer than max_line_bytes: skip to its end, once it has one.
                let (rest, ended) = skip_line(&mut reader).await.map_err(io)?;
                if !ended && self.tail {
                    break;
                }
                tracing::warn!(source = %self.name, offset, limit = self.max_line_bytes, "skipping an over-long line");
                offset += read + rest;
                lines += 1;
                scan.skipped += 1;
                continue;
            }
            if !complete && self.tail {
                // A line still being written: wait for its newline.
                break;
            }
            match parse_line(&line) {
                Ok(Some(post)) => scan.posts.push(post),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(source = %self.name, offset, %error, "skipping an unreadable line");
                    scan.skipped += 1;
                }
            }
            offset += read;
            lines += 1;
        }
        scan.cursor = JsonlCursor { offset, file: Some(identity) };
        Ok(scan)
    }

    async fn poll_file(&mut self) -> Batch {
        match self.scan().await {
            Ok(scan) => {
                self.cursor = scan.cursor;
                let next_poll = if scan.more { Some(Duration::ZERO) } else { self.tail.then_some(self.interval) };
                Batch {
                    posts: scan.posts,
                    cursor: encode_cursor(&self.cursor),
                    next_poll,
                    skipped: scan.skipped,
                    error: None,
                }
            }
            Err(error) => Batch {
                posts: Vec::new(),
                cursor: encode_cursor(&self.cursor),
                next_poll: Some(self.interval),
                skipped: 0,
                error: Some(error),
            },
        }
    }
}

/// Consume the rest of a line; returns the bytes consumed and whether a newline ended it.
async fn skip_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<(u64, bool)> {
    let mut skipped = 0;
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok((skipped, false));
        }
        if let Some(at) = buffer.iter().position(|b| *b == b'\n') {
            reader.consume(at + 1);
            return Ok((skipped + at as u64 + 1, true));
        }
        let len = buffer.len();
        reader.consume(len);
        skipped += len as u64;
    }
}

/// One line as a post; `Ok(None)` for a blank line.
///
/// Takes the analysis `Post` names (`id`, `title`, `body`, `author`, `created`,
/// `persona_id`) or Reddit's (`name`, `selftext`, `created_utc`, `permalink`,
/// `url`, `score`, `num_comments`, `subreddit`), also wrapped as a listing
/// child (`{"kind":"t3","data":{…}}`). A post needs an id and a title or body.
fn parse_line(line: &[u8]) -> Result<Option<SourcePost>, String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut record) = value else {
        return Err("not a JSON object".into());
    };
    if let (Some(Value::String(_)), Some(Value::Object(_))) = (record.get("kind"), record.get("data")) {
        if let Some(Value::Object(data)) = record.remove("data") {
            record = data;
        }
    }
    let text = |record: &Map<String, Value>, key: &str| match record.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    };
    let id = text(&record, "name")
        .filter(|name| name.starts_with("t3_"))
        .or_else(|| match record.get("id") {
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => text(&record, "id"),
        })
        .or_else(|| text(&record, "name"))
        .ok_or("no id (`id` or `name`)")?;
    let title = text(&record, "title").unwrap_or_default();
    let body = ["body", "selftext", "text", "content"].iter().find_map(|key| text(&record, key)).unwrap_or_default();
    if title.is_empty() && body.is_empty() {
        return Err(format!("post {id:?} has neither a title nor a body"));
    }
    let created = ["created", "created_utc", "timestamp", "date"].iter().find_map(|key| match record.get(*key) {
        Some(Value::Number(n)) => n.as_f64().and_then(from_epoch_secs),
        Some(Value::String(s)) => parse_timestamp(s),
        _ => None,
    });
    Ok(Some(SourcePost {
        source: "jsonl".into(),
        external_id: id,
        title,
        body,
        author: text(&record, "author").filter(|a| a != "[deleted]"),
        created,
        persona_id: text(&record, "persona_id"),
        url: text(&record, "url"),
        permalink: text(&record, "permalink"),
        score: record.get("score").and_then(Value::as_i64),
        num_comments: record.get("num_comments").and_then(Value::as_u64),
        subreddit: text(&record, "subreddit"),
    }))
}

impl Source for JsonlSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn restore(&mut self, cursor: &Value) -> Result<(), SourceError> {
        self.cursor = decode_cursor(cursor, "jsonl")?;
        Ok(())
    }

    fn poll(&mut self) -> PollFuture<'_> {
        Box::pin(self.poll_file())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(line: &str) -> Result<Option<SourcePost>, String> {
        parse_line(line.as_bytes())
    }

    #[test]
    fn reads_post_and_reddit_shaped_lines() {
        let plain =
            post(r#"{"id":7,"title":"T","body":"B","author":"a","created":"2024-06-10T06:13:20Z","persona_id":"p"}"#)
                .expect("line")
                .expect("post");
        assert_eq!((plain.external_id.as_str(), plain.persona_id.as_deref()), ("7", Some("p")));
        assert_eq!(plain.created, from_epoch_secs(1_718_000_000.0));

        let reddit = post(r#"{"id":"1abc","name":"t3_1abc","title":"T","selftext":"S","created_utc":1718000000.0,"score":4,"num_comments":2,"subreddit":"rust"}"#)
            .expect("line")
            .expect("post");
        assert_eq!((reddit.external_id.as_str(), reddit.body.as_str()), ("t3_1abc", "S"));
        assert_eq!((reddit.score, reddit.num_comments, reddit.subreddit.as_deref()), (Some(4), Some(2), Some("rust")));

        let wrapped = post(r#"{"kind":"t3","data":{"name":"t3_x","title":"W","created_utc":"1718000000"}}"#)
            .expect("line")
            .expect("post");
        assert_eq!((wrapped.external_id.as_str(), wrapped.created), ("t3_x", from_epoch_secs(1_718_000_000.0)));
    }

    #[test]
    fn blank_lines_are_nothing_and_bad_lines_say_why() {
        assert_eq!(post("  \r\n"), Ok(None));
        assert!(post("{not json").expect_err("json").starts_with("not JSON"));
        assert_eq!(post("[1,2]"), Err("not a JSON object".into()));
        assert!(post(r#"{"title":"no id"}"#).expect_err("id").contains("no id"));
        assert!(post(r#"{"id":"x","title":"  "}"#).expect_err("text").contains("neither"));
    }

    #[test]
    fn identity_notices_a_rewritten_head() {
        let meta = std::fs::metadata(env!("CARGO_MANIFEST_DIR")).expect("metadata");
        let before = FileIdentity::of(&meta, b"{\"id\":1}\n");
        assert!(before.same_file(&FileIdentity::of(&meta, b"{\"id\":1}\n{\"id\":2}"), b"{\"id\":1}\n{\"id\":2}"));
        assert!(!before.same_file(&FileIdentity::of(&meta, b"{\"id\":9}\n"), b"{\"id\":9}\n"));
        assert!(!before.same_file(&FileIdentity::of(&meta, b"{\"id"), b"{\"id"));
    }
}
