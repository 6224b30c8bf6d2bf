//! L1: the in-process tier, a moka sync cache of typed values.
//!
//! Values are held as `Arc<dyn Any>`, so a hit is a hash look-up and a
//! downcast: no decoding, no copy. moka supplies W-TinyLFU admission (a
//! one-off key cannot push out a popular one), per-entry expiry (TTL by kind
//! through [`Expiry`], optional TTI) and an eviction listener that keeps the
//! per-kind byte and entry counts.

use std::any::Any;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;
use moka::Expiry;

use crate::stats::{Counters, Evictions, L1KindStats, L1Stats, PerKind};
use crate::{Cacheable, Kind, KindTtls, L1Settings};

/// moka's key: the kind keeps equal hashes of different kinds apart.
pub(crate) type Key = (Kind, u128);

/// A held value and the bytes it is charged for.
#[derive(Clone)]
pub(crate) struct Entry {
    pub value: Arc<dyn Any + Send + Sync>,
    pub bytes: u64,
}

pub(crate) type Moka = moka::sync::Cache<Key, Entry>;

/// Per-kind counter slots.
mod slot {
    pub const HIT: usize = 0;
    pub const MISS: usize = 1;
    pub const INSERT: usize = 2;
    pub const EVICT_SIZE: usize = 3;
    pub const EVICT_EXPIRED: usize = 4;
    pub const EVICT_REPLACED: usize = 5;
    pub const EVICT_EXPLICIT: usize = 6;
    pub const ADDED_BYTES: usize = 7;
    pub const REMOVED_BYTES: usize = 8;
    pub const N: usize = 9;
}

type L1Counters = Counters<{ 3 * slot::N }>;

#[inline]
fn idx(kind: Kind, slot: usize) -> usize {
    kind.index() * slot::N + slot
}

/// TTL by kind, restarted when a key is overwritten.
struct KindExpiry(KindTtls);

impl Expiry<Key, Entry> for KindExpiry {
    fn expire_after_create(&self, key: &Key, _: &Entry, _: Instant) -> Option<Duration> {
        Some(self.0.get(key.0))
    }

    fn expire_after_update(&self, key: &Key, _: &Entry, _: Instant, _: Option<Duration>) -> Option<Duration> {
        Some(self.0.get(key.0))
    }
}

/// The moka configuration shared by [`L1`] and the benchmark's bare baseline,
/// minus the eviction listener (which is part of what the wrapper costs).
pub(crate) fn builder(settings: &L1Settings) -> moka::sync::CacheBuilder<Key, Entry, Moka> {
    // Two bounds through one weigher: moka bounds the summed weight by
    // `max_bytes`, and no entry weighs less than `max_bytes / max_entries`.
    // Large values are thus limited by their bytes, and small ones by count,
    // since n entries weigh at least n * max_bytes / max_entries <= max_bytes,
    // so n <= max_entries. Summed bytes never exceed max_bytes either, since
    // every weight is at least the entry's bytes. A second moka bound on
    // entries does not exist, and this avoids keeping two caches in step.
    let floor = (settings.max_bytes / settings.max_entries.max(1)).max(1);
    let mut builder = moka::sync::Cache::builder()
        .max_capacity(settings.max_bytes)
        .weigher(move |_: &Key, e: &Entry| u32::try_from(e.bytes.max(floor)).unwrap_or(u32::MAX))
        .expire_after(KindExpiry(settings.ttl));
    if let Some(tti) = settings.tti {
        builder = builder.time_to_idle(tti);
    }
    builder
}

/// The tier. The moka cache sits behind a lock only so that
/// [`L1::reconfigure`] can swap it for one of another size; reads take the
/// lock shared and never wait on each other.
pub(crate) struct L1 {
    cache: RwLock<Option<Moka>>,
    counters: Arc<L1Counters>,
    settings: RwLock<L1Settings>,
}

