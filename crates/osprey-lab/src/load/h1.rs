//! The HTTP/1.1 client: a connection that writes requests serialized before
//! the run and reads responses with a small decoder, instead of hyper's
//! general-purpose client (whose header maps, body channel and extra reads
//! cost more CPU per request than the rest of the generator together).
//!
//! One request is in flight per connection (no pipelining). The decoder is
//! sans-I/O ([`Decoder`]): it takes whatever bytes arrived and says how many
//! it used, so responses split anywhere between reads decode the same.
//! It understands what a load tester meets: `Content-Length`, chunked bodies
//! (extensions and trailers skipped), bodies delimited by the connection's
//! close, responses without a body (`HEAD`, `204`, `304`), interim `1xx`
//! responses (skipped), `Connection: close` and HTTP/1.0 keep-alive rules.
//! Heads, trailers and chunk-size lines are bounded.

use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::stats::IoCounters;

/// The largest response head (status line and headers), and the largest trailer section.
pub const MAX_HEAD: usize = 64 * 1024;
/// Header fields per head or trailer section.
const MAX_HEADERS: usize = 100;
/// The longest chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 4096;
/// A connection's read buffer to begin with; it grows (up to [`MAX_HEAD`]) only for larger heads.
const READ_BUF: usize = 8 * 1024;
/// Body bytes reserved up front when a body is kept.
const BODY_RESERVE: u64 = 64 * 1024;

