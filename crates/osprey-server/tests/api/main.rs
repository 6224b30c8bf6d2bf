//! End-to-end tests: a real server on a loopback port, the real model, real HTTP.

mod analysis;
mod batching;
mod errors;
mod helpers;
mod parity;
mod pg;
mod registry;
mod routes;
mod storage;
