//! The `osprey` command. Parses the command line and hands off to the
//! libraries; see `osprey --help`.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = osprey::cli::Cli::parse();
    match osprey::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
