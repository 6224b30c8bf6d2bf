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

pub mod bench;
pub mod bench_analysis;
pub mod bench_storage;
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
            init_tracing(&settings.log.level, &settings.log.format);
            runtime()?
                .block_on(async { osprey_server::Application::build(settings).await?.run_until_stopped().await })?;
        }
        Command::Config { command: ConfigCommand::Print { flags } } => {
            let settings = config::load(config_path.as_deref(), &flags)?;
            let shown = config::redacted(&settings);
            print!("{}", toml::to_string_pretty(&shown).context("failed to render settings")?);
        }
        Command::Models { command } => models::run(command, config_path.as_deref())?,
        Command::Migrate { flags } => {
            let settings = config::load(config_path.as_deref(), &flags)?;
            init_tracing(&settings.log.level, &settings.log.format);
            runtime()?.block_on(migrate(&settings))?;
        }
        Command::Bench { command } => {
            init_tracing("warn", "text");
            return bench::run(command);
        }
    }
    Ok(ExitCode::SUCCESS)
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

fn init_tracing(level: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if format == "json" { builder.json().try_init() } else { builder.try_init() };
}
