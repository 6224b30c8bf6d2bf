//! `osprey load` without the rest of osprey: the same flags and subcommands,
//! for benchmarking the load tester on its own
//! (`cargo run -p osprey-lab --release --example load -- --url http://127.0.0.1:8080/`).

use clap::Parser as _;

#[derive(Debug, clap::Parser)]
#[command(name = "osprey-load", about = "osprey's load tester")]
struct Cli {
    #[command(flatten)]
    load: osprey_lab::load::LoadCommand,
}

fn main() -> std::process::ExitCode {
    osprey_lab::load::run(Cli::parse().load)
}