/// Why a response could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection before the response was complete.
    #[error("connection closed before the response was complete")]
    Closed,
    #[error("response head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("malformed response head: {0}")]
    Head(httparse::Error),
    #[error("invalid Content-Length")]
    ContentLength,
    #[error("malformed chunked body: {0}")]
    Chunked(&'static str),
    #[error("{0}")]
    Protocol(&'static str),
}

/// A decoded response.
#[derive(Debug, Default, PartialEq)]
pub struct Response {
    pub status: u16,
    /// Body bytes (after de-chunking), kept or not.
    pub body_len: u64,
    /// Only filled when the decoder was asked to keep the body.
    pub body: Vec<u8>,
    /// The first `Server-Timing` header, when it is visible ASCII.
    pub server_timing: Option<String>,
    /// The connection cannot carry another request.
    pub close: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Head,
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

/// Decodes one response from bytes fed in any split.
#[derive(Debug)]
pub struct Decoder {
    head_request: bool,
    keep_body: bool,
    state: State,
    out: Response,
}

impl Decoder {
    /// A decoder for the response to one request; `head_request`: it was a `HEAD` (no body follows).
    pub fn new(head_request: bool, keep_body: bool) -> Self {
        Decoder { head_request, keep_body, state: State::Head, out: Response::default() }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `buf`; returns the bytes used. Fewer than all are used
    /// when the response ended (see [`Decoder::is_done`]) or when what is left
    /// is an incomplete head, chunk-size line or trailer section that needs
    /// more bytes (never more than the bounds allow).
    pub fn feed(&mut self, buf: &[u8]) -> Result<usize, Error> {
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            match self.state {
                State::Done => return Ok(at),
                State::Head => match self.head(rest)? {
                    Some(n) => at += n,
                    None => return Ok(at),
                },
                State::Length(left) | State::ChunkData(left) => {
                    if rest.is_empty() {
                        return Ok(at);
                    }
                    let n = usize::try_from(left).map_or(rest.len(), |l| l.min(rest.len()));
                    self.body(&rest[..n]);
                    at += n;
                    let left = left - n as u64;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), l) => State::Length(l),
                        (_, 0) => State::ChunkEnd,
                        (_, l) => State::ChunkData(l),
                    };
                }
                State::ChunkSize => {
                    let window = &rest[..rest.len().min(MAX_CHUNK_LINE)];
                    let Some(lf) = window.iter().position(|b| *b == b'\n') else {
                        if window.len() == MAX_CHUNK_LINE {
                            return Err(Error::Chunked("chunk-size line too long"));
                        }
                        return Ok(at);
                    };
                    let size = chunk_size(&rest[..lf])?;
                    at += lf + 1;
                    self.state = if size == 0 { State::Trailers } else { State::ChunkData(size) };
                }
                State::ChunkEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        at += 2;
                        self.state = State::ChunkSize;
                    }
                    [] | [b'\r'] => return Ok(at),
                    _ => return Err(Error::Chunked("chunk data not followed by CRLF")),
                },
                State::Trailers => {
                    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    match httparse::parse_headers(rest, &mut fields) {
                        Ok(httparse::Status::Complete((n, _))) => {
                            at += n;
                            self.state = State::Done;
                        }
                        Ok(httparse::Status::Partial) if rest.len() < MAX_HEAD => return Ok(at),
                        Ok(httparse::Status::Partial) => return Err(Error::Chunked("trailers too large")),
                        Err(_) => return Err(Error::Chunked("malformed trailers")),
                    }
                }
                State::UntilClose => {
                    self.body(rest);
                    return Ok(buf.len());
                }
            }
        }
    }

    /// The peer closed the connection: the end of a body delimited by the close, else an error.
    pub fn eof(&mut self) -> Result<(), Error> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                self.out.close = true;
                Ok(())
            }
            _ => Err(Error::Closed),
        }
    }

    pub fn finish(self) -> Response {
        self.out
    }

    fn body(&mut self, data: &[u8]) {
        self.out.body_len += data.len() as u64;
        if self.keep_body {
            self.out.body.extend_from_slice(data);
        }
    }

    /// Parses a head at the start of `buf`; `None` when it is not complete yet.
    fn head(&mut self, buf: &[u8]) -> Result<Option<usize>, Error> {
        let mut fields = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
        let mut res = httparse::Response::new(&mut []);
        let n = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, buf, &mut fields) {
            Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(None),
            Ok(_) => return Err(Error::HeadTooLarge),
            Err(e) => return Err(Error::Head(e)),
        };
        let status = res.code.unwrap_or(0);
        match status {
            101 => return Err(Error::Protocol("unexpected 101 Switching Protocols")),
            // Interim responses: the final one follows.
            100..=199 => return Ok(Some(n)),
            200.. => {}
            _ => return Err(Error::Head(httparse::Error::Status)),
        }
        let (mut length, mut transfer, mut chunked, mut close, mut keep_alive) = (None, false, false, false, false);
        let mut timing_seen = false;
        for h in res.headers.iter() {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                let n = content_length(h.value)?;
                if length.is_some_and(|l| l != n) {
                    return Err(Error::ContentLength);
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                transfer = true;
                // The last coding decides; a later header field continues the list.
                if let Some(last) = tokens(h.value).last() {
                    chunked = last.eq_ignore_ascii_case(b"chunked");
                }
            } else if name.eq_ignore_ascii_case("connection") {
                for t in tokens(h.value) {
                    close |= t.eq_ignore_ascii_case(b"close");
                    keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if !timing_seen && name.eq_ignore_ascii_case("server-timing") {
                // The first field only, and only visible ASCII, as `HeaderMap::get` and `to_str` read it.
                timing_seen = true;
                let visible = h.value.iter().all(|b| *b == b'\t' || (32..127).contains(b));
                self.out.server_timing = visible.then(|| String::from_utf8_lossy(h.value).into_owned());
            }
        }
        self.out.status = status;
        // HTTP/1.0 keeps the connection only when asked to.
        self.out.close = close || (res.version == Some(0) && !keep_alive);
        self.state = if self.head_request || status == 204 || status == 304 {
            State::Done
        } else if transfer {
            // A Content-Length next to Transfer-Encoding is ignored (RFC 9112 §6.3).
            if chunked {
                State::ChunkSize
            } else {
                State::UntilClose
            }
        } else {
            match length {
                Some(0) => State::Done,
                Some(l) => {
                    if self.keep_body {
                        self.out.body.reserve(usize::try_from(l.min(BODY_RESERVE)).unwrap_or(0));
                    }
                    State::Length(l)
                }
                None => State::UntilClose,
            }
        };
        if self.state == State::UntilClose {
            self.out.close = true;
        }
        Ok(Some(n))
    }
}

