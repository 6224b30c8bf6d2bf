//! Per-op storage: a tiny ring of lock-free "hot" second slots in front of a
//! mutex-protected "cold" store of folded seconds and minutes.
//!
//! # Hot path
//!
//! [`Ring::record`] loads the slot of the current second (`second % 4`),
//! checks that the slot belongs to that second, and adds to it with relaxed
//! atomics: one bucket `fetch_add`, one `fetch_add` on the nanosecond sum, a
//! plain load of the maximum (a `fetch_max` only when it grows) and, for
//! failures only, an error `fetch_add`. The count is the sum of the buckets,
//! so it costs nothing extra. No lock, no allocation.
//!
//! # Rotation
//!
//! A slot that still holds an older second must be *folded* (its content moved
//! into the cold store) and zeroed before the new second can use it. That
//! happens under the cold store's mutex, either
//!
//! - in [`Ring::tick`] (the server calls [`crate::PerfMonitor::tick`] once a
//!   second), which folds every slot at least two seconds old and re-labels it
//!   with the next second that maps to it, so recorders find their slot ready
//!   and never leave the fast path; or
//! - lazily by the first recorder of a second that finds its slot stale (once
//!   per second per op at most), so nothing depends on `tick` running at all.
//!
//! Folding drains each counter with `swap(0)`, so an increment is always
//! either drained with the old second or left for the new one: a recorder
//! that read the clock, was descheduled across a rotation of its slot and
//! then added, has its observation counted in a later second (at least four
//! seconds later, as the ring has four slots). Counts are never lost;
//! attribution to a second is exact except for such stragglers.
//!
//! # Cold store and retention
//!
//! A folded second is kept as a sparse summary for the 1-minute window and is
//! merged into its minute's summary for the 5-minute and 1-hour windows. Only
//! the last 60 seconds and the minutes overlapping the last hour are kept, so
//! an op's memory is bounded by 4 dense slots (about 20 KiB) plus 60 + 61
//! sparse summaries (a few bytes per distinct bucket used).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::histogram::{self, Sparse, BUCKETS};

/// Hot slots per op; a power of two so the slot is `second & (HOT - 1)`.
const HOT: u64 = 4;
/// The label of a slot that has never been used.
const EMPTY: u64 = u64::MAX;
/// `tick` folds slots at least this many seconds old: a second of grace for
/// recorders that read the clock just before it moved on.
const TICK_GRACE: u64 = 2;
/// Seconds kept at one-second resolution (the 1-minute window).
pub(crate) const SECONDS_KEPT: u64 = 60;
/// Seconds covered by the longest window (the 1-hour window).
pub(crate) const LONGEST_WINDOW: u64 = 3600;

/// Count, errors, sum, maximum and histogram of some observations.
#[derive(Clone, Debug, Default)]
pub(crate) struct Summary {
    pub(crate) errors: u64,
    pub(crate) sum_ns: u64,
    pub(crate) max_ns: u64,
    pub(crate) hist: Sparse,
}

impl Summary {
    pub(crate) fn count(&self) -> u64 {
        self.hist.total()
    }

    fn merge(&mut self, other: &Summary) {
        self.errors += other.errors;
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
        self.hist.merge(&other.hist);
    }
}

