//! The circuit breaker in front of Redis.
//!
//! While Redis is down or slow, every request would otherwise wait out a
//! command timeout before falling back to its own computation. After
//! `failures` consecutive failures the breaker opens: L2 calls are skipped at
//! no cost for `cooldown`. Then it is half-open: exactly one call (the probe)
//! goes through and its outcome closes the breaker or opens it for another
//! cooldown; other calls keep skipping while the probe is in flight.
//!
//! The clock is a parameter (`now`) so the state machine is tested without
//! sleeping. Outcomes of calls admitted before the breaker opened are ignored
//! once it has: only the probe decides how it ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Closed: go ahead.
    Call,
    /// Half-open: go ahead; the outcome decides the breaker's state.
    Probe,
    /// Open (or a probe is in flight): do not touch Redis.
    Skip,
}

/// A change worth logging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    None,
    Opened,
    Closed,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Instant, since: SystemTime },
    HalfOpen { since: SystemTime },
}

/// A read-only view for stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Snapshot {
    Closed,
    Open { since: SystemTime, retry_in: Duration },
    HalfOpen,
}

pub(crate) struct Breaker {
    threshold: u32,
    cooldown: Duration,
    phase: Mutex<Phase>,
    /// Mirrors "closed with no recent failure", so the common case admits and
    /// records success without taking the lock.
    healthy: AtomicBool,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            phase: Mutex::new(Phase::Closed { failures: 0 }),
            healthy: AtomicBool::new(true),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        // A panic while holding this lock cannot leave the phase half-written
        // (every update is one assignment), so a poisoned lock is still usable.
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn admit(&self, now: Instant) -> Admit {
        if self.healthy.load(Ordering::Acquire) {
            return Admit::Call;
        }
        let mut phase = self.lock();
        match *phase {
            Phase::Closed { .. } => Admit::Call,
            Phase::Open { until, since } if now >= until => {
                *phase = Phase::HalfOpen { since };
                Admit::Probe
            }
            Phase::Open { .. } | Phase::HalfOpen { .. } => Admit::Skip,
        }
    }

    /// Whether `admit` would answer `Skip` now, without changing anything:
    /// lets a caller avoid queueing work that could not be sent.
    pub fn would_skip(&self, now: Instant) -> bool {
        if self.healthy.load(Ordering::Acquire) {
            return false;
        }
        match *self.lock() {
            Phase::Closed { .. } => false,
            Phase::Open { until, .. } => now < until,
            Phase::HalfOpen { .. } => true,
        }
    }

    pub fn success(&self, admit: Admit) -> Transition {
        if admit == Admit::Call && self.healthy.load(Ordering::Acquire) {
            return Transition::None;
        }
        let mut phase = self.lock();
        match (*phase, admit) {
            (Phase::Closed { .. }, Admit::Call) => {
                *phase = Phase::Closed { failures: 0 };
                self.healthy.store(true, Ordering::Release);
                Transition::None
            }
            (Phase::HalfOpen { .. }, Admit::Probe) => {
                *phase = Phase::Closed { failures: 0 };
                self.healthy.store(true, Ordering::Release);
                Transition::Closed
            }
            _ => Transition::None,
        }
    }

    pub fn failure(&self, admit: Admit, now: Instant) -> Transition {
        let mut phase = self.lock();
        match (*phase, admit) {
            (Phase::Closed { failures }, Admit::Call) => {
                let failures = failures + 1;
                if failures >= self.threshold {
                    *phase = Phase::Open { until: now + self.cooldown, since: SystemTime::now() };
                    self.healthy.store(false, Ordering::Release);
                    Transition::Opened
                } else {
                    *phase = Phase::Closed { failures };
                    self.healthy.store(false, Ordering::Release);
                    Transition::None
                }
            }
            (Phase::HalfOpen { since }, Admit::Probe) => {
                *phase = Phase::Open { until: now + self.cooldown, since };
                Transition::None
            }
            _ => Transition::None,
        }
    }

    /// The probe was cancelled before it learned anything: let the next call
    /// probe instead of waiting out another cooldown.
    pub fn abandon(&self, admit: Admit, now: Instant) {
        if admit != Admit::Probe {
            return;
        }
        let mut phase = self.lock();
        if let Phase::HalfOpen { since } = *phase {
            *phase = Phase::Open { until: now, since };
        }
    }

    pub fn snapshot(&self, now: Instant) -> Snapshot {
        match *self.lock() {
            Phase::Closed { .. } => Snapshot::Closed,
            Phase::Open { until, since } => Snapshot::Open { since, retry_in: until.saturating_duration_since(now) },
            Phase::HalfOpen { .. } => Snapshot::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(5);

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = Breaker::new(3, COOL);
        let t0 = Instant::now();
        assert_eq!(b.failure(b.admit(t0), t0), Transition::None);
        assert_eq!(b.failure(b.admit(t0), t0), Transition::None);
        assert_eq!(b.success(b.admit(t0)), Transition::None, "a success resets the run");
        assert_eq!(b.failure(b.admit(t0), t0), Transition::None);
        assert_eq!(b.failure(b.admit(t0), t0), Transition::None);
        assert_eq!(b.snapshot(t0), Snapshot::Closed);
        assert_eq!(b.failure(b.admit(t0), t0), Transition::Opened);
        assert!(matches!(b.snapshot(t0), Snapshot::Open { retry_in, .. } if retry_in == COOL));
        assert_eq!(b.admit(t0 + COOL / 2), Admit::Skip);
        assert!(b.would_skip(t0 + COOL / 2));
        assert!(!b.would_skip(t0 + COOL), "cooldown over: a probe may go");
        assert!(matches!(b.snapshot(t0 + COOL), Snapshot::Open { .. }), "would_skip changes nothing");
    }

    #[test]
    fn half_open_lets_one_probe_decide() {
        let b = Breaker::new(1, COOL);
        let t0 = Instant::now();
        assert_eq!(b.failure(b.admit(t0), t0), Transition::Opened);
        let t1 = t0 + COOL;
        assert_eq!(b.admit(t1), Admit::Probe);
        assert_eq!(b.snapshot(t1), Snapshot::HalfOpen);
        assert!(b.would_skip(t1));
        assert_eq!(b.admit(t1), Admit::Skip, "one probe at a time");
        // The probe fails: another full cooldown from the probe's end.
        let t2 = t1 + Duration::from_millis(30);
        assert_eq!(b.failure(Admit::Probe, t2), Transition::None);
        assert_eq!(b.admit(t2 + COOL - Duration::from_millis(1)), Admit::Skip);
        let t3 = t2 + COOL;
        assert_eq!(b.admit(t3), Admit::Probe);
        assert_eq!(b.success(Admit::Probe), Transition::Closed);
        assert_eq!(b.admit(t3), Admit::Call);
        assert_eq!(b.snapshot(t3), Snapshot::Closed);
    }

    #[test]
    fn stale_outcomes_and_abandoned_probes() {
        let b = Breaker::new(1, COOL);
        let t0 = Instant::now();
        let early = b.admit(t0);
        assert_eq!(b.failure(b.admit(t0), t0), Transition::Opened);
        // A call admitted before the breaker opened neither closes nor extends it.
        assert_eq!(b.success(early), Transition::None);
        assert_eq!(b.failure(early, t0 + COOL), Transition::None);
        assert_eq!(b.admit(t0 + COOL), Admit::Probe);
        b.abandon(Admit::Probe, t0 + COOL);
        assert_eq!(b.admit(t0 + COOL), Admit::Probe, "a cancelled probe is replaced at once");
    }
}
