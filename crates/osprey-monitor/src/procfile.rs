//! A `/proc` file kept open and re-read in place.
//!
//! `/proc` files are generated on read, so reading an open descriptor again
//! from offset 0 yields fresh figures. Keeping it open saves an `open` and a
//! `close` per file per sample; reading with `pread` saves the `lseek`; and
//! filling a reused byte buffer avoids the `statx` and `lseek` that
//! `read_to_string` spends on a size hint `/proc` cannot give (it reports
//! size 0). A sample's read is thus two `pread`s: the text, then the end.
//! If a read fails (the file went away, a namespace changed), the file is
//! opened afresh and read sequentially once before giving up for this sample.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::FileExt;

use crate::error::MonitorError;
use crate::parse::ParseError;

/// Initial buffer size: most of the files read fit in a page.
const INITIAL_CAPACITY: usize = 4096;

pub(crate) struct ProcFile {
    path: &'static str,
    file: Option<File>,
    /// Zero-filled once as it grows; only `..len` of the last read is text.
    buf: Vec<u8>,
}

impl ProcFile {
    /// Does not touch the file system; the first [`ProcFile::read`] opens it.
    pub(crate) fn new(path: &'static str) -> Self {
        Self { path, file: None, buf: Vec::new() }
    }

    /// The file's current text.
    pub(crate) fn read(&mut self) -> Result<&str, MonitorError> {
        let path = self.path;
        let reread = match &self.file {
            Some(file) => fill(&mut self.buf, |buf, offset| file.read_at(buf, offset)).ok(),
            None => None,
        };
        let len = match reread {
            Some(len) => len,
            None => {
                self.file = None;
                let mut file = File::open(path).map_err(|source| MonitorError::Read { path, source })?;
                let len = fill(&mut self.buf, |buf, _| file.read(buf))
                    .map_err(|source| MonitorError::Read { path, source })?;
                self.file = Some(file);
                len
            }
        };
        std::str::from_utf8(&self.buf[..len]).map_err(|_| MonitorError::Parse { path, what: "not UTF-8" })
    }

    /// Reads the file and parses its text with `parse`; a complaint from
    /// the parser becomes an error naming this file.
    pub(crate) fn parse<T>(&mut self, parse: impl FnOnce(&str) -> Result<T, ParseError>) -> Result<T, MonitorError> {
        let path = self.path;
        parse(self.read()?).map_err(|what| MonitorError::Parse { path, what })
    }
}

/// Reads from offset 0 to the end into `buf`, growing it as needed; returns
/// the length read. `read(buf, offset)` reads at `offset` (or sequentially).
fn fill(buf: &mut Vec<u8>, mut read: impl FnMut(&mut [u8], u64) -> std::io::Result<usize>) -> std::io::Result<usize> {
    if buf.is_empty() {
        buf.resize(INITIAL_CAPACITY, 0);
    }
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match read(&mut buf[len..], len as u64) {
            Ok(0) => return Ok(len),
            Ok(n) => len += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes this thread has passed to `write`, from `/proc/thread-self/io`.
    fn written(file: &mut ProcFile) -> Result<u64, MonitorError> {
        file.parse(|text| {
            let line = text.lines().find_map(|l| l.strip_prefix("wchar:")).ok_or("no wchar")?;
            line.trim().parse().map_err(|_| "bad wchar")
        })
    }

    #[test]
    fn rereading_an_open_file_sees_fresh_values() -> Result<(), Box<dyn std::error::Error>> {
        // Per-thread figures, so tests running beside this one cannot move them.
        let mut io = ProcFile::new("/proc/thread-self/io");
        let before = written(&mut io)?;
        std::io::Write::write_all(&mut File::options().write(true).open("/dev/null")?, &[0; 12345])?;
        let after = written(&mut io)?;
        assert!(io.file.is_some(), "kept open");
        assert!(after >= before + 12345, "the second read is not a cached copy: {before} then {after}");
        Ok(())
    }

    #[test]
    fn files_larger_than_the_buffer_are_read_whole() -> Result<(), Box<dyn std::error::Error>> {
        let mut tmp = tempfile::NamedTempFile::new()?;
        let text: String = (0..3000).map(|i| format!("line {i}\n")).collect();
        std::io::Write::write_all(&mut tmp, text.as_bytes())?;
        let path: &'static str = Box::leak(tmp.path().to_string_lossy().into_owned().into_boxed_str());
        let mut file = ProcFile::new(path);
        assert_eq!(file.read()?, text, "first read, sequential");
        assert_eq!(file.read()?, text, "second read, positional");
        assert!(file.buf.len() >= text.len() && file.buf.len() < 2 * text.len() + INITIAL_CAPACITY);
        Ok(())
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let mut missing = ProcFile::new("/proc/definitely-not-here");
        let err = missing.read().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("/proc/definitely-not-here"), "{err}");
    }
}
