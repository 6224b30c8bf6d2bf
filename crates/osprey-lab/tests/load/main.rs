//! End-to-end tests of `osprey load` against a real HTTP server on
//! 127.0.0.1:0. No mocks; no assertions on wall-clock speed.

mod helpers;
mod http1;
mod models;
mod outcomes;
mod reports;
mod scenarios;
