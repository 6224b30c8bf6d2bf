//! `osprey bench store` and `osprey bench cache`: batched analysis writes
//! next to row-by-row inserts (SQLite and PostgreSQL), and the two-tier
//! cache next to bare moka and `redis-benchmark`, side by side on this
//! machine. The measuring lives in the crates (`osprey_store::bench`,
//! `osprey_cache::bench`); this module turns flags into options and writes
//! the JSON report.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct StoreBenchArgs {
    /// Records (one post and `--analyses` analyses each) through the batching writer.
    #[arg(long, default_value_t = 50_000)]
    pub records: usize,
    /// Analyses per record.
    #[arg(long, default_value_t = 3)]
    pub analyses: usize,
    /// Records inserted one statement per row: the baseline.
    #[arg(long, default_value_t = 5_000)]
    pub naive_records: usize,
    /// Records per writer batch.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// PostgreSQL to measure on (a throwaway schema is made and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres_url: String,
    /// Skip PostgreSQL.
    #[arg(long)]
    pub no_postgres: bool,
    /// Skip SQLite.
    #[arg(long)]
    pub no_sqlite: bool,
    /// Write the report as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CacheBenchArgs {
    /// Threads for the L1 runs (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Length of each L1 measurement, e.g. 1s.
    #[arg(long, default_value = "1s")]
    pub duration: humantime_serde::re::humantime::Duration,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    pub keys: usize,
    /// Redis for the L2 runs (loopback only).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Skip L2 and redis-benchmark.
    #[arg(long)]
    pub no_l2: bool,
    /// L2 look-ups kept in flight (redis-benchmark's 50 connections × 16 pipelined = 800).
    #[arg(long, default_value_t = 800)]
    pub l2_in_flight: usize,
    /// L2 look-ups measured.
    #[arg(long, default_value_t = 200_000)]
    pub l2_requests: usize,
    /// Write the report as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Refuses a load target off this machine: benchmarks only load loopback.
pub(crate) fn loopback_only(url: &str) -> anyhow::Result<()> {
    let host = url.split_once("://").map_or(url, |(_, r)| r);
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = host.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    anyhow::ensure!(
        matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1"),
        "benchmarks only run against services on this machine (127.0.0.1), not {host:?}"
    );
    Ok(())
}

pub fn store(args: &StoreBenchArgs) -> anyhow::Result<()> {
    if !args.no_postgres {
        loopback_only(&args.postgres_url)?;
    }
    let opts = osprey_store::bench::BenchOptions {
        records: args.records,
        analyses_per_record: args.analyses,
        naive_records: args.naive_records,
        sqlite: !args.no_sqlite,
        postgres_url: (!args.no_postgres).then(|| args.postgres_url.clone()),
        batch_size: args.batch_size,
        print: true,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = rt.block_on(osprey_store::bench::run(opts))?;
    write(args.out.as_ref(), json!({ "machine": crate::bench::machine(), "store": report }))
}

pub fn cache(args: &CacheBenchArgs) -> anyhow::Result<()> {
    if !args.no_l2 {
        loopback_only(&args.redis_url)?;
    }
    let opts = osprey_cache::bench::BenchOptions {
        threads: args.threads,
        duration: Duration::from(args.duration),
        keys: args.keys,
        redis_url: (!args.no_l2).then(|| args.redis_url.clone()),
        l2_in_flight: args.l2_in_flight,
        l2_requests: args.l2_requests,
        redis_benchmark: !args.no_l2,
        ..osprey_cache::bench::BenchOptions::default()
    };
    // One runtime thread: on a small machine Redis needs a core of its own,
    // and a second client thread only fights it for one (L1 runs its own threads).
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let report = rt.block_on(osprey_cache::bench::run(opts)).map_err(|e| anyhow::anyhow!("{e}"))?;
    write(args.out.as_ref(), json!({ "machine": crate::bench::machine(), "cache": report }))
}

fn write(out: Option<&PathBuf>, report: serde_json::Value) -> anyhow::Result<()> {
    if let Some(out) = out {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("failed to write {}", out.display()))?;
        eprintln!("report written to {}", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::loopback_only;

    #[test]
    fn only_loopback_targets_are_loaded() {
        assert!(loopback_only("postgres://postgres@127.0.0.1:5432/test").is_ok());
        assert!(loopback_only("redis://localhost:6379").is_ok());
        assert!(loopback_only("redis://:pw@10.0.0.5:6379").is_err());
        assert!(loopback_only("postgres://db.example:5432/x").is_err());
    }
}
