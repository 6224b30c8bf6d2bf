//! Two-tier result cache for osprey: an in-process L1 (moka) in front of a
//! shared L2 (Redis).
//!
//! Analysis results are expensive (a forward pass per text) and repeat often
//! (the same post analysed by several dashboards, the same text by several
//! replicas). L1 answers a repeat in well under a microsecond without
//! decoding anything; L2 lets replicas share results and keeps them across
//! restarts. Redis is an optimisation, never a dependency: when it is slow or
//! down, a circuit breaker routes around it and requests are served from L1 or
//! computed, and start-up does not wait for it.
//!
//! The one entry point is [`Cache`]:
//!
//! - [`Cache::memoize`] caches a function's result by [`Kind`] and
//!   [`CacheKey`], with concurrent misses for one key computed once;
//! - [`Cache::get`], [`Cache::get_l1`], [`Cache::get_many`], [`Cache::put`]
//!   and [`Cache::put_l1`] for callers that manage the computation themselves;
//! - [`Cache::stats`] (served as `GET /performance/cache/stats`) and
//!   [`Cache::clear`] (`POST /performance/cache/clear`);
//! - Prometheus series named in [`metrics`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use osprey_cache::{Cache, CacheSettings, Kind, KeyBuilder};
//!
//! let cache = Cache::new(CacheSettings::default()).await?;
//! let key = KeyBuilder::new("sentiment/v1").str("I love this").finish();
//! let label = cache
//!     .memoize(Kind::Prediction, key, || async { Ok::<_, std::io::Error>("positive".to_string()) })
//!     .await?;
//! assert_eq!(*label, "positive");
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - `cache` — [`Cache`]: read path (L1 → L2 → miss, promoting L2 hits into
//!   L1), `put`, `memoize`, `clear`, stats, the metrics publishing task.
//! - `flight` — single flight: concurrent misses for one key compute once.
//! - `l1` — the moka tier: byte- and entry-bounded weigher, per-kind TTL
//!   through `Expiry`, eviction listener feeding the stats.
//! - `l2` — the Redis tier: key format, per-command deadlines through the
//!   breaker, bounded background writes, SCAN + UNLINK clearing;
//!   `l2::connect` makes the first connection in the background and
//!   `l2::batch` coalesces concurrent single-key reads into MGETs.
//! - `breaker` — the circuit breaker's state machine, clock injected.
//! - `codec` — [`Cacheable`] and the L2 byte format (header, JSON, zstd).
//! - `key` — [`Kind`], [`Tier`], [`CacheKey`], [`KeyBuilder`].
//! - `settings` — [`CacheSettings`] and its validation; URL redaction.
//! - `stats` — striped exact counters and the serialisable [`CacheStats`].
//! - [`metrics`] — Prometheus names, descriptions, publication.
//! - [`mod@bench`] — `osprey bench cache`: wrapper vs bare moka, L2 vs
//!   `redis-benchmark`.

mod breaker;
mod cache;
mod codec;
mod error;
mod flight;
mod key;
mod l1;
mod l2;
mod settings;
mod stats;

pub mod bench;
pub mod metrics;

pub use cache::{Cache, ClearReport};
pub use codec::Cacheable;
pub use error::CacheError;
pub use key::{CacheKey, KeyBuilder, Kind, Tier};
pub use l2::SCHEMA_VERSION;
pub use settings::{redact_url, CacheSettings, KindTtls, L1Settings, L2Settings};
pub use stats::{CacheStats, Evictions, L1KindStats, L1Stats, L2KindStats, L2State, L2Stats, PerKind};