/// Aligns its content to a cache line of its own, so that the read-mostly
/// slot label does not share a line with the counters every record writes.
#[repr(align(64))]
struct Line<T>(T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// One second's worth of lock-free counters.
struct Slot {
    /// The second this slot currently counts, or [`EMPTY`].
    second: Line<AtomicU64>,
    errors: AtomicU64,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
    /// Per-bucket counts; a `u32` would need over four billion observations
    /// of one bucket in one second to wrap.
    buckets: Box<[AtomicU32]>,
}

impl Slot {
    fn new() -> Self {
        Self {
            second: Line(AtomicU64::new(EMPTY)),
            errors: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
            buckets: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    #[inline]
    fn add(&self, ns: u64, ok: bool) {
        self.buckets[histogram::index(ns)].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        if ns > self.max_ns.load(Ordering::Relaxed) {
            self.max_ns.fetch_max(ns, Ordering::Relaxed);
        }
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A copy of the counters (they may move while being read).
    fn read(&self) -> Summary {
        let hist = self
            .buckets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| match b.load(Ordering::Relaxed) {
                0 => None,
                n => Some((i as u16, n)),
            })
            .collect();
        Summary {
            errors: self.errors.load(Ordering::Relaxed),
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
            max_ns: self.max_ns.load(Ordering::Relaxed),
            hist: Sparse::from_sorted(hist),
        }
    }

    /// Takes the counters, leaving zeros; every increment ends up either in
    /// the result or in the zeroed slot.
    fn drain(&self) -> Summary {
        let mut hist = Vec::new();
        for (i, b) in self.buckets.iter().enumerate() {
            if b.load(Ordering::Relaxed) != 0 {
                hist.push((i as u16, b.swap(0, Ordering::Relaxed)));
            }
        }
        Summary {
            errors: self.errors.swap(0, Ordering::Relaxed),
            sum_ns: self.sum_ns.swap(0, Ordering::Relaxed),
            max_ns: self.max_ns.swap(0, Ordering::Relaxed),
            hist: Sparse::from_sorted(hist),
        }
    }
}

/// Folded history of one op.
#[derive(Default)]
struct Cold {
    /// Folded seconds of the last minute, by second.
    seconds: BTreeMap<u64, Summary>,
    /// Folded seconds merged by minute (`second / 60`).
    minutes: BTreeMap<u64, Summary>,
    total: u64,
    total_errors: u64,
}

impl Cold {
    fn absorb(&mut self, second: u64, summary: Summary) {
        let count = summary.count();
        if count == 0 && summary.errors == 0 {
            return;
        }
        self.total += count;
        self.total_errors += summary.errors;
        self.minutes.entry(second / 60).or_default().merge(&summary);
        self.seconds.entry(second).or_default().merge(&summary);
    }

    fn prune(&mut self, now: u64) {
        let oldest_second = (now + 1).saturating_sub(SECONDS_KEPT);
        if self.seconds.first_key_value().is_some_and(|(&s, _)| s < oldest_second) {
            self.seconds = self.seconds.split_off(&oldest_second);
        }
        let oldest_minute = (now + 1).saturating_sub(LONGEST_WINDOW) / 60;
        if self.minutes.first_key_value().is_some_and(|(&m, _)| m < oldest_minute) {
            self.minutes = self.minutes.split_off(&oldest_minute);
        }
    }
}

/// A consistent view of an op's data for window queries, taken under the
/// cold lock.
pub(crate) struct View {
    pub(crate) now: u64,
    /// Unfolded hot slots with their second (only seconds `<= now`).
    pub(crate) hot: Vec<(u64, Summary)>,
    pub(crate) seconds: Vec<(u64, Summary)>,
    pub(crate) minutes: Vec<(u64, Summary)>,
    pub(crate) total: u64,
    pub(crate) total_errors: u64,
}

/// The hot slots and cold store of one op.
pub(crate) struct Ring {
    hot: Box<[Slot]>,
    cold: Mutex<Cold>,
}

impl Ring {
    pub(crate) fn new() -> Self {
        Self { hot: (0..HOT).map(|_| Slot::new()).collect(), cold: Mutex::new(Cold::default()) }
    }

    fn cold(&self) -> MutexGuard<'_, Cold> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that matters to statistics; keep serving.
        self.cold.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn slot(&self, second: u64) -> &Slot {
        &self.hot[(second & (HOT - 1)) as usize]
    }

    /// Counts one observation of `ns` nanoseconds in `second`.
    #[inline]
    pub(crate) fn record(&self, second: u64, ns: u64, ok: bool) {
        let slot = self.slot(second);
        if slot.second.load(Ordering::Acquire) != second {
            self.claim(slot, second);
        }
        slot.add(ns, ok);
    }

    /// Slow path: makes `slot` count `second`, folding what it held.
    #[cold]
    #[inline(never)]
    fn claim(&self, slot: &Slot, second: u64) {
        let mut cold = self.cold();
        let held = slot.second.load(Ordering::Acquire);
        if held == second {
            return; // another recorder (or tick) got here first
        }
        if held != EMPTY {
            if held > second {
                // This thread read the clock long ago; count it in the newer second.
                return;
            }
            cold.absorb(held, slot.drain());
        }
        slot.second.store(second, Ordering::Release);
        cold.prune(second);
    }

    /// Folds slots at least [`TICK_GRACE`] seconds old and readies them for
    /// the next seconds that map to them; drops data older than the longest
    /// window.
    pub(crate) fn tick(&self, now: u64) {
        let mut cold = self.cold();
        for (i, slot) in self.hot.iter().enumerate() {
            let held = slot.second.load(Ordering::Acquire);
            if held != EMPTY && held.saturating_add(TICK_GRACE) > now {
                continue;
            }
            if held != EMPTY {
                cold.absorb(held, slot.drain());
            }
            // The first second after `now` that maps to slot `i`.
            let next = now + 1;
            let next = next + ((i as u64).wrapping_sub(next) & (HOT - 1));
            slot.second.store(next, Ordering::Release);
        }
        cold.prune(now);
    }

    /// Copies what the window queries need at `now`.
    pub(crate) fn view(&self, now: u64) -> View {
        let mut cold = self.cold();
        cold.prune(now);
        let mut hot = Vec::with_capacity(HOT as usize);
        let mut hot_total = 0;
        let mut hot_errors = 0;
        for slot in self.hot.iter() {
            let second = slot.second.load(Ordering::Acquire);
            let summary = slot.read();
            // Every slot's counts belong in the totals, including stragglers'
            // in a slot already labelled with a later second.
            hot_total += summary.count();
            hot_errors += summary.errors;
            if second <= now && summary.count() > 0 {
                hot.push((second, summary));
            }
        }
        let copy = |m: &BTreeMap<u64, Summary>| m.range(..=now).map(|(&k, v)| (k, v.clone())).collect();
        View {
            now,
            hot,
            seconds: copy(&cold.seconds),
            minutes: copy(&cold.minutes),
            total: cold.total + hot_total,
            total_errors: cold.total_errors + hot_errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_rotation_folds_old_seconds() {
        let ring = Ring::new();
        for second in 100..110 {
            ring.record(second, 1_000, second % 2 == 0);
        }
        let view = ring.view(109);
        assert_eq!(view.total, 10);
        assert_eq!(view.total_errors, 5);
        assert_eq!(view.hot.len(), 4, "the last four seconds are still hot");
        assert_eq!(view.seconds.len(), 6);
        assert_eq!(view.minutes.iter().map(|(_, s)| s.count()).sum::<u64>(), 6);
    }

    #[test]
    fn tick_readies_the_next_slots() {
        let ring = Ring::new();
        ring.record(100, 5, true);
        ring.record(101, 5, true);
        ring.tick(103);
        let labels: Vec<u64> = ring.hot.iter().map(|s| s.second.load(Ordering::Relaxed)).collect();
        // 100 and 101 were folded; the slots are relabelled 104..=107 as each maps.
        assert_eq!(labels, vec![104, 105, 106, 107]);
        let view = ring.view(103);
        assert_eq!(view.total, 2);
        assert!(view.hot.is_empty());
        assert_eq!(view.seconds.len(), 2);
    }
}
