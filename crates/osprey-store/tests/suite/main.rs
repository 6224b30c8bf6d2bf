//! The store against real databases: every test here runs once on SQLite
//! and once on PostgreSQL (see `common`).

#[path = "../common/mod.rs"]
#[macro_use]
mod common;

mod aggregates;
mod migrations;
mod reads;
mod watch;
mod writer;
