//! [`Cache`]: the one interface over both tiers.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;

use crate::flight::{self, Flights, Role};
use crate::l1::L1;
use crate::l2::L2;
use crate::stats::{CacheStats, L2State, L2Stats, PerKind};
use crate::{CacheError, CacheKey, CacheSettings, Cacheable, Kind, L1Settings, Tier};

/// How often the background task copies the stats into the `metrics`
/// recorder. Publishing from a snapshot keeps the hot path free of shared
/// counters; Prometheus scrapes every few seconds, so a second of lag is moot.
const METRICS_INTERVAL: Duration = Duration::from_secs(1);

/// How long `clear` waits for Redis writes already in flight.
const CLEAR_FLUSH_WAIT: Duration = Duration::from_secs(2);

/// The two-tier cache. Cloning is cheap (an `Arc`), and clones share state.
///
/// Nothing here fails because Redis is slow or down: L2 problems turn reads
/// into misses and writes into no-ops, and are visible in [`Cache::stats`].
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    settings: CacheSettings,
    l1: L1,
    l2: Option<Arc<L2>>,
    flights: Flights,
}

/// What `clear` removed; `None` for a tier it did not touch (not asked for,
/// or L2 not configured).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClearReport {
    pub kinds: Vec<Kind>,
    pub l1_removed: Option<u64>,
    pub l2_removed: Option<u64>,
}

impl Cache {
    /// Builds both tiers. Fails only for invalid settings: when Redis is
    /// unreachable the cache starts with L1 alone and connects in the
    /// background (see [`Cache::l2_state`]). Must run inside a Tokio runtime.
    pub async fn new(settings: CacheSettings) -> Result<Self, CacheError> {
        settings.validate()?;
        let l2 = match &settings.l2.url {
            Some(url) => Some(L2::start(&settings.l2, url)?),
            None => None,
        };
        Ok(Self::build(settings, l2))
    }

    /// An L1-only cache, usable without a runtime (tests, tools, or a
    /// deployment without Redis).
    pub fn l1_only(l1: L1Settings) -> Result<Self, CacheError> {
        let settings = CacheSettings { l1, ..CacheSettings::default() };
        settings.validate()?;
        Ok(Self::build(settings, None))
    }