impl L1 {
    pub fn new(settings: &L1Settings) -> Self {
        let counters = Arc::new(L1Counters::new());
        let cache = Self::build(settings, &counters);
        Self { cache: RwLock::new(cache), counters, settings: RwLock::new(settings.clone()) }
    }

    fn build(settings: &L1Settings, counters: &Arc<L1Counters>) -> Option<Moka> {
        settings.enabled.then(|| {
            let c = Arc::clone(counters);
            builder(settings)
                .eviction_listener(move |key: Arc<Key>, entry: Entry, cause| {
                    let slot = match cause {
                        RemovalCause::Size => slot::EVICT_SIZE,
                        RemovalCause::Expired => slot::EVICT_EXPIRED,
                        RemovalCause::Replaced => slot::EVICT_REPLACED,
                        RemovalCause::Explicit => slot::EVICT_EXPLICIT,
                    };
                    c.add(idx(key.0, slot), 1);
                    c.add(idx(key.0, slot::REMOVED_BYTES), entry.bytes);
                })
                .build()
        })
    }

    fn moka(&self) -> RwLockReadGuard<'_, Option<Moka>> {
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn enabled(&self) -> bool {
        self.moka().is_some()
    }

    pub fn settings(&self) -> L1Settings {
        self.settings.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the tier with one built from `settings` (sizes, TTLs, TTI),
    /// carrying the live entries over; those beyond the new bounds are
    /// evicted as `size`. Entries carried over start a fresh TTL under the
    /// new settings (moka cannot be told an entry's remaining time).
    pub fn reconfigure(&self, settings: &L1Settings) {
        let fresh = Self::build(settings, &self.counters);
        let mut slot = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = slot.as_ref() {
            // Expired entries leave now, through the listener, so the counts
            // stay exact; only live ones are carried.
            old.run_pending_tasks();
        }
        if let (Some(old), Some(new)) = (slot.as_ref(), fresh.as_ref()) {
            for (key, entry) in old.iter() {
                new.insert(*key, entry);
            }
            new.run_pending_tasks();
        } else if let Some(old) = slot.as_ref() {
            // Turned off: the entries leave as explicit removals.
            old.invalidate_all();
            old.run_pending_tasks();
        }
        *slot = fresh;
        *self.settings.write().unwrap_or_else(PoisonError::into_inner) = settings.clone();
    }

    /// Looks a value up; `count` is false for the re-checks `memoize` makes
    /// after a miss was already counted.
    #[inline]
    pub fn get<T: Cacheable>(&self, kind: Kind, key: u128, count: bool) -> Option<Arc<T>> {
        let guard = self.moka();
        let cache = guard.as_ref()?;
        let found = cache.get(&(kind, key)).and_then(|e| e.value.downcast::<T>().ok());
        if count {
            self.counters.add(idx(kind, if found.is_some() { slot::HIT } else { slot::MISS }), 1);
        }
        found
    }

    #[inline]
    pub fn insert<T: Cacheable>(&self, kind: Kind, key: u128, value: Arc<T>) {
        self.insert_any(kind, key, value.approx_bytes() as u64, value);
    }

    /// Inserts an already type-erased value (single-flight hands these around).
    pub fn insert_any(&self, kind: Kind, key: u128, bytes: u64, value: Arc<dyn Any + Send + Sync>) {
        let guard = self.moka();
        let Some(cache) = guard.as_ref() else { return };
        self.counters.add(idx(kind, slot::INSERT), 1);
        self.counters.add(idx(kind, slot::ADDED_BYTES), bytes);
        cache.insert((kind, key), Entry { value, bytes });
    }

    /// Removes every entry of `kind` (all kinds when `None`); returns how many.
    pub fn clear(&self, kind: Option<Kind>) -> u64 {
        let guard = self.moka();
        let Some(cache) = guard.as_ref() else { return 0 };
        let mut removed = 0;
        for (key, _) in cache.iter() {
            if kind.is_none_or(|k| k == key.0) {
                cache.invalidate(&*key);
                removed += 1;
            }
        }
        cache.run_pending_tasks();
        removed
    }

    pub fn run_pending_tasks(&self) {
        if let Some(cache) = self.moka().as_ref() {
            cache.run_pending_tasks();
        }
    }

    pub fn stats(&self) -> L1Stats {
        let c = &self.counters;
        let kinds = PerKind::from_fn(|k| {
            let inserts = c.sum(idx(k, slot::INSERT));
            let evictions = Evictions {
                size: c.sum(idx(k, slot::EVICT_SIZE)),
                expired: c.sum(idx(k, slot::EVICT_EXPIRED)),
                replaced: c.sum(idx(k, slot::EVICT_REPLACED)),
                explicit: c.sum(idx(k, slot::EVICT_EXPLICIT)),
            };
            let removed = evictions.size + evictions.expired + evictions.replaced + evictions.explicit;
            L1KindStats {
                hits: c.sum(idx(k, slot::HIT)),
                misses: c.sum(idx(k, slot::MISS)),
                inserts,
                evictions,
                entries: inserts.saturating_sub(removed),
                bytes: c.sum(idx(k, slot::ADDED_BYTES)).saturating_sub(c.sum(idx(k, slot::REMOVED_BYTES))),
            }
        });
        let weighted = self.moka().as_ref().map_or(0, Moka::weighted_size);
        let settings = self.settings();
        L1Stats::new(self.enabled(), settings.max_bytes, settings.max_entries, weighted, kinds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Other(u64);

    impl Cacheable for Other {
        fn approx_bytes(&self) -> usize {
            8
        }
    }

    fn settings(max_bytes: u64, max_entries: u64) -> L1Settings {
        L1Settings { max_bytes, max_entries, ..L1Settings::default() }
    }

    fn blob(n: usize) -> Arc<String> {
        // approx_bytes = n + 24 (String's own size)
        Arc::new("x".repeat(n))
    }

    #[test]
    fn bounded_by_entries_when_values_are_small() {
        let l1 = L1::new(&settings(1 << 20, 50));
        for i in 0..1_000u128 {
            l1.insert(Kind::Prediction, i, blob(8));
            l1.run_pending_tasks();
        }
        l1.run_pending_tasks();
        let s = l1.stats();
        assert!(s.total.entries <= 50 && s.total.entries >= 40, "{} entries", s.total.entries);
        assert_eq!(s.total.entries, l1.moka().as_ref().map_or(0, |c| c.entry_count()), "listener tracks moka exactly");
        assert_eq!(s.total.inserts - s.total.evictions.size, s.total.entries);
        assert_eq!(s.total.bytes, s.total.entries * 32);
    }

    #[test]
    fn bounded_by_bytes_when_values_are_large() {
        // Room for 100k entries but only 64 KiB: ten 10 KiB values cannot all fit.
        let l1 = L1::new(&settings(64 * 1024, 100_000));
        for i in 0..10u128 {
            l1.insert(Kind::Metadata, i, blob(10 * 1024 - 24));
            l1.run_pending_tasks();
        }
        let s = l1.stats();
        assert!(s.total.bytes <= 64 * 1024, "{} bytes", s.total.bytes);
        assert!(s.total.entries >= 5 && s.total.entries <= 6, "{} entries", s.total.entries);
        assert_eq!(s.kinds.metadata.bytes, s.total.entries * 10 * 1024);
        assert!(s.weighted_bytes <= 64 * 1024);
    }

    #[test]
    fn ttl_is_per_kind_and_counts_expiry() {
        let mut s = settings(1 << 20, 1000);
        s.ttl.prediction = Duration::from_millis(60);
        s.ttl.metadata = Duration::from_secs(60);
        let l1 = L1::new(&s);
        l1.insert(Kind::Prediction, 1, blob(1));
        l1.insert(Kind::Metadata, 1, blob(1));
        assert!(l1.get::<String>(Kind::Prediction, 1, true).is_some());
        std::thread::sleep(Duration::from_millis(120));
        assert!(l1.get::<String>(Kind::Prediction, 1, true).is_none(), "prediction TTL passed");
        assert!(l1.get::<String>(Kind::Metadata, 1, true).is_some(), "metadata TTL did not");
        // Expired entries stop being served at once, but moka's timer wheel
        // (buckets of about a second) removes them, and tells the listener, later.
        let deadline = Instant::now() + Duration::from_secs(5);
        while l1.stats().kinds.prediction.evictions.expired == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            l1.run_pending_tasks();
        }
        let st = l1.stats();
        assert_eq!(st.kinds.prediction.evictions.expired, 1);
        assert_eq!(st.kinds.prediction.entries, 0);
        assert_eq!(st.kinds.metadata.entries, 1);
        assert_eq!((st.total.hits, st.total.misses), (2, 1));
    }

    #[test]
    fn tti_drops_idle_entries_only() {
        let mut s = settings(1 << 20, 1000);
        s.tti = Some(Duration::from_millis(150));
        let l1 = L1::new(&s);
        l1.insert(Kind::Response, 1, blob(1));
        l1.insert(Kind::Response, 2, blob(1));
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(60));
            assert!(l1.get::<String>(Kind::Response, 1, false).is_some(), "read keeps it alive");
        }
        assert!(l1.get::<String>(Kind::Response, 2, false).is_none(), "idle for 240ms");
    }

