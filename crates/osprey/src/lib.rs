//! The `osprey` binary's library: command-line definitions and the wiring of
//! concrete types for each subcommand.
//!
//! # Layout
//! - [`cli`]: clap definitions.
//! - [`config`]: settings layering (file → env → flags).
//! - [`models`]: `osprey models list|pull|info`.
//! - [`bench`]: `osprey bench embed`.
//! - [`bench_analysis`]: `osprey bench analysis` and `osprey bench emotion-model`.

pub mod bench;
pub mod bench_analysis;
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
            print!("{}", toml::to_string_pretty(&settings).context("failed to render settings")?);
        }
        Command::Models { command } => models::run(command, config_path.as_deref())?,
        Command::Bench { command } => {
            init_tracing("warn", "text");
            return bench::run(command);
        }
    }
    Ok(ExitCode::SUCCESS)
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
