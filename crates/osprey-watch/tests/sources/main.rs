//! The sources against real files and a real (loopback) HTTP server.

mod feeds;
mod files;
mod fixture;
mod jsonl;
mod reddit;

use std::time::Duration;

use osprey_watch::{Batch, Source, SourceConfig};

/// Build a source from its settings, as the watch section would.
pub fn build(settings: serde_json::Value) -> Box<dyn Source> {
    let config: SourceConfig = serde_json::from_value(settings).expect("source settings");
    config.build().expect("source")
}

/// Let `by` pass on tokio's clock (the sources' waits use it) without waiting for it.
pub async fn let_time_pass(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

/// The external ids of a batch's posts, in order.
pub fn ids(batch: &Batch) -> Vec<String> {
    batch.posts.iter().map(|p| p.external_id.clone()).collect()
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
