//! osprey-server: the HTTP face of osprey.
//!
//! [`Application::build`] turns [`Settings`] into a bound listener, a model
//! registry and a router; [`Application::run_until_stopped`] serves until
//! SIGINT/SIGTERM. Tests bind port 0 and read [`Application::port`].
//!
//! # Layout
//! - [`settings`]: the root settings tree.
//! - [`analysis`]: the analysis service (sentiment, emotion, trajectories,
//!   summaries, topic sets, one-pass analyze) and its result cache.
//! - [`error`]: [`ApiError`](error::ApiError), the one error surface.
//! - [`lifecycle`]: draining on shutdown, the shutdown token and the
//!   tracker that background tasks are spawned on.
//! - `extract`: the JSON extractor whose rejections are `ApiError`s.
//! - [`routes`]: TEI, OpenAI, analysis, storage reads, performance, probes
//!   and metrics, docs.
//! - [`storage`]: stored rows as wire bodies.
//! - [`telemetry`]: Prometheus recorder (tee'd into the performance
//!   monitor) and HTTP metrics middleware.
//! - [`observe`]: resource and performance monitors, alerts, the live
//!   snapshot stream, the audit log, memory cleanup, recommendations.
//! - [`security`]: admin token, API keys, rate limits, CORS.
//! - [`state`]: what handlers share.
//! - [`watch`]: `osprey watch`'s pipelines, alerts and the push route.
//! - [`jobs`]: batch jobs' processor and backfills.

pub mod analysis;
pub mod error;
mod extract;
pub mod jobs;
pub mod lifecycle;
pub mod observe;
pub mod routes;
pub mod security;
pub mod settings;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod watch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use osprey_engine::model::ResolveOptions;
use osprey_engine::ModelRegistry;
use osprey_types::error::ErrorCode;
use tokio::net::TcpListener;

pub use settings::Settings;
pub use state::AppState;

use crate::error::ApiError;

/// A bound, configured server, ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// A job worker was started ([`Application::with_job_worker`]).
    job_worker: bool,
}

/// `security.admin_token`, `security.api_keys` and friends, checked and
/// hashed once.
fn security(settings: &Settings) -> anyhow::Result<security::Security> {
    security::Security::new(&settings.security).map_err(anyhow::Error::msg).context("invalid security settings")
}

