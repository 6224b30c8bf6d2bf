//! `osprey analyze`: turns a load report (`osprey load --json`), the
//! server's own figures (`/performance/stats`, saved or fetched live) and an
//! optional baseline report into a verdict a person can act on:
//!
//! - a **health score** 0–100 and a grade, from ten signals each scored on a
//!   documented piecewise-linear curve and combined by documented weights
//!   ([`score`]);
//! - **bottlenecks**, most severe first, each with its evidence (metric,
//!   window, value, threshold, source) ([`bottleneck`]);
//! - **recommendations**: priority, the setting to change, a suggested value
//!   where one can be computed, the expected effect, linked to the evidence
//!   ([`recommend`]);
//! - **trends** against a baseline report, where a regression is a failure
//!   with its own exit code ([`trend`]).
//!
//! The analysis is a pure function of its inputs ([`analyze`]); reading
//! files and fetching from a server happen before it, rendering after it.
//! `docs/analyze.md` is the user's guide: every curve, weight, rule and exit
//! code is written down there.
//!
//! ```no_run
//! use osprey_analyze::{analyze, Inputs, Options};
//!
//! let inputs = Inputs::read(Some("run.json".as_ref()), None, Some("stats.json".as_ref()), None)?;
//! let analysis = analyze(&inputs, &Options::default());
//! println!("{}", osprey_analyze::render::text::render(&analysis));
//! # Ok::<(), osprey_analyze::AnalyzeError>(())
//! ```
//!
//! # Layout
//!
//! - `cli` — [`AnalyzeArgs`] (the command line) and [`run`], which validates
//!   the arguments into a plan, gathers the inputs, analyses, writes the
//!   outputs and picks the exit code ([`exit`]).
//! - [`input`] — the input documents, read tolerantly (missing fields and
//!   nulls are absent figures, never errors): load reports (`report`), the
//!   server's stats and the sample bundle `--save-stats` writes (`stats`),
//!   and the live fetch with its loopback guard (`fetch`).
//! - [`facts`] — the figures the rules read, each with where it came from
//!   and over which window; the one place that knows the input layouts.
//! - [`score`] — signals, curves, weights, the total and the grade.
//! - [`bottleneck`], [`recommend`], [`trend`] — the rules.
//! - `analysis` — [`Analysis`] (schema `osprey.analysis/v1`) and [`analyze`].
//! - [`render`] — terminal text, the HTML page and [`html_section`] for other
//!   reports to embed.

mod analysis;
mod cli;
mod error;

pub mod bottleneck;
pub mod facts;
pub mod input;
pub mod recommend;
pub mod render;
pub mod score;
pub mod trend;

pub use analysis::{analyze, Analysis, InputSummary, Options, Tool, SCHEMA};
pub use cli::{exit, run, AnalyzeArgs};
pub use error::AnalyzeError;
pub use input::Inputs;
pub use render::html::section as html_section;
