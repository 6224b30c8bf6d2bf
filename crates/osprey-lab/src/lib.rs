//! osprey's performance lab.
//!
//! This crate owns `osprey load`, the load tester: open and closed workload
//! models, profiles and staged ramps, scenario files, HDR-histogram
//! measurement with coordinated-omission correction, thresholds that decide
//! the exit code, and JSON/HTML/CSV reports (schema `osprey.load/v1`) that
//! shard generators can merge. The report is also the input of
//! `osprey analyze`.
//!
//! # Layout
//! - [`load`]: the load tester (see its module docs for the tour).

pub mod load;
