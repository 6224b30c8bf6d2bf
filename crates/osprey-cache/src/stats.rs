//! Exact counters that stay cheap when every core bumps them, and the
//! serialisable snapshot served as `GET /performance/cache/stats`.
//!
//! A single `AtomicU64` per counter would be exact but would bounce its cache
//! line between cores on every L1 hit, costing more than the hit itself. So
//! each counter set is striped: every thread adds to its own 128-byte-aligned
//! stripe (picked once per thread, round robin) and a read sums the stripes.
//! Additions are atomic, so the sums are exact once the adding calls return.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;

use crate::Kind;

const STRIPES: usize = 16;

#[repr(align(128))]
struct Stripe<const N: usize>([AtomicU64; N]);

/// `N` exact counters, striped across threads.
pub(crate) struct Counters<const N: usize> {
    stripes: Box<[Stripe<N>]>,
}

impl<const N: usize> Counters<N> {
    pub fn new() -> Self {
        let stripes = (0..STRIPES).map(|_| Stripe(std::array::from_fn(|_| AtomicU64::new(0)))).collect();
        Self { stripes }
    }

    #[inline]
    pub fn add(&self, idx: usize, n: u64) {
        self.stripes[stripe()].0[idx].fetch_add(n, Ordering::Relaxed);
    }

    pub fn sum(&self, idx: usize) -> u64 {
        self.stripes.iter().map(|s| s.0[idx].load(Ordering::Relaxed)).sum()
    }
}

impl<const N: usize> Default for Counters<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// This thread's stripe, assigned on first use.
#[inline]
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
            s.set(i);
        }
        i
    })
}

/// One value per [`Kind`], serialised with the kinds' names as field names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PerKind<T> {
    pub prediction: T,
    pub metadata: T,
    pub response: T,
}

impl<T> PerKind<T> {
    pub fn from_fn(mut f: impl FnMut(Kind) -> T) -> Self {
        Self { prediction: f(Kind::Prediction), metadata: f(Kind::Metadata), response: f(Kind::Response) }
    }

    pub fn get(&self, kind: Kind) -> &T {
        match kind {
            Kind::Prediction => &self.prediction,
            Kind::Metadata => &self.metadata,
            Kind::Response => &self.response,
        }
    }
}

/// Removals from L1 by moka's cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Evictions {
    /// Pushed out (or refused admission) to stay within the bounds.
    pub size: u64,
    /// TTL or TTI ran out.
    pub expired: u64,
    /// Overwritten by a newer value for the same key.
    pub replaced: u64,
    /// Removed by `clear`.
    pub explicit: u64,
}

/// L1 counters for one kind (or all of them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct L1KindStats {
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
    pub evictions: Evictions,
    /// Entries held; exact after `run_pending_tasks`.
    pub entries: u64,
    /// Summed `approx_bytes` of the entries held; exact after `run_pending_tasks`.
    pub bytes: u64,
}

