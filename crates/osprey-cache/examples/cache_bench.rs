//! Runs the cache benchmark: `cargo run --release -p osprey-cache --example cache_bench`.
//!
//! `OSPREY_BENCH_REDIS_URL` picks the Redis for the L2 part (default
//! `redis://127.0.0.1:6379`; `none` skips it), `OSPREY_BENCH_SECONDS` the
//! length of each L1 run. The report is printed as a table, then as JSON.

use std::time::Duration;

use osprey_cache::bench::{self, BenchOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = BenchOptions::default();
    if let Ok(url) = std::env::var("OSPREY_BENCH_REDIS_URL") {
        opts.redis_url = (url != "none").then_some(url);
    }
    if let Ok(secs) = std::env::var("OSPREY_BENCH_SECONDS") {
        opts.duration = Duration::from_secs_f64(secs.parse()?);
    }
    let report = bench::run(opts).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