    #[test]
    fn replace_wrong_type_and_clear_by_kind() {
        let l1 = L1::new(&settings(1 << 20, 1000));
        l1.insert(Kind::Prediction, 7, blob(10));
        l1.insert(Kind::Prediction, 7, blob(20));
        l1.insert(Kind::Response, 7, blob(30));
        assert!(l1.get::<Other>(Kind::Prediction, 7, true).is_none(), "a different type is a miss");
        assert_eq!(l1.get::<String>(Kind::Prediction, 7, true).map(|v| v.len()), Some(20));
        l1.run_pending_tasks();
        assert_eq!(l1.stats().kinds.prediction.evictions.replaced, 1);
        assert_eq!(l1.clear(Some(Kind::Prediction)), 1);
        let s = l1.stats();
        assert_eq!((s.kinds.prediction.entries, s.kinds.prediction.evictions.explicit), (0, 1));
        assert_eq!((s.kinds.response.entries, s.kinds.response.bytes), (1, 54));
        assert_eq!(l1.clear(None), 1);
        assert_eq!(l1.stats().total.entries, 0);
    }

    #[test]
    fn reconfigure_carries_entries_over_within_the_new_bounds() {
        let l1 = L1::new(&settings(1 << 20, 1000));
        for i in 0..200u128 {
            l1.insert(Kind::Prediction, i, blob(8));
        }
        l1.run_pending_tasks();
        assert_eq!(l1.stats().total.entries, 200);
        l1.reconfigure(&settings(1 << 20, 2000));
        assert_eq!(l1.stats().total.entries, 200, "growing keeps everything");
        assert!(l1.get::<String>(Kind::Prediction, 7, true).is_some());
        l1.reconfigure(&settings(1 << 20, 50));
        l1.run_pending_tasks();
        let s = l1.stats();
        assert!(s.total.entries <= 50, "{} entries", s.total.entries);
        assert_eq!(s.total.entries, l1.moka().as_ref().map_or(0, |c| c.entry_count()), "counts stay exact");
        assert_eq!((s.max_entries, l1.settings().max_entries), (50, 50));
        l1.reconfigure(&L1Settings { enabled: false, ..settings(1 << 20, 50) });
        assert_eq!(l1.stats().total.entries, 0);
    }

    #[test]
    fn disabled_tier_holds_nothing() {
        let l1 = L1::new(&L1Settings { enabled: false, ..L1Settings::default() });
        l1.insert(Kind::Prediction, 1, blob(1));
        assert!(l1.get::<String>(Kind::Prediction, 1, true).is_none());
        assert_eq!(l1.stats().total, L1KindStats::default());
    }
}
