//! Reading and parsing bodies safely: file reads bounded while they read, and
//! parses of large bodies kept off the async runtime's workers.

use std::path::Path;

use tokio::io::AsyncReadExt;

/// Bodies up to this size are parsed in place; larger ones on the blocking pool.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// The file at `path`, or `None` when it holds more than `limit` bytes. The
/// limit bounds the read itself, so a file that grows while it is read is
/// refused rather than read in full.
pub(crate) async fn read_capped(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    let file = tokio::fs::File::open(path).await?;
    let mut body = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut body).await?;
    Ok((body.len() as u64 <= limit).then_some(body))
}

/// `parse(body)`: in place for a small body, on tokio's blocking pool for a
/// large one, so a multi-megabyte parse does not stall the runtime. Dropping
/// the future leaves a blocking parse to finish and be discarded.
pub(crate) async fn parse_off_runtime<T, F>(body: Vec<u8>, parse: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(Vec<u8>) -> Result<T, String> + Send + 'static,
{
    if body.len() <= INLINE_PARSE_BYTES {
        return parse(body);
    }
    match tokio::task::spawn_blocking(move || parse(body)).await {
        Ok(parsed) => parsed,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime shutting down cancels a blocking task.
        Err(e) => Err(format!("parsing was cancelled: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_up_to_the_limit_and_refuses_more() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("body");
        std::fs::write(&path, b"12345").expect("write");
        assert_eq!(read_capped(&path, 5).await.expect("read"), Some(b"12345".to_vec()));
        assert_eq!(read_capped(&path, 4).await.expect("read"), None);
        assert!(read_capped(&dir.path().join("missing"), 5).await.is_err());
    }

    /// A file that grows while it is read (a FIFO reports length 0, then
    /// delivers whatever is written) is cut off at the limit, not read in full.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_file_growing_while_read_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("growing");
        let made = std::process::Command::new("mkfifo").arg(&path).status().expect("mkfifo");
        assert!(made.success());
        assert_eq!(std::fs::metadata(&path).expect("metadata").len(), 0);
        let writer_path = path.clone();
        // Blocks until the read opens the FIFO; the write fails once the read stops.
        std::thread::spawn(move || std::fs::write(writer_path, vec![b'x'; 1 << 20]));
        assert_eq!(read_capped(&path, 1000).await.expect("read"), None);
    }

    #[tokio::test]
    async fn parses_small_and_large_bodies() {
        assert_eq!(parse_off_runtime(b"abc".to_vec(), |b| Ok(b.len())).await, Ok(3));
        let large = vec![b'y'; INLINE_PARSE_BYTES + 1];
        assert_eq!(parse_off_runtime(large, |b| Ok(b.len())).await, Ok(INLINE_PARSE_BYTES + 1));
    }
}
