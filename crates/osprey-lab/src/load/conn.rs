//! One HTTP connection: a TCP stream with `TCP_NODELAY`, wrapped to count
//! bytes, handed to hyper's low-level client (`client::conn`), so every
//! connection the tool opens is one it counts, and no pool sits in between.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::{http1, http2};
use hyper::header::HeaderValue;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::stats::IoCounters;

/// A TCP stream that adds the bytes it moves to shared counters.
pub struct CountedStream {
    inner: TcpStream,
    io: Arc<IoCounters>,
}

impl AsyncRead for CountedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.io.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        res
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            self.io.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = res {
            self.io.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

pub type Body = Full<Bytes>;

type H1Driver = Pin<Box<http1::Connection<TokioIo<CountedStream>, Body>>>;

/// The sending half of a connection. An HTTP/1.1 connection is driven by the
/// worker that owns it (polled alongside its requests, not as a task of its
/// own: one task wake per event instead of two); HTTP/2 senders are clones of
/// one multiplexed connection per thread, whose driver is a task.
pub enum Conn {
    H1 { sender: http1::SendRequest<Body>, driver: H1Driver, closed: bool },
    H2(http2::SendRequest<Body>),
}

/// Why an exchange produced no response.
#[derive(Debug)]
pub enum ExchangeError {
    /// The deadline passed first.
    Timeout,
    Http(hyper::Error),
}

impl From<hyper::Error> for ExchangeError {
    fn from(e: hyper::Error) -> Self {
        ExchangeError::Http(e)
    }
}

/// A per-worker timer that bounds each request without registering a new
/// timer per request: it is re-armed only when it fires early (for a request
/// that started later) or when it expired before the request began.
pub struct Watchdog {
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Watchdog {
    pub fn new() -> Self {
        Watchdog { sleep: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())) }
    }
}

/// Polls `fut` (and the HTTP/1.1 connection's driver) until it finishes or `limit` passes.
async fn bounded<F: Future>(
    mut fut: Pin<&mut F>,
    mut driver: Option<(&mut H1Driver, &mut bool)>,
    dog: &mut Watchdog,
    start: Instant,
    limit: Instant,
) -> Option<F::Output> {
    let limit_at = tokio::time::Instant::from_std(limit);
    if dog.sleep.deadline().into_std() <= start || dog.sleep.deadline() > limit_at {
        dog.sleep.as_mut().reset(limit_at);
    }
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if let Some((d, closed)) = driver.as_mut() {
            if !**closed {
                // Errors surface through the request future; the driver only has to run.
                if d.as_mut().poll(cx).is_ready() {
                    **closed = true;
                }
                if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                    return Poll::Ready(Some(out));
                }
            }
        }
        while dog.sleep.as_mut().poll(cx).is_ready() {
            if Instant::now() >= limit {
                return Poll::Ready(None);
            }
            dog.sleep.as_mut().reset(limit_at);
        }
        Poll::Pending
    })
    .await
}

/// Opens a connection to `addr` within `timeout`.
pub async fn connect(
    addr: std::net::SocketAddr,
    http2: bool,
    io: &Arc<IoCounters>,
    timeout: Duration,
) -> Result<Conn, String> {
    let open = async {
        let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let io = TokioIo::new(CountedStream { inner: stream, io: io.clone() });
        if http2 {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| format!("HTTP/2 handshake with {addr}: {e}"))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Conn::H2(sender))
        } else {
            let (sender, conn) =
                http1::handshake(io).await.map_err(|e| format!("HTTP/1.1 handshake with {addr}: {e}"))?;
            Ok(Conn::H1 { sender, driver: Box::pin(conn), closed: false })
        }
    };
    tokio::time::timeout(timeout, open).await.map_err(|_| format!("connect {addr}: timed out after {timeout:?}"))?
}

/// What came back.
pub struct Exchange {
    pub status: u16,
    pub body_len: u64,
    /// Only buffered when a check needs it.
    pub body: Vec<u8>,
    pub server_timing: Option<HeaderValue>,
}

impl Conn {
    pub fn is_closed(&self) -> bool {
        match self {
            Conn::H1 { sender, closed, .. } => *closed || sender.is_closed(),
            Conn::H2(s) => s.is_closed(),
        }
    }

    /// Waits until the connection can take a request; fails when it closed.
    pub async fn ready(&mut self, dog: &mut Watchdog, start: Instant, limit: Instant) -> Result<(), ExchangeError> {
        let out = match self {
            Conn::H1 { sender, driver, closed } => {
                bounded(std::pin::pin!(sender.ready()), Some((driver, closed)), dog, start, limit).await
            }
            Conn::H2(s) => bounded(std::pin::pin!(s.ready()), None, dog, start, limit).await,
        };
        Ok(out.ok_or(ExchangeError::Timeout)??)
    }

    /// Sends `req` and reads the whole response, by `limit`.
    pub async fn exchange(
        &mut self,
        req: Request<Body>,
        keep_body: bool,
        dog: &mut Watchdog,
        start: Instant,
        limit: Instant,
    ) -> Result<Exchange, ExchangeError> {
        let out = match self {
            Conn::H1 { sender, driver, closed } => {
                let fut = std::pin::pin!(async { read(sender.send_request(req).await?, keep_body).await });
                bounded(fut, Some((driver, closed)), dog, start, limit).await
            }
            Conn::H2(s) => {
                let fut = std::pin::pin!(async { read(s.send_request(req).await?, keep_body).await });
                bounded(fut, None, dog, start, limit).await
            }
        };
        Ok(out.ok_or(ExchangeError::Timeout)??)
    }
}

async fn read(resp: Response<hyper::body::Incoming>, keep_body: bool) -> Result<Exchange, hyper::Error> {
    let (parts, mut body) = resp.into_parts();
    let mut out = Exchange {
        status: parts.status.as_u16(),
        body_len: 0,
        body: Vec::new(),
        server_timing: parts.headers.get("server-timing").cloned(),
    };
    drop(parts);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            out.body_len += data.len() as u64;
            if keep_body {
                out.body.extend_from_slice(&data);
            }
        }
    }
    Ok(out)
}