/// Comma-separated list elements, trimmed, empty ones skipped.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(<[u8]>::trim_ascii).filter(|t| !t.is_empty())
}

/// `Content-Length`: digits, or a list of identical values (RFC 9110 §8.6).
fn content_length(value: &[u8]) -> Result<u64, Error> {
    let mut out = None;
    for part in value.split(|b| *b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(Error::ContentLength);
        }
        let n = part
            .iter()
            .try_fold(0u64, |acc, d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
            .ok_or(Error::ContentLength)?;
        if out.is_some_and(|o| o != n) {
            return Err(Error::ContentLength);
        }
        out = Some(n);
    }
    out.ok_or(Error::ContentLength)
}

/// The size in a chunk-size line (without its LF): `HEX [BWS] [; extensions] CR`.
fn chunk_size(line: &[u8]) -> Result<u64, Error> {
    let line = line.strip_suffix(b"\r").ok_or(Error::Chunked("chunk-size line not ended by CRLF"))?;
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(Error::Chunked("invalid chunk size"));
    }
    if digits > 16 {
        return Err(Error::Chunked("chunk size too large"));
    }
    let mut size = 0u64;
    for b in &line[..digits] {
        // At most 16 hex digits: no overflow.
        size = size << 4 | u64::from(hex(*b));
    }
    let rest = line[digits..].trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') {
        return Err(Error::Chunked("invalid chunk size"));
    }
    if rest.iter().any(|b| (*b < 32 && *b != b'\t') || *b == 127) {
        return Err(Error::Chunked("control character in a chunk extension"));
    }
    Ok(size)
}

fn hex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// A request on the wire: bytes serialized before the run, or rendered now.
pub trait Encode {
    /// The request's bytes; `scratch` is a buffer the connection keeps for rendering into.
    fn encode<'a>(&'a self, scratch: &'a mut Vec<u8>) -> &'a [u8];
}

impl Encode for [u8] {
    fn encode<'a>(&'a self, _: &'a mut Vec<u8>) -> &'a [u8] {
        self
    }
}

/// One HTTP/1.1 connection: a TCP stream with `TCP_NODELAY`, its bytes
/// counted, and a read buffer kept across requests.
pub struct H1Conn {
    stream: TcpStream,
    io: Arc<IoCounters>,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Requests rendered per send (templated bodies) are written from here.
    scratch: Vec<u8>,
    closed: bool,
}

