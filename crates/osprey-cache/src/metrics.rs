//! Prometheus metric names and their publication.
//!
//! The cache never touches the `metrics` recorder on a request: counters live
//! in striped atomics (see [`crate::CacheStats`]) and [`publish`] copies a snapshot
//! into the recorder (counters with `absolute`, gauges with `set`), once a
//! second from a background task. With several `Cache` instances in one
//! process they would overwrite each other's series; the server has one.

use metrics::{describe_counter, describe_gauge, Unit};

use crate::stats::CacheStats;
use crate::Kind;

/// Look-ups by `tier` (l1, l2), `kind` and `result` (hit, miss).
pub const REQUESTS_TOTAL: &str = "osprey_cache_requests_total";
/// Removals by `tier`, `kind` and `cause` (size, expired, replaced, explicit).
pub const EVICTIONS_TOTAL: &str = "osprey_cache_evictions_total";
/// Bytes held by `tier` and `kind` (L1 only: Redis memory is Redis's to report).
pub const BYTES: &str = "osprey_cache_bytes";
/// Entries held by `tier` and `kind` (L1 only).
pub const ENTRIES: &str = "osprey_cache_entries";
/// Failed Redis commands by `op` (get, mget, set, scan, unlink) and `reason`
/// (timeout, io, server, other).
pub const L2_ERRORS_TOTAL: &str = "osprey_cache_l2_errors_total";
/// L2 calls not made, by `kind` and `reason` (breaker_open, connecting,
/// dropped: write queue full, too_large).
pub const L2_SKIPPED_TOTAL: &str = "osprey_cache_l2_skipped_total";
/// Encoded bytes moved by `kind` and `direction` (read, written).
pub const L2_BYTES_TOTAL: &str = "osprey_cache_l2_bytes_total";
/// Histogram, seconds, labels `op` (get, mget, set, scan, unlink) and
/// `outcome` (ok, error): one Redis round trip, deadline included.
pub const L2_COMMAND_SECONDS: &str = "osprey_cache_l2_command_seconds";
/// 1 while connected with the breaker closed.
pub const L2_UP: &str = "osprey_cache_l2_up";
/// 1 while the breaker keeps requests away from Redis.
pub const L2_BREAKER_OPEN: &str = "osprey_cache_l2_breaker_open";

/// Registers descriptions with the installed recorder; call once at start-up.
pub fn describe() {
    describe_counter!(REQUESTS_TOTAL, "Cache look-ups by tier, kind and result");
    metrics::describe_histogram!(L2_COMMAND_SECONDS, Unit::Seconds, "Redis command round trip by op and outcome");
    describe_counter!(EVICTIONS_TOTAL, "Cache removals by tier, kind and cause");
    describe_gauge!(BYTES, Unit::Bytes, "Approximate bytes held by the in-process cache, by kind");
    describe_gauge!(ENTRIES, "Entries held by the in-process cache, by kind");
    describe_counter!(L2_ERRORS_TOTAL, "Failed Redis cache commands by operation and reason");
    describe_counter!(L2_SKIPPED_TOTAL, "Redis cache calls not made, by kind and reason");
    describe_counter!(L2_BYTES_TOTAL, Unit::Bytes, "Encoded bytes read from and written to Redis, by kind");
    describe_gauge!(L2_UP, "1 while the Redis cache is connected and its breaker closed");
    describe_gauge!(L2_BREAKER_OPEN, "1 while the Redis cache's circuit breaker is open");
}

/// Copies a stats snapshot into the installed recorder.
pub fn publish(stats: &CacheStats) {
    for kind in Kind::ALL {
        let k = kind.as_str();
        let l1 = stats.l1.kinds.get(kind);
        for (result, n) in [("hit", l1.hits), ("miss", l1.misses)] {
            metrics::counter!(REQUESTS_TOTAL, "tier" => "l1", "kind" => k, "result" => result).absolute(n);
        }
        let e = &l1.evictions;
        for (cause, n) in [("size", e.size), ("expired", e.expired), ("replaced", e.replaced), ("explicit", e.explicit)]
        {
            metrics::counter!(EVICTIONS_TOTAL, "tier" => "l1", "kind" => k, "cause" => cause).absolute(n);
        }
        metrics::gauge!(BYTES, "tier" => "l1", "kind" => k).set(l1.bytes as f64);
        metrics::gauge!(ENTRIES, "tier" => "l1", "kind" => k).set(l1.entries as f64);

        if !stats.l2.enabled {
            continue;
        }
        let l2 = stats.l2.kinds.get(kind);
        for (result, n) in [("hit", l2.hits), ("miss", l2.misses)] {
            metrics::counter!(REQUESTS_TOTAL, "tier" => "l2", "kind" => k, "result" => result).absolute(n);
        }
        metrics::counter!(EVICTIONS_TOTAL, "tier" => "l2", "kind" => k, "cause" => "explicit").absolute(l2.cleared);
        for (reason, n) in [
            ("breaker_open", l2.skipped_open),
            ("connecting", l2.skipped_connecting),
            ("dropped", l2.dropped_writes),
            ("too_large", l2.too_large),
        ] {
            metrics::counter!(L2_SKIPPED_TOTAL, "kind" => k, "reason" => reason).absolute(n);
        }
        for (direction, n) in [("read", l2.bytes_read), ("written", l2.bytes_written)] {
            metrics::counter!(L2_BYTES_TOTAL, "kind" => k, "direction" => direction).absolute(n);
        }
    }
    if stats.l2.enabled {
        for (op, reasons) in &stats.l2.errors_by_op {
            for (reason, n) in reasons {
                metrics::counter!(L2_ERRORS_TOTAL, "op" => *op, "reason" => *reason).absolute(*n);
            }
        }
    }
    metrics::gauge!(L2_UP).set(if stats.l2.state.is_up() { 1.0 } else { 0.0 });
    metrics::gauge!(L2_BREAKER_OPEN).set(if stats.l2.state.is_open() { 1.0 } else { 0.0 });
}
