//! `osprey analyze` without building the server:
//! `cargo run -p osprey-analyze --example analyze -- --report run.json --stats stats.json`.

use clap::Parser;

#[derive(Parser)]
#[command(name = "osprey-analyze", about = "osprey analyze (docs/analyze.md)")]
struct Cli {
    #[command(flatten)]
    args: osprey_analyze::AnalyzeArgs,
}

fn main() -> std::process::ExitCode {
    match osprey_analyze::run(Cli::parse().args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