impl H1Conn {
    pub async fn connect(addr: std::net::SocketAddr, io: &Arc<IoCounters>) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self::new(stream, io.clone()))
    }

    pub fn new(stream: TcpStream, io: Arc<IoCounters>) -> Self {
        H1Conn { stream, io, buf: vec![0; READ_BUF], start: 0, end: 0, scratch: Vec::new(), closed: false }
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Checks that an idle connection can take a request: it fails when the
    /// peer closed it (or sent bytes nobody asked for) since the last response.
    /// Costs no system call unless the socket was reported readable.
    pub fn check_idle(&mut self) -> Result<(), Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        match self.stream.try_read(&mut self.buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Ok(0) => {
                self.closed = true;
                Err(Error::Closed)
            }
            Ok(n) => {
                self.io.read.fetch_add(n as u64, Ordering::Relaxed);
                self.closed = true;
                Err(Error::Protocol("unsolicited bytes on an idle connection"))
            }
            Err(e) => {
                self.closed = true;
                Err(Error::Io(e))
            }
        }
    }

    /// Writes `request` and reads the whole response.
    pub async fn exchange(
        &mut self,
        request: &(impl Encode + ?Sized),
        head_request: bool,
        keep_body: bool,
    ) -> Result<Response, Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        // Stays closed unless the exchange completes (a timeout drops it half way).
        self.closed = true;
        self.start = 0;
        self.end = 0;
        write_all(&mut self.stream, &self.io, request.encode(&mut self.scratch)).await?;
        let mut dec = Decoder::new(head_request, keep_body);
        let mut eof = false;
        loop {
            if self.start < self.end {
                self.start += dec.feed(&self.buf[self.start..self.end])?;
                if dec.is_done() {
                    break;
                }
            }
            if self.start == self.end {
                (self.start, self.end) = (0, 0);
            } else if self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
                if self.end == self.buf.len() {
                    // The decoder bounds what it waits for by MAX_HEAD, so this stays bounded.
                    if self.buf.len() >= MAX_HEAD {
                        return Err(Error::HeadTooLarge);
                    }
                    self.buf.resize((self.buf.len() * 2).min(MAX_HEAD), 0);
                }
            }
            let n = read(&mut self.stream, &self.io, &mut self.buf[self.end..]).await?;
            if n == 0 {
                dec.eof()?;
                eof = true;
                break;
            }
            self.end += n;
        }
        let response = dec.finish();
        // Bytes after the response would be a response nobody asked for.
        self.closed = response.close || eof || self.start < self.end;
        Ok(response)
    }
}

async fn read(stream: &mut TcpStream, io: &IoCounters, buf: &mut [u8]) -> io::Result<usize> {
    let mut rb = ReadBuf::new(buf);
    // Tokio clears the read readiness after a short read, so waiting for the
    // next response costs no extra read that would only return `EAGAIN`.
    poll_fn(|cx| Pin::new(&mut *stream).poll_read(cx, &mut rb)).await?;
    let n = rb.filled().len();
    io.read.fetch_add(n as u64, Ordering::Relaxed);
    Ok(n)
}

