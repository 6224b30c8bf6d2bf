//! `osprey load`: an HTTP load tester with open and closed workload models.
//!
//! - **Closed model**: N virtual users, each waiting for its response (and an
//!   optional think time) before the next request. Raw latency is what the
//!   users saw; the corrected figures add back the requests a stalled user
//!   could not send (HdrHistogram's `record_correct`).
//! - **Open model**: arrivals on a schedule (constant or ramping rate) whether
//!   or not earlier requests returned. Latency counts from the intended send
//!   time, so coordinated omission is corrected by construction; arrivals the
//!   generator cannot send are counted as missed, never silently dropped.
//!
//! Memory is constant in the request count: HDR histograms, one per-second
//! bucket per thread in flight, one row per second in the timeline.
//! Reports use the versioned JSON schema `osprey.load/v1` (see
//! `docs/load.md`), and carry their histograms so shard reports merge exactly.
//!
//! # Layout
//! - [`cli`]: clap definitions; [`run`] dispatches them.
//! - [`spec`]: [`RunSpec`], the validated plan (defaults, ceilings, safety).
//! - [`workload`]: stages, shapes, profiles, the arrival schedule.
//! - [`scenario`] and [`template`]: scenario files, checks, data-driven bodies.
//! - [`threshold`]: pass/fail criteria and exit codes.
//! - [`target`]: URL parsing and the loopback rule.
//! - `request`, `conn`, `h1`, `worker`: prepared requests, connections (HTTP/1.1
//!   through the tool's own client, HTTP/2 through hyper), generator threads.
//! - `engine` and `collector`: running threads, per-second aggregation, aborts.
//! - [`stats`], [`hist`], [`server_timing`], [`saturation`]: measurement.
//! - [`report`]: the schema and its renderings; [`merge`]; [`suite`].
//! - [`live`]: the terminal view.

pub mod cli;
mod collector;
mod conn;
mod engine;
pub mod error;
mod h1;
pub mod hist;
pub mod live;
pub mod merge;
pub mod report;
mod request;
pub mod saturation;
pub mod scenario;
pub mod server_timing;
pub mod spec;
pub mod stats;
pub mod suite;
pub mod target;
pub mod template;
pub mod threshold;
mod worker;
pub mod workload;

use std::process::ExitCode;

pub use cli::{LoadCommand, LoadSubcommand, RunArgs};
pub use error::LoadError;
pub use live::Console;
pub use report::{Document, Report, SuiteReport};
pub use spec::RunSpec;

use report::exit;

/// Runs one load test and returns its report.
pub fn execute(spec: &RunSpec, console: &Console) -> Result<Report, LoadError> {
    let outcome = engine::run(spec, console)?;
    report::build(spec, outcome)
}

/// `osprey load …`: runs the command and returns its exit code (see `docs/load.md`).
pub fn run(cmd: LoadCommand) -> ExitCode {
    run_with(cmd, None)
}

/// [`run`], with a section `appendix` makes from each JSON report added to
/// the HTML report.
pub fn run_with(cmd: LoadCommand, appendix: Option<&report::Appendix>) -> ExitCode {
    match dispatch(cmd, appendix) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::ERROR)
        }
    }
}

fn dispatch(cmd: LoadCommand, appendix: Option<&report::Appendix>) -> Result<u8, LoadError> {
    match cmd.command {
        None => run_once(&cmd.run, appendix),
        Some(LoadSubcommand::Suite(args)) => {
            let suite = suite::Suite::load(&args.file, &args)?;
            let baseline = args.output.compare.as_deref().map(Document::read).transpose()?;
            let console = Console::auto(args.output.quiet);
            let doc = Document::Suite(suite::execute(&suite, &console)?);
            finish(&doc, &args.output, baseline.as_ref(), appendix)
        }
        Some(LoadSubcommand::Merge(args)) => {
            let mut reports = Vec::new();
            for p in &args.inputs {
                match Document::read(p)? {
                    Document::Run(r) => reports.push(*r),
                    Document::Suite(_) => {
                        return Err(LoadError::invalid(format!("{}: suite reports cannot be merged", p.display())))
                    }
                }
            }
            let doc = Document::Run(Box::new(merge::merge(&reports)?));
            print!("{}", report::text::render(&doc));
            report::write_outputs(&doc, Some(&args.output), args.html.as_deref(), args.csv.as_deref(), appendix)?;
            Ok(doc.exit_code())
        }
        Some(LoadSubcommand::Compare(args)) => {
            let before = Document::read(&args.baseline)?;
            let after = Document::read(&args.current)?;
            print!("{}", report::compare::render(&before, &after));
            Ok(exit::OK)
        }
    }
}

fn run_once(args: &RunArgs, appendix: Option<&report::Appendix>) -> Result<u8, LoadError> {
    let spec = RunSpec::from_args(args)?;
    let baseline = args.output.compare.as_deref().map(Document::read).transpose()?;
    let console = Console::auto(args.output.quiet);
    console.note(&describe(&spec));
    let doc = Document::Run(Box::new(execute(&spec, &console)?));
    finish(&doc, &args.output, baseline.as_ref(), appendix)
}

fn finish(
    doc: &Document,
    output: &cli::OutputArgs,
    baseline: Option<&Document>,
    appendix: Option<&report::Appendix>,
) -> Result<u8, LoadError> {
    print!("{}", report::text::render(doc));
    report::write_outputs(doc, output.json.as_deref(), output.html.as_deref(), output.csv.as_deref(), appendix)?;
    if let Some(before) = baseline {
        print!("{}", report::compare::render(before, doc));
    }
    Ok(doc.exit_code())
}

/// One line saying what is about to run.
pub fn describe(spec: &RunSpec) -> String {
    let what = match &spec.model {
        spec::Model::Closed { think, .. } => format!(
            "closed model, {} VUs{}",
            spec.shape.peak(),
            if think.is_zero() { String::new() } else { format!(", think {}", humantime::format_duration(*think)) }
        ),
        spec::Model::Open { max_connections, .. } => {
            format!("open model, {:.0} req/s peak, up to {max_connections} connections", spec.shape.peak())
        }
    };
    format!(
        "osprey load: {} → {} ({what}, {}, {} threads{}{})",
        spec.name,
        spec.target.url,
        humantime::format_duration(spec.shape.duration()),
        spec.threads,
        if spec.http2 { ", HTTP/2" } else { "" },
        if spec.shard.count > 1 {
            format!(", shard {}/{}", spec.shard.index + 1, spec.shard.count)
        } else {
            String::new()
        }
    )
}
