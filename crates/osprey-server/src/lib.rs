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

pub mod analysis;
pub mod error;
mod extract;
pub mod observe;
pub mod routes;
pub mod security;
pub mod settings;
pub mod state;
pub mod storage;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

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
        };
        Ok(Self { listener, state })
    }

    /// Lets `PUT /performance/config` change the log filter through `control`.
    pub fn with_log_control(mut self, control: state::LogControl) -> Self {
        self.state.log_control = Some(control);
        self
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_with_shutdown(shutdown_signal()).await
    }

    /// Serves until `shutdown` resolves.
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
        let app = router(self.state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(self.listener, app).with_graceful_shutdown(shutdown).await;
        // In-flight requests are done: what they queued is written before exit.
        if let Some(store) = store {
            match store.close().await {
                Ok(report) => tracing::info!(?report, "store writer drained"),
                Err(e) => tracing::error!(error = %e, "store writer did not drain"),
            }
        }
        cache.flush_writes().await;
        served?;
        Ok(())
    }
}

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

async fn shutdown_signal() {
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