async fn write_all(stream: &mut TcpStream, io: &IoCounters, mut bytes: &[u8]) -> Result<(), Error> {
    while !bytes.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *stream).poll_write(cx, bytes)).await?;
        if n == 0 {
            return Err(Error::Io(io::ErrorKind::WriteZero.into()));
        }
        io.written.fetch_add(n as u64, Ordering::Relaxed);
        bytes = &bytes[n..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &[u8] =
        b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 17\r\nConnection: keep-alive\r\n\r\nhello from nginx\n";
    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;name=value;q=\"a b\"\r\nhello\r\n7 ; ext\r\n, world\r\n0\r\nX-Checksum: 1\r\nServer-Timing: late\r\n\r\n";
    const INTERIM: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
        HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";

    /// Feeds `pieces` as a connection would (unused bytes stay buffered);
    /// `eof` says the peer closed after the last piece.
    fn decode(pieces: &[&[u8]], head_request: bool, eof: bool) -> Result<(Response, usize), Error> {
        let mut dec = Decoder::new(head_request, true);
        let mut pending = Vec::new();
        for piece in pieces {
            pending.extend_from_slice(piece);
            let n = dec.feed(&pending)?;
            pending.drain(..n);
            if dec.is_done() {
                return Ok((dec.finish(), pending.len()));
            }
        }
        if eof {
            dec.eof()?;
            return Ok((dec.finish(), pending.len()));
        }
        Err(Error::Protocol("incomplete"))
    }

    fn whole(bytes: &[u8]) -> Result<Response, Error> {
        decode(&[bytes], false, false).map(|(r, left)| {
            assert_eq!(left, 0, "the decoder used every byte");
            r
        })
    }

    /// A 2 KiB header field (heads of 64 KiB need fewer than the 100 fields allowed).
    fn filler() -> Vec<u8> {
        let mut f = b"X-Filler: ".to_vec();
        f.resize(2046, b'f');
        f.extend_from_slice(b"\r\n");
        f
    }

    /// Decodes `bytes` split at every boundary, and byte by byte, expecting the same result.
    fn every_split(bytes: &[u8], head_request: bool, eof: bool) -> Response {
        let (expected, left) = decode(&[bytes], head_request, eof).expect("decodes whole");
        for i in 0..=bytes.len() {
            let (r, l) = decode(&[&bytes[..i], &bytes[i..]], head_request, eof).expect("decodes split");
            assert_eq!((&r, l), (&expected, left), "split at {i}");
        }
        let bytes_one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        let (r, l) = decode(&bytes_one_by_one, head_request, eof).expect("decodes byte by byte");
        assert_eq!((&r, l), (&expected, left));
        expected
    }

    #[test]
    fn content_length_bodies_are_counted_and_kept_on_request() {
        let r = every_split(PLAIN, false, false);
        assert_eq!((r.status, r.body_len, r.body.as_slice(), r.close), (200, 17, &b"hello from nginx\n"[..], false));
        let mut skip = Decoder::new(false, false);
        assert_eq!(skip.feed(PLAIN).expect("decodes"), PLAIN.len());
        let r = skip.finish();
        assert_eq!((r.body_len, r.body.len()), (17, 0), "not kept unless asked");
        let empty = whole(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").expect("decodes");
        assert_eq!(empty.body_len, 0);
        // A list of identical values is one value; OWS is trimmed.
        assert_eq!(whole(b"HTTP/1.1 200 OK\r\nContent-Length:  2 , 2\r\n\r\nok").expect("decodes").body_len, 2);
    }

    #[test]
    fn bytes_after_the_response_are_left_unused() {
        let mut bytes = PLAIN.to_vec();
        bytes.extend_from_slice(b"HTTP/1.1 200");
        let (r, left) = decode(&[&bytes], false, false).expect("decodes");
        assert_eq!((r.body_len, left), (17, 12));
    }

    #[test]
    fn chunked_bodies_skip_extensions_and_trailers() {
        let r = every_split(CHUNKED, false, false);
        assert_eq!((r.status, r.body.as_slice(), r.body_len, r.close), (200, &b"hello, world"[..], 12, false));
        assert_eq!(r.server_timing, None, "trailers are not headers");
        // No trailers; upper-case hex; Transfer-Encoding wins over Content-Length.
        let r = every_split(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
            false,
            false,
        );
        assert_eq!(r.body_len, 10);
    }

    #[test]
    fn bodies_without_length_end_with_the_connection() {
        let bytes = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
        let r = every_split(bytes, false, true);
        assert_eq!((r.body.as_slice(), r.close), (&b"until the end"[..], true));
        // A transfer coding other than chunked last is delimited by the close too.
        let r = every_split(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz", false, true);
        assert_eq!((r.body_len, r.close), (2, true));
        // Without the close, the response is not complete.
        assert!(decode(&[bytes], false, false).is_err());
    }

    #[test]
    fn responses_without_a_body() {
        for (bytes, head_request) in [
            (&b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"[..], false),
            (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n", false),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n", true),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true),
        ] {
            let r = every_split(bytes, head_request, false);
            assert_eq!((r.body_len, r.close), (0, false), "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn interim_responses_are_skipped() {
        let r = every_split(INTERIM, false, false);
        assert_eq!((r.status, r.body.as_slice()), (201, &b"ok"[..]));
        assert!(matches!(whole(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"), Err(Error::Protocol(_))));
    }

    #[test]
    fn connection_close_and_http_1_0() {
        assert!(
            whole(b"HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 0\r\n\r\n").expect("ok").close
        );
        assert!(whole(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").expect("ok").close);
        assert!(!whole(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").expect("ok").close);
        assert!(!whole(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").expect("ok").close);
    }

    #[test]
    fn server_timing_is_the_first_visible_header() {
        let r = whole(
            b"HTTP/1.1 200 OK\r\nserver-timing: total;dur=5.8\r\nServer-Timing: other;dur=1\r\nContent-Length: 0\r\n\r\n",
        )
        .expect("ok");
        assert_eq!(r.server_timing.as_deref(), Some("total;dur=5.8"));
        let r = whole(b"HTTP/1.1 200 OK\r\nServer-Timing: t;desc=\"\xe9\"\r\nServer-Timing: total;dur=1\r\nContent-Length: 0\r\n\r\n").expect("ok");
        assert_eq!(r.server_timing, None, "not visible ASCII, as with HeaderValue::to_str");
    }

    #[test]
    fn the_peer_closing_mid_response_is_an_error() {
        for cut in [0, 10, PLAIN.len() - 1] {
            assert!(matches!(decode(&[&PLAIN[..cut]], false, true), Err(Error::Closed)), "cut at {cut}");
        }
        for cut in [60, CHUNKED.len() - 2] {
            assert!(matches!(decode(&[&CHUNKED[..cut]], false, true), Err(Error::Closed)), "cut at {cut}");
        }
    }

    #[test]
    fn malformed_heads_and_framing_are_errors() {
        for bytes in [
            &b"HTTP/1.1 2x0 OK\r\n\r\n"[..],
            b"HTTQ/1.1 200 OK\r\n\r\n",
            b"HTTP/2.0 200 OK\r\n\r\n",
            b"HTTP/1.1 099 Low\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n",
        ] {
            assert!(matches!(whole(bytes), Err(Error::Head(_))), "{}", String::from_utf8_lossy(bytes));
        }
        for bytes in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        ] {
            assert!(matches!(whole(bytes), Err(Error::ContentLength)), "{}", String::from_utf8_lossy(bytes));
        }
        let chunked = |body: &[u8]| {
            let mut b = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            b.extend_from_slice(body);
            whole(&b)
        };
        for body in [
            &b"zz\r\n"[..],
            b"\r\n",
            b";ext\r\n",
            b"5\n",
            b"5 x\r\n",
            b"5;a\x01\r\n",
            b"11111111111111111\r\nx",
            b"2\r\nokX\r\n",
            b"2\r\nok\r\n0\r\nbad trailer\r\n\r\n",
        ] {
            assert!(matches!(chunked(body), Err(Error::Chunked(_))), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn heads_and_chunk_lines_are_bounded() {
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        while big.len() < MAX_HEAD + 100 {
            big.extend_from_slice(&filler());
        }
        // Incomplete at the bound: no point waiting for more.
        assert!(matches!(Decoder::new(false, false).feed(&big[..MAX_HEAD]), Err(Error::HeadTooLarge)));
        assert!(matches!(Decoder::new(false, false).feed(&big[..MAX_HEAD - 1]), Ok(0)));
        // Complete, but larger than the bound.
        big.extend_from_slice(b"\r\n");
        assert!(matches!(Decoder::new(false, false).feed(&big), Err(Error::HeadTooLarge)));
        let mut line = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;".to_vec();
        line.resize(line.len() + MAX_CHUNK_LINE, b'a');
        assert!(matches!(Decoder::new(false, false).feed(&line), Err(Error::Chunked(_))));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..=MAX_HEADERS {
            many.extend_from_slice(b"X: 1\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(whole(&many), Err(Error::Head(httparse::Error::TooManyHeaders))));
        let mut trailers = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
        while trailers.len() < MAX_HEAD * 2 {
            trailers.extend_from_slice(&filler());
        }
        assert!(matches!(Decoder::new(false, false).feed(&trailers), Err(Error::Chunked(_))));
    }

    mod io {
        use std::time::Duration;

        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::TcpListener;

        use super::*;

        const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";

        /// A server that answers each request on one connection with the next of `replies`
        /// (each written in pieces of at most `piece` bytes), then closes.
        async fn server(replies: Vec<Vec<u8>>, piece: usize) -> (H1Conn, Arc<IoCounters>) {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.expect("accept");
                let mut buf = vec![0; 4096];
                for reply in replies {
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = s.read(&mut buf).await.expect("read");
                        if n == 0 {
                            return;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                    for p in reply.chunks(piece) {
                        if s.write_all(p).await.is_err() {
                            return;
                        }
                        s.flush().await.expect("flush");
                        tokio::task::yield_now().await;
                    }
                }
            });
            let io = Arc::new(IoCounters::default());
            (H1Conn::connect(addr, &io).await.expect("connect"), io)
        }

        #[tokio::test]
        async fn keeps_the_connection_and_counts_bytes() {
            let (mut c, io) = server(vec![PLAIN.to_vec(), CHUNKED.to_vec(), INTERIM.to_vec()], 7).await;
            for expected in [17, 12, 2] {
                c.check_idle().expect("idle and open");
                let r = c.exchange(GET, false, false).await.expect("response");
                assert_eq!(r.body_len, expected);
                assert!(!c.is_closed());
            }
            assert_eq!(io.written.load(Ordering::Relaxed), 3 * GET.len() as u64);
            let read = (PLAIN.len() + CHUNKED.len() + INTERIM.len()) as u64;
            assert_eq!(io.read.load(Ordering::Relaxed), read);
            // The server closed after its last reply: the idle check notices once the close arrived.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(matches!(c.check_idle(), Err(Error::Closed)));
            assert!(c.is_closed());
        }

        #[tokio::test]
        async fn connection_close_and_close_delimited_bodies_end_the_connection() {
            let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok".to_vec();
            let (mut c, _) = server(vec![close], 1000).await;
            assert_eq!(c.exchange(GET, false, true).await.expect("response").body, b"ok");
            assert!(c.is_closed());
            assert!(matches!(c.exchange(GET, false, true).await, Err(Error::Closed)));

            let until_close = b"HTTP/1.1 200 OK\r\n\r\nall of it".to_vec();
            let (mut c, _) = server(vec![until_close], 3).await;
            assert_eq!(c.exchange(GET, false, true).await.expect("response").body, b"all of it");
            assert!(c.is_closed());
        }

        #[tokio::test]
        async fn a_peer_closing_mid_response_is_an_error() {
            let (mut c, _) = server(vec![PLAIN[..PLAIN.len() - 3].to_vec()], 1000).await;
            assert!(matches!(c.exchange(GET, false, false).await, Err(Error::Closed)));
            assert!(c.is_closed());
            // No reply at all.
            let (mut c, _) = server(vec![Vec::new()], 1000).await;
            assert!(matches!(c.exchange(GET, false, false).await, Err(Error::Closed)));
        }

        #[tokio::test]
        async fn large_heads_grow_the_buffer_up_to_the_bound() {
            let head = |size: usize| {
                let mut h = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n".to_vec();
                while h.len() < size {
                    h.extend_from_slice(&filler());
                }
                h.extend_from_slice(b"\r\nok");
                h
            };
            let (mut c, _) = server(vec![head(40 * 1024), head(MAX_HEAD + 1024)], 5000).await;
            assert_eq!(c.exchange(GET, false, false).await.expect("a 40 KiB head").body_len, 2);
            assert!(matches!(c.exchange(GET, false, false).await, Err(Error::HeadTooLarge)));
            assert!(c.is_closed());
        }

        #[tokio::test]
        async fn unsolicited_bytes_close_the_connection() {
            let mut extra = PLAIN.to_vec();
            extra.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
            let (mut c, _) = server(vec![extra], 1000).await;
            assert_eq!(c.exchange(GET, false, false).await.expect("response").status, 200);
            assert!(c.is_closed(), "the extra bytes arrived with the response");
        }
    }
}
