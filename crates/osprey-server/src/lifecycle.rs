//! The server's life after start: draining, stopping, and the background
//! work that must finish before the process exits.
//!
//! On SIGTERM/SIGINT, [`Application::run_with_shutdown`](crate::Application::run_with_shutdown)
//! runs these steps, logging each with its duration:
//! 1. [`Lifecycle::begin_drain`]: `/ready` answers 503 `not_ready`
//!    ("draining"), `/health` stays 200, and HTTP/1 responses carry
//!    `Connection: close` so keep-alive clients reconnect elsewhere.
//! 2. `server.drain_delay`: requests are still served while load balancers
//!    notice the failing probe and stop sending.
//! 3. The listener stops accepting; in-flight requests have
//!    `server.shutdown_timeout` to finish.
//! 4. The [shutdown token](Lifecycle::shutdown_token) is cancelled and the
//!    tasks spawned on the [tracker](Lifecycle::tracker) get what is left
//!    of that timeout to finish.
//! 5. The store's writer is drained and closed, the cache flushed.
//!
//! Background work takes [`Lifecycle::shutdown_token`] and is spawned with
//! `lifecycle.tracker().spawn(...)`: it stops taking new work when the
//! token is cancelled, finishes what it holds and returns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Version};
use axum::middleware::Next;
use axum::response::Response;
pub use tokio_util::sync::CancellationToken;
pub use tokio_util::task::TaskTracker;

/// Draining state, the shutdown token and the tracker of background tasks.
pub struct Lifecycle {
    draining: AtomicBool,
    drain_began: std::sync::OnceLock<Instant>,
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifecycle {
    pub fn new() -> Self {
        Self {
            draining: AtomicBool::new(false),
            drain_began: std::sync::OnceLock::new(),
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

    /// Whether shutdown has begun: `/ready` fails from then on.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Starts draining; returns false if it had already started.
    pub fn begin_drain(&self) -> bool {
        let first = !self.draining.swap(true, Ordering::AcqRel);
        if first {
            let _ = self.drain_began.set(Instant::now());
        }
        first
    }

    /// When draining began, if it has.
    pub fn drain_began(&self) -> Option<Instant> {
        self.drain_began.get().copied()
    }

    /// Cancelled once in-flight requests are done (or out of time): work
    /// spawned on [`Lifecycle::tracker`] stops taking new work then,
    /// finishes what it holds, and returns.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Where background work (watch pipelines, in-process job workers) is
    /// spawned, so shutdown can wait for it.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }
}

/// Adds `Connection: close` to HTTP/1 responses while draining, so
/// keep-alive clients open their next connection elsewhere (HTTP/2 has no
/// such header; its connections end with the server's GOAWAY).
pub async fn close_when_draining(State(lifecycle): State<Arc<Lifecycle>>, req: Request, next: Next) -> Response {
    let http1 = matches!(req.version(), Version::HTTP_10 | Version::HTTP_11);
    let mut resp = next.run(req).await;
    if http1 && lifecycle.is_draining() {
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_tracker_waits_for_its_tasks_once_closed() {
        let lifecycle = Lifecycle::new();
        let token = lifecycle.shutdown_token();
        let finished = Arc::new(AtomicBool::new(false));
        let done = Arc::clone(&finished);
        lifecycle.tracker().spawn(async move {
            token.cancelled().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            done.store(true, Ordering::SeqCst);
        });
        lifecycle.tracker().spawn_blocking(|| std::thread::sleep(Duration::from_millis(20)));
        assert_eq!(lifecycle.tracker().len(), 2);
        // Not closed: waiting does not end even with tasks done.
        let tracker = lifecycle.tracker().clone();
        assert!(tokio::time::timeout(Duration::from_millis(100), tracker.wait()).await.is_err());
        assert!(lifecycle.begin_drain() && !lifecycle.begin_drain());
        assert!(lifecycle.is_draining() && lifecycle.drain_began().is_some());
        lifecycle.shutdown_token().cancel();
        tracker.close();
        tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await.expect("tasks finished");
        assert!(finished.load(Ordering::SeqCst));
        assert!(tracker.is_empty());
    }
}
