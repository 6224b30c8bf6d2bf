//! The live view on stderr: a redrawn block with a progress bar when stderr
//! is a terminal, a plain line every few seconds otherwise, nothing when quiet.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::report::TimelineRow;

/// Seconds between plain progress lines.
const PLAIN_EVERY: u32 = 5;

/// Where progress goes, and whether Ctrl-C stops the run gracefully.
#[derive(Debug, Clone)]
pub struct Console {
    mode: Mode,
    /// Set by the Ctrl-C handler (when installed).
    pub interrupted: Arc<AtomicBool>,
    /// Install a Ctrl-C handler for the run (the command line does; tests do not).
    pub handle_interrupt: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Quiet,
    Plain,
    Tty,
}

impl Console {
    /// Live view when stderr is a terminal, plain lines otherwise.
    pub fn auto(quiet: bool) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Tty
        } else {
            Mode::Plain
        };
        Console { mode, interrupted: Arc::new(AtomicBool::new(false)), handle_interrupt: true }
    }

    /// Prints nothing and leaves signals alone.
    pub fn quiet() -> Self {
        Console { mode: Mode::Quiet, interrupted: Arc::new(AtomicBool::new(false)), handle_interrupt: false }
    }

    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    pub fn is_quiet(&self) -> bool {
        self.mode == Mode::Quiet
    }

    /// A one-off message (run start, abort), unless quiet.
    pub fn note(&self, msg: &str) {
        if self.mode != Mode::Quiet {
            eprintln!("{msg}");
        }
    }
}

/// The running figures the view shows.
pub struct LiveFigures<'a> {
    pub title: &'a str,
    pub elapsed_s: f64,
    pub total_s: f64,
    pub row: &'a TimelineRow,
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    pub missed: u64,
}

/// Redraws the view; keeps how many lines it drew last time.
#[derive(Default)]
pub struct LiveView {
    drawn: usize,
}

impl LiveView {
    pub fn update(&mut self, console: &Console, f: &LiveFigures<'_>) {
        match console.mode {
            Mode::Quiet => {}
            Mode::Plain => {
                if f.row.t % PLAIN_EVERY == PLAIN_EVERY - 1 {
                    eprintln!(
                        "[{:>6.1}s/{:.0}s] rps={:.0} p50={} p95={} p99={} sent={} errors={} missed={}",
                        f.elapsed_s,
                        f.total_s,
                        f.row.rps,
                        fmt_ms(f.row.p50_ms),
                        fmt_ms(f.row.p95_ms),
                        fmt_ms(f.row.p99_ms),
                        f.sent,
                        f.errors,
                        f.missed
                    );
                }
            }
            Mode::Tty => {
                let frac = if f.total_s > 0.0 { (f.elapsed_s / f.total_s).clamp(0.0, 1.0) } else { 1.0 };
                let width = 30;
                let filled = (frac * width as f64).round() as usize;
                let lines = [
                    format!(
                        "{}  [{}{}] {:>3.0}%  {:.0}s/{:.0}s",
                        f.title,
                        "#".repeat(filled),
                        "-".repeat(width - filled),
                        frac * 100.0,
                        f.elapsed_s,
                        f.total_s
                    ),
                    format!(
                        "  rps {:>9.0}   sent {:>10}   ok {:>10}   errors {:>8}   missed {:>8}",
                        f.row.rps, f.sent, f.ok, f.errors, f.missed
                    ),
                    format!(
                        "  last second: p50 {}  p90 {}  p95 {}  p99 {}  max {}",
                        fmt_ms(f.row.p50_ms),
                        fmt_ms(f.row.p90_ms),
                        fmt_ms(f.row.p95_ms),
                        fmt_ms(f.row.p99_ms),
                        fmt_ms(f.row.max_ms)
                    ),
                ];
                let mut err = std::io::stderr().lock();
                if self.drawn > 0 {
                    let _ = write!(err, "\x1b[{}F", self.drawn);
                }
                for l in &lines {
                    let _ = writeln!(err, "\x1b[2K{l}");
                }
                let _ = err.flush();
                self.drawn = lines.len();
            }
        }
    }
}

/// `1.23ms`, `12.3ms`, `1.23s`.
pub fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0}ms")
    } else if ms >= 10.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.2}ms")
    }
}
