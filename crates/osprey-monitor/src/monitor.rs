//! [`ResourceMonitor`]: a cheap clonable handle over the sampler, the
//! history rings and the cost counters.
//!
//! Sampling is synchronous `/proc` reading, a few hundred microseconds of
//! system calls. The background task runs each sample on tokio's blocking
//! pool rather than on a runtime worker, because `statvfs` on a network
//! filesystem can stall; the task awaits the sample before waiting for the
//! next tick, so a stalled sample delays the series instead of piling up
//! threads. Missed ticks are skipped, not caught up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::history::History;
use crate::metrics::{self, Publisher};
use crate::sample::{MonitorCost, ResourceSample};
use crate::{Collector, MonitorSettings, Resolution};

/// Shortest period the task uses, whatever the (unvalidated) settings say.
const MIN_PERIOD: Duration = Duration::from_millis(1);

/// Samples host and process resources; clones share one sampler and history.
#[derive(Clone)]
pub struct ResourceMonitor {
    inner: Arc<Inner>,
}

struct Inner {
    settings: MonitorSettings,
    /// Held for a whole sample, so samples enter the history in order.
    sampler: Mutex<Sampler>,
    history: Mutex<History>,
    started: Instant,
    samples: AtomicU64,
    busy_ns: AtomicU64,
    max_ns: AtomicU64,
    /// Bumped by `stop`; each task exits when it differs from its own copy.
    generation: watch::Sender<u64>,
}

struct Sampler {
    collector: Collector,
    publisher: Publisher,
}

impl ResourceMonitor {
    /// Builds the sampler and reads the CPU baseline the first sample
    /// compares against. Does not start sampling; see [`Self::spawn`].
    /// Settings should have passed [`MonitorSettings::validate`]; if not,
    /// capacities below 1 and intervals below 1 ms are raised to those.
    pub fn new(settings: MonitorSettings) -> Self {
        let sampler = Sampler { collector: Collector::new(&settings), publisher: Publisher::default() };
        let history = History::new(&settings);
        let (generation, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                settings,
                sampler: Mutex::new(sampler),
                history: Mutex::new(history),
                started: Instant::now(),
                samples: AtomicU64::new(0),
                busy_ns: AtomicU64::new(0),
                max_ns: AtomicU64::new(0),
                generation,
            }),
        }
    }

    /// Spawns the sampling task on the current tokio runtime (panics outside
    /// one): a sample at once, then one per `interval`. It runs until
    /// [`Self::stop`], until the handle is aborted, or until every clone of
    /// the monitor is dropped; dropping the handle alone detaches it, as with
    /// any tokio task. With `enabled = false` the task ends at once.
    pub fn spawn(&self) -> JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        let mut generation = self.inner.generation.subscribe();
        let mine = *generation.borrow_and_update();
        let enabled = self.inner.settings.enabled;
        let period = self.inner.settings.interval.max(MIN_PERIOD);
        tokio::spawn(async move {
            if !enabled {
                tracing::debug!("resource monitor disabled");
                return;
            }
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    changed = generation.changed() => {
                        if changed.is_err() || *generation.borrow() != mine {
                            break;
                        }
                        continue;
                    }
                }
                if !sample_on_blocking_pool(&weak).await {
                    break;
                }
            }
            tracing::debug!("resource monitor stopped");
        })
    }

    /// Stops every task started by [`Self::spawn`] so far; a later `spawn`
    /// starts afresh.
    pub fn stop(&self) {
        self.inner.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Takes one sample immediately, pushes it to the history and publishes
    /// its metrics. Rates compare with the previous sample (the first has
    /// none); CPU percentages compare with the previous sample or, for the
    /// first, with the baseline read in [`Self::new`].
    pub fn sample_now(&self) -> ResourceSample {
        let started = Instant::now();
        let mut sampler = lock(&self.inner.sampler);
        let sample = sampler.collector.collect();
        lock(&self.inner.history).push(sample.clone());
        sampler.publisher.publish(&sample);
        drop(sampler);
        let took = started.elapsed();
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.inner.samples.fetch_add(1, Ordering::Relaxed);
        self.inner.busy_ns.fetch_add(nanos, Ordering::Relaxed);
        self.inner.max_ns.fetch_max(nanos, Ordering::Relaxed);
        metrics::publish_cost(took.as_secs_f64(), &self.cost());
        sample
    }

    /// The newest sample, if any has been taken.
    pub fn latest(&self) -> Option<ResourceSample> {
        lock(&self.inner.history).latest().cloned()
    }

    /// History at one resolution, oldest first, optionally only samples at
    /// or after `since_ms` (unix milliseconds).
    pub fn history(&self, resolution: Resolution, since_ms: Option<i64>) -> Vec<ResourceSample> {
        lock(&self.inner.history).query(resolution, since_ms)
    }

    /// What sampling has cost since [`Self::new`].
    pub fn cost(&self) -> MonitorCost {
        let samples = self.inner.samples.load(Ordering::Relaxed);
        let busy = self.inner.busy_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let elapsed = self.inner.started.elapsed().as_secs_f64();
        MonitorCost {
            samples,
            mean_sample_us: if samples == 0 { 0.0 } else { busy * 1e6 / samples as f64 },
            max_sample_us: self.inner.max_ns.load(Ordering::Relaxed) as f64 / 1e3,
            elapsed_seconds: elapsed,
            cpu_share_percent: if elapsed > 0.0 { busy / elapsed * 100.0 } else { 0.0 },
        }
    }

    pub fn settings(&self) -> &MonitorSettings {
        &self.inner.settings
    }
}

impl std::fmt::Debug for ResourceMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceMonitor").field("settings", &self.inner.settings).finish_non_exhaustive()
    }
}

/// One sample off the runtime's workers; false once the monitor is gone.
async fn sample_on_blocking_pool(weak: &Weak<Inner>) -> bool {
    let Some(inner) = weak.upgrade() else { return false };
    let monitor = ResourceMonitor { inner };
    if let Err(error) = tokio::task::spawn_blocking(move || drop(monitor.sample_now())).await {
        tracing::warn!(%error, "resource sample failed");
    }
    true
}

/// A poisoned lock only means a sample panicked half-way; the data is still
/// usable (at worst one sample is missing).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
