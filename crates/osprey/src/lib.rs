//! The `osprey` binary's library: command-line definitions and the wiring of
//! concrete types for each subcommand.
//!
//! # Layout
//! - [`cli`]: clap definitions.
//! - [`config`]: settings layering (file → env → flags).
//! - [`models`]: `osprey models list|pull|info`.
//! - `migrate`: `osprey migrate`.
//! - [`bench`]: `osprey bench embed`.
//! - [`bench_analysis`]: `osprey bench analysis` and `osprey bench emotion-model`.
//! - [`bench_storage`]: `osprey bench store` and `osprey bench cache`.
//! - [`bench_telemetry`]: `osprey bench telemetry`.
//! - [`bench_watch`]: `osprey bench watch`.

pub mod bench;
pub mod bench_analysis;
pub mod bench_compare;
pub mod bench_storage;
pub mod bench_suite;
pub mod bench_telemetry;
pub mod bench_watch;
pub mod cli;
pub mod config;
pub mod models;

use std::process::ExitCode;

use anyhow::Context as _;
use cli::{Cli, Command, ConfigCommand};

/// Runs one subcommand to completion.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config_path = cli.config.clone().or_else(config::default_config_path);
    match cli.command {
        Command::Serve(flags) => {
            let settings = config::load(config_path.as_deref(), &flags)?;
            let log_control = init_tracing(&settings.log.level, &settings.log.format);
            runtime()?.block_on(async {
                let app = osprey_server::Application::build(settings).await?;
                let app = match log_control {
                    Some(control) => app.with_log_control(control),
                    None => app,
                };
                app.run_until_stopped().await
            })?;
        }
        Command::Watch(args) => {
            let settings = config::load(config_path.as_deref(), &args.flags)?;
            if settings.watch.is_empty() {
                anyhow::bail!("the settings define no watch; add a [[watch]] section (docs/watch.md)");
            }
            let log_control = init_tracing(&settings.log.level, &settings.log.format);
            runtime()?.block_on(watch(settings, log_control, args.once))?;
        }
        Command::Worker { flags } => {
            let settings = config::load(config_path.as_deref(), &flags)?;
            if settings.jobs.backend != osprey_jobs::Backend::Redis {
                anyhow::bail!(
                    "`osprey worker` needs a shared queue: set jobs.backend = \"redis\" and jobs.redis_url \
                     (the in-process queue is served by `osprey serve` itself)"
                );
            }
            let log_control = init_tracing(&settings.log.level, &settings.log.format);
            runtime()?.block_on(async {
                let app = osprey_server::Application::build(settings).await?.with_job_worker();
                let app = match log_control {
                    Some(control) => app.with_log_control(control),
                    None => app,
                };
                app.run_until_stopped().await
            })?;
        }
        Command::Config { command: ConfigCommand::Print { flags } } => {
            let settings = config::load(config_path.as_deref(), &flags)?;
            let shown = config::redacted(&settings);
            print!("{}", toml::to_string_pretty(&shown).context("failed to render settings")?);
        }
        Command::Models { command } => models::run(command, config_path.as_deref())?,
        Command::Migrate { flags } => {
            let settings = config::load(config_path.as_deref(), &flags)?;
            let _ = init_tracing(&settings.log.level, &settings.log.format);
            runtime()?.block_on(migrate(&settings))?;
        }
        Command::Bench { command } => {
            let _ = init_tracing("warn", "text");
            return bench::run(command);
        }
        Command::Load(command) => return Ok(osprey_lab::load::run_with(*command, Some(&analysis_section))),
        Command::Analyze(args) => return osprey_analyze::run(args),
    }
    Ok(ExitCode::SUCCESS)
}

/// `osprey watch`: the server with its watches; with `once`, it stops when
/// every source has finished and prints what each watch did.
async fn watch(
    settings: osprey_server::Settings,
    log_control: Option<osprey_server::state::LogControl>,
    once: bool,
) -> anyhow::Result<()> {
    let app = osprey_server::Application::build(settings).await?.with_watches()?;
    let app = match log_control {
        Some(control) => app.with_log_control(control),
        None => app,
    };
    let watches = app.state().watches.clone().context("watches did not start")?;
    if !once {
        return app.run_until_stopped().await;
    }
    let started = std::time::Instant::now();
    let stop = async move {
        tokio::select! {
            () = osprey_server::shutdown_signal() => {}
            () = watches.sources_done() => {}
        }
        let mut status = watches.status().await;
        status["elapsed_secs"] = serde_json::json!(started.elapsed().as_secs_f64());
        println!("{}", serde_json::to_string_pretty(&status).unwrap_or_default());
    };
    app.run_with_shutdown(stop).await
}

/// `osprey migrate`: opens the configured store (which applies pending
/// migrations) and prints the versions in place.
async fn migrate(settings: &osprey_server::Settings) -> anyhow::Result<()> {
    let store = osprey_store::Store::open(&settings.store, &settings.server.data_dir)
        .await
        .context("failed to open the store")?;
    let report = store.migrate().await.context("failed to migrate")?;
    println!("{} ({:?})", settings.store.display_url(&settings.server.data_dir), store.backend());
    println!("{report}");
    store.close().await.context("failed to close the store")?;
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("failed to start the async runtime")
}

/// Installs the log; returns what changes its filter at run time (`None`
/// when another subscriber was installed first).
fn init_tracing(level: &str, format: &str) -> Option<osprey_server::state::LogControl> {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{fmt, reload, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if format == "json" {
        registry.with(fmt::layer().json().with_writer(std::io::stderr)).try_init()
    } else {
        registry.with(fmt::layer().with_writer(std::io::stderr)).try_init()
    };
    installed.ok()?;
    Some(std::sync::Arc::new(move |directive: &str| {
        let f = EnvFilter::try_new(directive).map_err(|e| e.to_string())?;
        handle.reload(f).map_err(|e| e.to_string())
    }))
}

/// The section `osprey load` adds to its HTML report: `osprey analyze`'s
/// verdict on the run (score, bottlenecks, recommendations) from the report
/// alone. For the server's own figures too, run `osprey analyze --url`.
fn analysis_section(report_json: &str) -> Option<String> {
    use osprey_analyze::input::report;
    let origin = "this run";
    let picked = report::parse(report_json, origin).and_then(|doc| report::select(doc, None, origin));
    match picked {
        Ok(r) => {
            let inputs = osprey_analyze::Inputs { report: Some(r), ..osprey_analyze::Inputs::default() };
            Some(osprey_analyze::html_section(&osprey_analyze::analyze(&inputs, &osprey_analyze::Options::default())))
        }
        Err(e) => {
            eprintln!("warning: the HTML report has no analysis section: {e}");
            None
        }
    }
}