impl L1KindStats {
    fn add(&mut self, o: &Self) {
        self.hits += o.hits;
        self.misses += o.misses;
        self.inserts += o.inserts;
        self.evictions.size += o.evictions.size;
        self.evictions.expired += o.evictions.expired;
        self.evictions.replaced += o.evictions.replaced;
        self.evictions.explicit += o.evictions.explicit;
        self.entries += o.entries;
        self.bytes += o.bytes;
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct L1Stats {
    pub enabled: bool,
    pub max_bytes: u64,
    pub max_entries: u64,
    /// What moka charges against `max_bytes` (each entry weighs at least
    /// `max_bytes / max_entries`), so it shows which bound binds.
    pub weighted_bytes: u64,
    pub total: L1KindStats,
    pub kinds: PerKind<L1KindStats>,
}

impl L1Stats {
    pub(crate) fn new(
        enabled: bool,
        max_bytes: u64,
        max_entries: u64,
        weighted: u64,
        kinds: PerKind<L1KindStats>,
    ) -> Self {
        let mut total = L1KindStats::default();
        for k in Kind::ALL {
            total.add(kinds.get(k));
        }
        Self { enabled, max_bytes, max_entries, weighted_bytes: weighted, total, kinds }
    }
}

/// L2 counters for one kind (or all of them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct L2KindStats {
    pub hits: u64,
    pub misses: u64,
    /// Values written (SET acknowledged by Redis).
    pub inserts: u64,
    /// Encoded bytes sent with acknowledged writes.
    pub bytes_written: u64,
    /// Encoded bytes received with hits.
    pub bytes_read: u64,
    /// Acknowledged writes whose body was zstd-compressed.
    pub compressed_writes: u64,
    /// Look-ups and writes that failed (connection or server error). Counted
    /// per key: a failed MGET carrying 16 look-ups counts 16 here and once in
    /// `errors_by_op`.
    pub errors: u64,
    /// Look-ups and writes that got no answer within `command_timeout`.
    pub timeouts: u64,
    /// Reads whose bytes could not be decoded (served as misses).
    pub decode_errors: u64,
    /// Look-ups and writes not attempted because the breaker was open.
    pub skipped_open: u64,
    /// Look-ups and writes not attempted because the first connection was
    /// not yet made.
    pub skipped_connecting: u64,
    /// Writes dropped because `max_pending_writes` were already in flight.
    pub dropped_writes: u64,
    /// Writes not attempted because the value exceeded `max_value_bytes`.
    pub too_large: u64,
    /// Keys removed by `clear`.
    pub cleared: u64,
}

impl L2KindStats {
    fn add(&mut self, o: &Self) {
        self.hits += o.hits;
        self.misses += o.misses;
        self.inserts += o.inserts;
        self.bytes_written += o.bytes_written;
        self.bytes_read += o.bytes_read;
        self.compressed_writes += o.compressed_writes;
        self.errors += o.errors;
        self.timeouts += o.timeouts;
        self.decode_errors += o.decode_errors;
        self.skipped_open += o.skipped_open;
        self.skipped_connecting += o.skipped_connecting;
        self.dropped_writes += o.dropped_writes;
        self.too_large += o.too_large;
        self.cleared += o.cleared;
    }
}

/// Where the L2 connection stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum L2State {
    /// No URL configured: L1 only.
    Disabled,
    /// The first connection has not been made yet; L2 is skipped meanwhile.
    Connecting { last_error: Option<String> },
    /// Connected and the breaker is closed.
    Up,
    /// The breaker opened at `since_unix_ms`; L2 is skipped for `retry_in_ms`
    /// more, then one call probes it.
    Open { since_unix_ms: u64, retry_in_ms: u64 },
    /// The cooldown is over; the next call (or the one in flight) decides.
    HalfOpen,
}

impl L2State {
    pub fn is_up(&self) -> bool {
        matches!(self, L2State::Up)
    }

    /// True while the breaker keeps requests away from Redis.
    pub fn is_open(&self) -> bool {
        matches!(self, L2State::Open { .. } | L2State::HalfOpen)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct L2Stats {
    pub enabled: bool,
    #[serde(flatten)]
    pub state: L2State,
    /// Background writes in flight right now.
    pub pending_writes: u64,
    /// Failed commands by operation and reason (`timeout`, `io`, `server`, `other`).
    pub errors_by_op: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    pub total: L2KindStats,
    pub kinds: PerKind<L2KindStats>,
}

impl L2Stats {
    pub(crate) fn new(
        state: L2State,
        pending_writes: u64,
        errors_by_op: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
        kinds: PerKind<L2KindStats>,
    ) -> Self {
        let mut total = L2KindStats::default();
        for k in Kind::ALL {
            total.add(kinds.get(k));
        }
        Self { enabled: state != L2State::Disabled, state, pending_writes, errors_by_op, total, kinds }
    }
}

/// Both tiers, as served by `GET /performance/cache/stats`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    pub l1: L1Stats,
    pub l2: L2Stats,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn striped_sums_are_exact_across_threads() {
        let c = Arc::new(Counters::<2>::new());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        c.add(0, 1);
                        c.add(1, t);
                    }
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().is_ok());
        }
        assert_eq!(c.sum(0), 80_000);
        assert_eq!(c.sum(1), 10_000 * (0..8).sum::<u64>());
    }

    #[test]
    fn state_serialises_with_a_tag() -> Result<(), serde_json::Error> {
        let open = serde_json::to_value(L2State::Open { since_unix_ms: 5, retry_in_ms: 7 })?;
        assert_eq!(open, serde_json::json!({"state": "open", "since_unix_ms": 5, "retry_in_ms": 7}));
        assert_eq!(serde_json::to_value(L2State::Up)?, serde_json::json!({"state": "up"}));
        Ok(())
    }
}
