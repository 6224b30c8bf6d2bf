//! End-to-end tests of `osprey analyze` over recorded fixtures
//! (`tests/fixtures/README.md` says how each was made).
//!
//! - `fixtures` — each fixture's expected score, grade, top bottleneck and
//!   recommended settings;
//! - `command` — [`osprey_analyze::run`]: exit codes, trend failures, the
//!   JSON and HTML outputs, usage errors;
//! - `live` — `--url` against a stand-in server on port 0: one sample,
//!   `--sample`, `--save-stats` read back with `--stats`.

mod command;
mod fixtures;
mod live;

use std::path::{Path, PathBuf};

use osprey_analyze::{analyze, Analysis, Inputs, Options};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Analyses fixtures by name with the default options (SLO 300 ms).
pub fn analyse(report: Option<&str>, stats: Option<&str>, baseline: Option<&str>) -> Analysis {
    analyse_with(report, stats, baseline, &Options::default())
}

pub fn analyse_with(report: Option<&str>, stats: Option<&str>, baseline: Option<&str>, o: &Options) -> Analysis {
    let (r, s, b) = (report.map(fixture), stats.map(fixture), baseline.map(fixture));
    let inputs = Inputs::read(r.as_deref(), None, s.as_deref(), b.as_deref()).expect("fixtures read");
    analyze(&inputs, o)
}