    fn build(settings: CacheSettings, l2: Option<Arc<L2>>) -> Self {
        let inner = Arc::new(Inner { l1: L1::new(&settings.l1), l2, flights: Flights::default(), settings });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(publish_metrics_periodically(Arc::downgrade(&inner)));
        }
        Self { inner }
    }

    /// The settings the cache was built with, with L1's as they are now.
    pub fn settings(&self) -> CacheSettings {
        CacheSettings { l1: self.inner.l1.settings(), ..self.inner.settings.clone() }
    }

    /// Empties L1 now (every kind); returns how many entries left. L2 is
    /// untouched.
    pub fn clear_l1(&self) -> u64 {
        self.inner.l1.clear(None)
    }

    /// Resizes L1 or changes its TTLs at run time (validated first). Entries
    /// are carried over; those beyond the new bounds are evicted.
    pub fn reconfigure_l1(&self, l1: L1Settings) -> Result<(), CacheError> {
        l1.validate()?;
        self.inner.l1.reconfigure(&l1);
        tracing::info!(max_bytes = l1.max_bytes, max_entries = l1.max_entries, "L1 cache reconfigured");
        Ok(())
    }

    /// L1 only, synchronous: a hash look-up and a downcast.
    #[inline]
    pub fn get_l1<T: Cacheable>(&self, kind: Kind, key: CacheKey) -> Option<Arc<T>> {
        self.inner.l1.get(kind, key.0, true)
    }

    /// L1, then L2 (a hit there is promoted into L1), else `None`.
    pub async fn get<T: Cacheable>(&self, kind: Kind, key: CacheKey) -> Option<Arc<T>> {
        if let Some(v) = self.inner.l1.get(kind, key.0, true) {
            return Some(v);
        }
        self.get_l2(kind, key).await
    }

    async fn get_l2<T: Cacheable>(&self, kind: Kind, key: CacheKey) -> Option<Arc<T>> {
        let l2 = self.inner.l2.as_ref()?;
        let value = Arc::new(l2.get::<T>(kind, key.0).await?);
        self.inner.l1.insert(kind, key.0, Arc::clone(&value));
        Some(value)
    }

    /// Like [`Cache::get`] for many keys of one kind, with the L1 misses
    /// fetched from L2 in a single MGET round trip. One slot per key.
    pub async fn get_many<T: Cacheable>(&self, kind: Kind, keys: &[CacheKey]) -> Vec<Option<Arc<T>>> {
        let l1 = &self.inner.l1;
        let mut found: Vec<Option<Arc<T>>> = keys.iter().map(|k| l1.get(kind, k.0, true)).collect();
        let Some(l2) = &self.inner.l2 else { return found };
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
        if missing.is_empty() {
            return found;
        }
        let wanted: Vec<u128> = missing.iter().map(|&i| keys[i].0).collect();
        for (i, value) in missing.into_iter().zip(l2.get_many::<T>(kind, &wanted).await) {
            if let Some(value) = value {
                let value = Arc::new(value);
                l1.insert(kind, keys[i].0, Arc::clone(&value));
                found[i] = Some(value);
            }
        }
        found
    }

    /// Stores a value: into L1 now, into L2 in the background.
    pub fn put<T: Cacheable>(&self, kind: Kind, key: CacheKey, value: Arc<T>) {
        match &self.inner.l2 {
            Some(l2) => {
                self.inner.l1.insert(kind, key.0, Arc::clone(&value));
                l2.spawn_write(kind, key.0, value);
            }
            None => self.inner.l1.insert(kind, key.0, value),
        }
    }

    /// Stores a value in L1 only: for answers a deployment keeps in-process
    /// (cheap to recompute, or not worth the network and Redis memory).
    pub fn put_l1<T: Cacheable>(&self, kind: Kind, key: CacheKey, value: Arc<T>) {
        self.inner.l1.insert(kind, key.0, value);
    }

    /// Returns the cached value for `key`, or runs `f`, caches an `Ok` value
    /// and returns it. Errors are passed through and never cached.
    ///
    /// Concurrent callers missing on the same key share one computation (and
    /// one L2 look-up): the first runs its `f`, the others wait for its value.
    /// If that computation fails or its caller is cancelled, each waiting
    /// caller runs its own `f` (so every caller sees its own error).
    pub async fn memoize<T, E, F, Fut>(&self, kind: Kind, key: CacheKey, f: F) -> Result<Arc<T>, E>
    where
        T: Cacheable,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let inner = &*self.inner;
        if let Some(v) = inner.l1.get(kind, key.0, true) {
            return Ok(v);
        }
        match inner.flights.join((kind, key.0)) {
            Role::Follower(rx) => {
                if let Some(v) = flight::wait(rx).await.and_then(|v| v.downcast::<T>().ok()) {
                    return Ok(v);
                }
                let value = Arc::new(f().await?);
                self.put(kind, key, Arc::clone(&value));
                Ok(value)
            }
            Role::Leader(leader) => {
                // A flight that ended between our miss and `join` left its value in L1.
                let cached = match inner.l1.get::<T>(kind, key.0, false) {
                    Some(v) => Some(v),
                    None => self.get_l2::<T>(kind, key).await,
                };
                if let Some(v) = cached {
                    leader.finish(v.clone());
                    return Ok(v);
                }
                let value = Arc::new(f().await?);
                self.put(kind, key, Arc::clone(&value));
                leader.finish(value.clone());
                Ok(value)
            }
        }
    }

    /// Removes entries of `kind` (all kinds when `None`) from `tier` (both
    /// when `None`). L1 is cleared first; an L2 failure is returned as an
    /// error after L1 was cleared. Pending L2 writes are awaited first so they
    /// cannot land after the clear.
    pub async fn clear(&self, tier: Option<Tier>, kind: Option<Kind>) -> Result<ClearReport, CacheError> {
        let kinds: Vec<Kind> = kind.map_or_else(|| Kind::ALL.to_vec(), |k| vec![k]);
        let l1_removed = (tier != Some(Tier::L2)).then(|| self.inner.l1.clear(kind));
        let mut l2_removed = None;
        if tier != Some(Tier::L1) {
            if let Some(l2) = &self.inner.l2 {
                // Writes in flight could land after the clear; wait for them,
                // but not forever under steady traffic.
                let _ = tokio::time::timeout(CLEAR_FLUSH_WAIT, l2.flush_writes()).await;
                let mut removed = 0;
                for &k in &kinds {
                    removed += l2.clear(k).await?;
                }
                l2_removed = Some(removed);
            }
        }
        tracing::info!(?tier, ?kind, ?l1_removed, ?l2_removed, "cache cleared");
        Ok(ClearReport { kinds, l1_removed, l2_removed })
    }

    /// Waits for every background L2 write issued so far (tests, shutdown).
    pub async fn flush_writes(&self) {
        if let Some(l2) = &self.inner.l2 {
            l2.flush_writes().await;
        }
    }

    /// Applies moka's deferred maintenance (evictions, expiry, listener
    /// calls), after which L1 entry and byte counts are exact.
    pub fn run_pending_tasks(&self) {
        self.inner.l1.run_pending_tasks();
    }

    pub fn l2_state(&self) -> L2State {
        self.inner.l2.as_ref().map_or(L2State::Disabled, |l2| l2.state())
    }

    pub fn stats(&self) -> CacheStats {
        let l2 = match &self.inner.l2 {
            Some(l2) => l2.stats(),
            None => L2Stats::new(L2State::Disabled, 0, Default::default(), PerKind::default()),
        };
        CacheStats { l1: self.inner.l1.stats(), l2 }
    }

    /// Copies the current stats into the `metrics` recorder now (a background
    /// task also does so every second when a Tokio runtime is available).
    pub fn publish_metrics(&self) {
        crate::metrics::publish(&self.stats());
    }
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache").field("settings", &self.inner.settings).field("l2_state", &self.l2_state()).finish()
    }
}

async fn publish_metrics_periodically(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(METRICS_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        Cache { inner }.publish_metrics();
    }
}
