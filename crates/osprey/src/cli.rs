//! Command-line definitions.

use std::path::PathBuf;

use crate::config::ServeOverrides;

#[derive(Debug, clap::Parser)]
#[command(name = "osprey", version, about = "Self-hosted ML content-analysis server")]
pub struct Cli {
    /// Settings file (default: ./osprey.toml when present).
    #[arg(long, global = true, env = "OSPREY_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(ServeOverrides),
    /// Run the `[[watch]]` definitions of the settings: poll their sources,
    /// dedup, filter by topics, summarise, run emotion, store and alert;
    /// serves the HTTP API beside them (`POST /v1/ingest/{watch}`,
    /// `GET /v1/watches`, metrics). See docs/watch.md.
    Watch(WatchArgs),
    /// Process batch jobs from the `[jobs]` queue (Redis Streams: any number
    /// of workers on any number of machines share it). Serves /health,
    /// /ready and /metrics on `--bind`.
    Worker {
        #[command(flatten)]
        flags: ServeOverrides,
    },
    /// Inspect settings.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Find, fetch and inspect models.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Apply the store's schema migrations (also done at every start) and
    /// report which versions are in place.
    Migrate {
        #[command(flatten)]
        flags: ServeOverrides,
    },
    /// Benchmarks that print figures and ratios against a baseline.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Load-test an HTTP server: open or closed workload models, profiles,
    /// scenarios, thresholds and reports (docs/load.md).
    Load(Box<osprey_lab::load::LoadCommand>),
    /// Score a run: health 0-100, bottlenecks with evidence, recommendations,
    /// and trends against a baseline (docs/analyze.md).
    Analyze(osprey_analyze::AnalyzeArgs),
}

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print the effective settings (defaults, file, env and flags layered) as TOML.
    Print {
        #[command(flatten)]
        flags: ServeOverrides,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Models in ./models, the HuggingFace cache and the settings.
    List,
    /// Resolve a model (local path → HF cache → hub download) and report where it is.
    Pull { model: String },
    /// Show a model's architecture, pooling, limits and weight size.
    Info { model: Option<String> },
}

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// The suite: model load, encoding by batch size, analysis, cache, store
    /// and end-to-end HTTP, repeated; a table, JSON, and `--baseline`
    /// regressions beyond the measured noise band (exit status 3).
    Suite(crate::bench_suite::SuiteArgs),
    /// Embedding throughput and latency, in-process and over HTTP, against sentence-transformers.
    Embed(crate::bench::EmbedBenchArgs),
    /// Sentiment, emotion and one-pass analyze throughput and latency, against vaderSentiment.
    Analysis(crate::bench_analysis::AnalysisBenchArgs),
    /// Emotion classifier throughput and logits against transformers.
    EmotionModel(crate::bench_analysis::EmotionModelBenchArgs),
    /// Batched analysis writes into SQLite and PostgreSQL against row-by-row inserts.
    Store(crate::bench_storage::StoreBenchArgs),
    /// The two-tier cache against bare moka (L1) and redis-benchmark (L2).
    Cache(crate::bench_storage::CacheBenchArgs),
    /// End-to-end `osprey watch` throughput from a JSONL file (filter,
    /// summary, sentiment, lexicon emotion, stored), against the same
    /// pipeline in Python.
    Watch(crate::bench_watch::WatchBenchArgs),
    /// What observing costs: one record on the hot path, and HTTP throughput
    /// with instrumentation on and off.
    Telemetry(crate::bench_telemetry::TelemetryBenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub flags: ServeOverrides,
    /// Exit once every source has finished (files read to their end, not
    /// tailed), printing each watch's counts as JSON.
    #[arg(long)]
    pub once: bool,
}
