//! One HTTP connection: a TCP stream with `TCP_NODELAY` whose bytes are
//! counted, so every connection the tool opens is one it counts, and no pool
//! sits in between. HTTP/1.1 goes through the tool's own client ([`super::h1`]);
//! HTTP/2 through hyper's low-level client (`client::conn`).

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
use hyper::client::conn::http2;
use hyper::Response;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::h1::{self, H1Conn};
use super::request::PreparedKind;
use super::stats::IoCounters;

/// A TCP stream that adds the bytes it moves to shared counters (for hyper's HTTP/2 client).
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

/// A connection. An HTTP/1.1 connection is driven by the worker that owns
/// it; HTTP/2 senders are clones of one multiplexed connection per thread,
/// whose driver is a task.
pub enum Conn {
    H1(H1Conn),
    H2(http2::SendRequest<Body>),
}

/// Why an exchange produced no response.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The deadline passed first.
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    H1(#[from] h1::Error),
    #[error("{0}")]
    H2(#[from] hyper::Error),
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

/// When a request began (taken on by its worker) and by when it must be done.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub limit: Instant,
}

/// Polls `fut` until it finishes or the window's limit passes.
async fn bounded<F: Future>(mut fut: Pin<&mut F>, dog: &mut Watchdog, window: Window) -> Option<F::Output> {
    let Window { start, limit } = window;
    let limit_at = tokio::time::Instant::from_std(limit);
    if dog.sleep.deadline().into_std() <= start || dog.sleep.deadline() > limit_at {
        dog.sleep.as_mut().reset(limit_at);
    }
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
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
        if !http2 {
            return H1Conn::connect(addr, io).await.map(Conn::H1).map_err(|e| format!("connect {addr}: {e}"));
        }
        let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let io = TokioIo::new(CountedStream { inner: stream, io: io.clone() });
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| format!("HTTP/2 handshake with {addr}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn::H2(sender))
    };
    tokio::time::timeout(timeout, open).await.map_err(|_| format!("connect {addr}: timed out after {timeout:?}"))?
}

/// What came back.
pub struct Exchange {
    pub status: u16,
    pub body_len: u64,
    /// Only buffered when a check needs it.
    pub body: Vec<u8>,
    pub server_timing: Option<String>,
}

impl Conn {
    pub fn is_closed(&self) -> bool {
        match self {
            Conn::H1(c) => c.is_closed(),
            Conn::H2(s) => s.is_closed(),
        }
    }

    /// Waits until the connection can take a request; fails when it closed.
    pub async fn ready(&mut self, dog: &mut Watchdog, window: Window) -> Result<(), ExchangeError> {
        match self {
            Conn::H1(c) => Ok(c.check_idle()?),
            Conn::H2(s) => {
                Ok(bounded(std::pin::pin!(s.ready()), dog, window).await.ok_or(ExchangeError::Timeout)??)
            }
        }
    }

    /// Sends request `seq` of `kind` (data record `record`) and reads the whole response, within `window`.
    pub async fn exchange(
        &mut self,
        kind: &PreparedKind,
        records: &[Value],
        record: usize,
        seq: u64,
        dog: &mut Watchdog,
        window: Window,
    ) -> Result<Exchange, ExchangeError> {
        let keep_body = kind.check.needs_body();
        let out = match self {
            Conn::H1(c) => {
                let (req, head) = kind.h1(records, record, seq).ok_or(h1::Error::Protocol(MISMATCH))?;
                let fut = std::pin::pin!(c.exchange(&req, head, keep_body));
                bounded(fut, dog, window).await.map(|r| {
                    let r = r?;
                    Ok(Exchange {
                        status: r.status,
                        body_len: r.body_len,
                        body: r.body,
                        server_timing: r.server_timing,
                    })
                })
            }
            Conn::H2(s) => {
                let req = kind.h2(records, record, seq).ok_or(h1::Error::Protocol(MISMATCH))?;
                let fut = std::pin::pin!(async { read(s.send_request(req).await?, keep_body).await });
                bounded(fut, dog, window).await.map(|r| Ok(r?))
            }
        };
        out.ok_or(ExchangeError::Timeout)?
    }
}

const MISMATCH: &str = "request prepared for another HTTP version";

async fn read(resp: Response<hyper::body::Incoming>, keep_body: bool) -> Result<Exchange, hyper::Error> {
    let (parts, mut body) = resp.into_parts();
    let mut out = Exchange {
        status: parts.status.as_u16(),
        body_len: 0,
        body: Vec::new(),
        server_timing: parts.headers.get("server-timing").and_then(|v| v.to_str().ok()).map(str::to_owned),
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
