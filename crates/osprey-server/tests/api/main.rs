//! End-to-end tests: a real server on a loopback port, the real model, real HTTP.

mod analysis;
mod batching;
mod cdp;
mod dashboard;
mod deploy_files;
mod errors;
mod helpers;
mod jobs;
mod observe;
mod parity;
mod pg;
mod registry;
mod routes;
mod security;
mod storage;
mod watch;