impl Application {
    /// Validates `settings`, registers the model and binds the listener.
    /// The model loads in the background once running; `/ready` says when.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate().map_err(anyhow::Error::msg).context("invalid settings")?;
        let listener = TcpListener::bind(&settings.server.bind)
            .await
            .with_context(|| format!("failed to bind {}", settings.server.bind))?;
        let registry = Arc::new(ModelRegistry::new(
            "default",
            settings.model.clone(),
            settings.batching.clone(),
            ResolveOptions::default(),
        ));
        let metrics = telemetry::prometheus();
        let store = if settings.store.enabled {
            let store = osprey_store::Store::open(&settings.store, &settings.server.data_dir)
                .await
                .context("failed to open the store")?;
            tracing::info!(backend = ?store.backend(), "store open, migrations applied");
            Some(store)
        } else {
            None
        };
        let cache = osprey_cache::Cache::new(settings.cache.clone()).await.context("failed to set up the cache")?;
        let jobs = Some(osprey_jobs::Jobs::connect(&settings.jobs).await.context("failed to connect the job queue")?);
        let analyzer = Arc::new(analysis::Analyzer::new(
            settings.analysis.clone(),
            Arc::clone(&registry),
            Some(settings.server.data_dir.clone()),
            store.clone(),
            cache.clone(),
        ));
        telemetry::set_instrumented(settings.telemetry.instrument);
        let observe = Arc::new(observe::Observability::new(&settings).map_err(anyhow::Error::msg)?);
        let security = Arc::new(security(&settings)?);
        let log_level = Arc::new(std::sync::RwLock::new(settings.log.level.clone()));
        let state = AppState {
            registry,
            analyzer,
            metrics,
            settings: Arc::new(settings),
            store,
            cache,
            observe,
            security,
            log_control: None,
            log_level,
            lifecycle: Arc::new(lifecycle::Lifecycle::new()),
            watches: None,
            jobs,
        };
        Ok(Self { listener, state, job_worker: false })
    }

    /// Lets `PUT /performance/config` change the log filter through `control`.
    pub fn with_log_control(mut self, control: state::LogControl) -> Self {
        self.state.log_control = Some(control);
        self
    }

    /// Starts the `[[watch]]` definitions of the settings (what `osprey
    /// watch` does); they stop, drained, when the server shuts down.
    pub fn with_watches(mut self) -> anyhow::Result<Self> {
        let stop = self.state.lifecycle.shutdown_token();
        let watches = watch::Watches::start(
            &self.state.settings.watch,
            Arc::clone(&self.state.analyzer),
            self.state.store.clone(),
            stop,
        )
        .map_err(anyhow::Error::msg)
        .context("invalid watch settings")?;
        let watches = Arc::new(watches);
        // Shutdown waits for their batches in hand to commit.
        let waited = Arc::clone(&watches);
        self.state.lifecycle.tracker().spawn(async move { waited.wait().await });
        self.state.watches = Some(watches);
        Ok(self)
    }

    /// Processes batch jobs from the configured queue in this process
    /// (what `osprey worker` does); stops, drained, at shutdown.
    pub fn with_job_worker(mut self) -> Self {
        spawn_job_worker(&self.state, "worker");
        self.job_worker = true;
        self
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully (see
    /// [`Application::run_with_shutdown`]).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_with_shutdown(shutdown_signal()).await
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully: fails
    /// readiness for `server.drain_delay` while still serving, stops
    /// accepting, gives in-flight requests and then background tasks
    /// `server.shutdown_timeout`, and drains the store's writer and the
    /// cache (the steps are listed in [`lifecycle`]).
    pub async fn run_with_shutdown(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let registry = Arc::clone(&self.state.registry);
        tokio::spawn(async move {
            if let Err(e) = registry.preload().await {
                tracing::error!(error = %e, "model failed to load; /ready reports it");
            }
        });
        let (analyzer, batching) = (Arc::clone(&self.state.analyzer), self.state.settings.batching.clone());
        tokio::task::spawn_blocking(move || analyzer.emotion.load_model(&batching));
        tracing::info!(addr = %self.listener.local_addr()?, "osprey listening");
        observe::spawn(self.state.clone());
        self.state.observe.log("info", format!("osprey {} started", env!("CARGO_PKG_VERSION")));
        let (store, cache) = (self.state.store.clone(), self.state.cache.clone());
        let lifecycle = Arc::clone(&self.state.lifecycle);
        let in_process = self.state.jobs.as_ref().is_some_and(|j| j.settings().backend == osprey_jobs::Backend::Memory);
        if in_process && !self.job_worker {
            // The in-process queue is reachable from this process only, so
            // it gets a worker here; Redis queues are served by `osprey worker`.
            spawn_job_worker(&self.state, "serve");
        }
        let http = self.state.settings.server.clone();
        let app = router(self.state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let (served, deadline) = serve_until_drained(self.listener, app, shutdown, &lifecycle, &http).await;
        finish_background(&lifecycle, deadline).await;
        // In-flight requests are done: what they queued is written before exit.
        let closing = Instant::now();
        if let Some(store) = store {
            match store.close().await {
                Ok(report) => {
                    tracing::info!(?report, took_ms = ms_since(closing), "shutdown 5/5: store writer drained")
                }
                Err(e) => tracing::error!(error = %e, "shutdown 5/5: store writer did not drain"),
            }
        }
        cache.flush_writes().await;
        tracing::info!(
            took_ms = ms_since(closing),
            total_ms = lifecycle.drain_began().map(ms_since),
            "shutdown done: cache flushed"
        );
        served?;
        Ok(())
    }
}

/// Serves `app` until `shutdown` resolves, then: begins draining (`/ready`
/// fails, requests are still served) for `http.drain_delay`, stops
/// accepting, and waits for in-flight requests until `http.shutdown_timeout`
/// past that. Returns how serving ended and the deadline for the rest of
/// the shutdown.
async fn serve_until_drained(
    listener: TcpListener,
    app: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, std::net::SocketAddr>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    lifecycle: &Arc<lifecycle::Lifecycle>,
    http: &settings::HttpSettings,
) -> (std::io::Result<()>, Instant) {
    let (drain_delay, timeout) = (http.drain_delay, http.shutdown_timeout);
    // Resolves when the listener is to stop accepting, and says when.
    let (stopping_tx, stopping) = tokio::sync::oneshot::channel::<Instant>();
    let drain = {
        let lifecycle = Arc::clone(lifecycle);
        async move {
            shutdown.await;
            lifecycle.begin_drain();
            tracing::info!(?drain_delay, "shutdown 1/5: draining; /ready answers 503, requests are still served");
            tokio::time::sleep(drain_delay).await;
            tracing::info!(
                took_ms = lifecycle.drain_began().map(ms_since),
                "shutdown 2/5: drain delay over; no longer accepting connections"
            );
            let _ = stopping_tx.send(Instant::now());
        }
    };
    let serve = std::future::IntoFuture::into_future(axum::serve(listener, app).with_graceful_shutdown(drain));
    let mut serve = std::pin::pin!(serve);
    tokio::select! {
        biased;
        // Accepting stopped (or serving failed, dropping the sender).
        stopped_at = stopping => {
            let Ok(stopped_at) = stopped_at else { return ((&mut serve).await, Instant::now() + timeout) };
            let deadline = stopped_at + timeout;
            match tokio::time::timeout_at(deadline.into(), &mut serve).await {
                Ok(served) => {
                    tracing::info!(took_ms = ms_since(stopped_at), "shutdown 3/5: in-flight requests finished");
                    (served, deadline)
                }
                Err(_) => {
                    tracing::warn!(
                        shutdown_timeout = ?timeout,
                        "shutdown 3/5: requests still in flight past server.shutdown_timeout; stopping without them"
                    );
                    (Ok(()), deadline)
                }
            }
        }
        // Serving failed before any shutdown began.
        served = &mut serve => (served, Instant::now() + timeout),
    }
}

/// Cancels the shutdown token and waits, until `deadline`, for the tasks
/// spawned on the lifecycle's tracker.
async fn finish_background(lifecycle: &lifecycle::Lifecycle, deadline: Instant) {
    let started = Instant::now();
    lifecycle.shutdown_token().cancel();
    let tracker = lifecycle.tracker();
    tracker.close();
    let running = tracker.len();
    if tokio::time::timeout_at(deadline.into(), tracker.wait()).await.is_ok() {
        tracing::info!(tasks = running, took_ms = ms_since(started), "shutdown 4/5: background tasks finished");
    } else {
        tracing::warn!(
            still_running = tracker.len(),
            "shutdown 4/5: background tasks still running past server.shutdown_timeout; stopping without them"
        );
    }
}

fn ms_since(at: Instant) -> u64 {
    u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Starts a job worker on the lifecycle's tracker, named after this host
/// and process.
fn spawn_job_worker(state: &AppState, role: &str) {
    let Some(queue) = state.jobs.clone() else { return };
    let processor =
        Arc::new(jobs::AnalysisProcessor { analyzer: Arc::clone(&state.analyzer), store: state.store.clone() });
    let name = osprey_jobs::unique_consumer_name(role);
    tracing::info!(consumer = %name, backend = ?queue.settings().backend, "job worker starting");
    let worker = osprey_jobs::Worker::new(queue, processor, name);
    let stop = state.lifecycle.shutdown_token();
    state.lifecycle.tracker().spawn(async move {
        match worker.run(stop, JOB_DRAIN).await {
            Ok(report) => tracing::info!(?report, "job worker stopped"),
            Err(e) => tracing::error!(error = %e, "job worker failed"),
        }
    });
}

/// How long the in-process job worker gets to finish its chunks in hand.
const JOB_DRAIN: Duration = Duration::from_secs(20);

/// The full router with its middleware; also used by router-level tests.
pub fn router(state: AppState) -> Router {
    let max_body = state.settings.server.max_body_bytes;
    // The engine answers with its own deadline; this is a backstop for
    // anything that would otherwise hang a connection.
    let backstop = state.settings.batching.request_timeout + Duration::from_secs(5);
    let instrument = state.settings.telemetry.instrument;
    let cors = security::cors(&state.settings.security);
    let router = Router::new()
        .merge(routes::tei::router())
        .merge(routes::openai::router())
        .merge(routes::analysis::router())
        .merge(routes::store::router())
        .merge(routes::watch::router())
        .merge(routes::jobs::router())
        .merge(routes::performance::router())
        .merge(routes::observe::router())
        .merge(routes::config::router())
        .merge(routes::probes::router())
        .merge(routes::docs::router())
        .merge(routes::dashboard::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::guard));
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    let router = router
        .layer(axum::middleware::from_fn(move |req, next: axum::middleware::Next| async move {
            match tokio::time::timeout(backstop, next.run(req)).await {
                Ok(resp) => resp,
                Err(_) => {
                    ApiError::new(ErrorCode::Timeout, "request took longer than the server allows").into_response()
                }
            }
        }))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_panic| {
            ApiError::new(ErrorCode::Internal, "handler panicked").into_response()
        }));
    // Outermost, so refusals, timeouts and panics are counted and timed like
    // the rest: the error rate must include the worst failures.
    let router = if instrument { router.layer(axum::middleware::from_fn(telemetry::track)) } else { router };
    // While draining, keep-alive clients are told to reconnect (elsewhere).
    let router = router
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state.lifecycle), lifecycle::close_when_draining));
    router.with_state(state)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    ApiError::not_found(format!("no route for {method} {}", uri.path())).into_response()
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    let mut r = ApiError::new(ErrorCode::MethodNotAllowed, format!("{method} is not allowed on {}", uri.path()))
        .into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}
