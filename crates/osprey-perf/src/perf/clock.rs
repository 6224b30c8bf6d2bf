//! Where "now" comes from: whole seconds, monotonic, cheap to read on the
//! recording path.
//!
//! Reading `Instant::now()` costs 20–45 ns depending on the machine (over
//! 40 ns on virtualised hosts), which alone would eat most of the budget of
//! [`crate::Op::record`]. So recording reads a *coarse* clock instead: one
//! process-wide atomic holding the current second, stored by a background
//! thread (`osprey-perf-clock`, started with the first [`crate::PerfMonitor`])
//! that sleeps until each second boundary. Reads, `tick` and the [`Timer`]
//! (which reads `Instant::now()` anyway to measure) use the precise clock.
//!
//! The coarse second lags the precise one by the thread's wake-up delay
//! (well under a millisecond normally); an observation made in that gap is
//! counted in the previous second. If the thread could not be started the
//! recording path falls back to the precise clock. If it is starved for
//! seconds, observations are counted in a slot of a later second (see
//! `ring`), never lost.
//!
//! [`Timer`]: crate::Timer

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, OnceLock};
use std::time::{Duration, Instant};

/// The coarse second before the clock thread has stored one.
const NOT_RUNNING: u64 = u64::MAX;

/// The process-wide monotonic clock.
pub(crate) struct Coarse {
    base: Instant,
    /// Whole seconds since `base`, as of the last wake-up of the clock thread.
    secs: AtomicU64,
}

impl Coarse {
    fn get() -> &'static Coarse {
        static COARSE: OnceLock<Coarse> = OnceLock::new();
        static START: Once = Once::new();
        let coarse = COARSE.get_or_init(|| Coarse { base: Instant::now(), secs: AtomicU64::new(NOT_RUNNING) });
        START.call_once(|| {
            let spawned = std::thread::Builder::new().name("osprey-perf-clock".into()).spawn(move || coarse.run());
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the coarse clock thread; recording reads the precise clock");
            }
        });
        coarse
    }

    fn run(&self) {
        loop {
            let elapsed = self.base.elapsed();
            self.secs.store(elapsed.as_secs(), Ordering::Relaxed);
            // Wake just after the next boundary (sleep never returns early).
            std::thread::sleep(Duration::from_secs(1) - Duration::from_nanos(u64::from(elapsed.subsec_nanos())));
        }
    }

    fn precise(&self) -> u64 {
        self.base.elapsed().as_secs()
    }
}

/// A monitor's clock.
#[derive(Clone)]
pub(crate) enum Clock {
    /// Whole seconds since the process-wide base.
    Monotonic(&'static Coarse),
    /// Injected (tests, or a caller that wants unix seconds); read on every
    /// recording too.
    Custom(Arc<dyn Fn() -> u64 + Send + Sync>),
}

impl Clock {
    pub(crate) fn monotonic() -> Self {
        Clock::Monotonic(Coarse::get())
    }

    /// The current second, precisely (reads, `tick`, registration).
    pub(crate) fn now(&self) -> u64 {
        match self {
            Clock::Monotonic(c) => c.precise(),
            Clock::Custom(f) => f(),
        }
    }

    /// The current second for recording: the coarse clock.
    #[inline]
    pub(crate) fn recording_second(&self) -> u64 {
        match self {
            Clock::Monotonic(c) => match c.secs.load(Ordering::Relaxed) {
                NOT_RUNNING => c.precise(),
                secs => secs,
            },
            Clock::Custom(f) => f(),
        }
    }

    /// The second of `instant`, which the caller read anyway.
    #[inline]
    pub(crate) fn second_of(&self, instant: Instant) -> u64 {
        match self {
            Clock::Monotonic(c) => instant.saturating_duration_since(c.base).as_secs(),
            Clock::Custom(f) => f(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_clock_trails_the_precise_one_by_at_most_a_second() {
        let clock = Clock::monotonic();
        let recording = clock.recording_second();
        let precise = clock.now();
        assert!(recording <= precise && precise - recording <= 1, "{recording} vs {precise}");
        assert_eq!(clock.second_of(Instant::now()), clock.now());
    }
}
