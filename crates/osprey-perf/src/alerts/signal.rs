//! Recent samples of one signal and their average over a window.
//!
//! Samples are kept for the longest window of any enabled rule reading the
//! signal (and at most [`MAX_SAMPLES`], in case `observe` is called far more
//! often than once a second), so memory is bounded by the rules.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};

/// Hard cap on samples per signal: a day at one per second.
const MAX_SAMPLES: usize = 86_400;

#[derive(Debug)]
pub(crate) struct SignalWindow {
    samples: VecDeque<(DateTime<Utc>, f64)>,
    retention: TimeDelta,
}

impl SignalWindow {
    pub(crate) fn new(retention: TimeDelta) -> Self {
        Self { samples: VecDeque::new(), retention }
    }

    pub(crate) fn set_retention(&mut self, retention: TimeDelta) {
        self.retention = retention;
    }

    /// Adds a sample taken at `at` and forgets what no window reaches.
    pub(crate) fn push(&mut self, at: DateTime<Utc>, value: f64) {
        self.samples.push_back((at, value));
        self.prune(at);
    }

    /// Forgets samples older than the retention, as seen from `at`.
    pub(crate) fn prune(&mut self, at: DateTime<Utc>) {
        let oldest = at - self.retention;
        while self.samples.front().is_some_and(|&(t, _)| t <= oldest) || self.samples.len() > MAX_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// Mean of the samples in `(at - window, at]`; `None` when there are none.
    pub(crate) fn average(&self, at: DateTime<Utc>, window: TimeDelta) -> Option<f64> {
        let start = at - window;
        let (sum, n) = self
            .samples
            .iter()
            .rev()
            .skip_while(|&&(t, _)| t > at)
            .take_while(|&&(t, _)| t > start)
            .fold((0.0, 0u32), |(sum, n), &(_, v)| (sum + v, n + 1));
        (n > 0).then(|| sum / f64::from(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_over_the_window_and_forgets_old_samples() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let s = TimeDelta::seconds;
        let mut w = SignalWindow::new(s(10));
        for i in 0..20 {
            w.push(t0 + s(i), i as f64);
        }
        assert_eq!(w.samples.len(), 10, "samples 10..=19 are within 10 s of 19");
        assert_eq!(w.average(t0 + s(19), s(3)), Some(18.0), "17, 18, 19");
        assert_eq!(w.average(t0 + s(18), s(2)), Some(17.5), "samples after `at` are ignored");
        assert_eq!(w.average(t0 + s(40), s(10)), None);
    }
}
