//! Batched versus row-at-a-time write throughput on SQLite and PostgreSQL.
//!
//! ```sh
//! cargo run --release -p osprey-store --example store_bench -- [records] [naive_records]
//! ```
//! PostgreSQL is `OSPREY_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); `OSPREY_BENCH_NO_PG=1` skips it, `OSPREY_BENCH_NO_SQLITE=1` skips SQLite.

use osprey_store::bench::{run, BenchOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut opts = BenchOptions::default();
    if let Some(n) = args.next() {
        opts.records = n.parse()?;
    }
    if let Some(n) = args.next() {
        opts.naive_records = n.parse()?;
    }
    opts.sqlite = std::env::var("OSPREY_BENCH_NO_SQLITE").is_err();
    if std::env::var("OSPREY_BENCH_NO_PG").is_err() {
        opts.postgres_url = Some(
            std::env::var("OSPREY_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        );
    }
    let report = run(opts).await?;
    println!("{}", serde_json::to_string_pretty(&report.comparisons)?);
    Ok(())
}
