//! Exponential backoff with jitter, shared by every source.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Delays between retries of a failing source.
///
/// After `n` consecutive failures the ceiling is `min(cap, base · 2ⁿ)` and the
/// delay is drawn uniformly from `[base, ceiling]`: full jitter, floored at
/// `base` so a failing server is never retried at once. The first delay is
/// exactly `base`. [`reset`](Backoff::reset) after a success starts over.
///
/// The jitter comes from a small seeded generator; [`Backoff::with_seed`]
/// makes the sequence reproducible in tests.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
    rng: SplitMix64,
}

impl Backoff {
    /// A backoff seeded from the process's random hasher keys.
    pub fn new(base: Duration, cap: Duration) -> Self {
        let seed = std::collections::hash_map::RandomState::new().build_hasher().finish();
        Self::with_seed(base, cap, seed)
    }

    /// A backoff whose jitter sequence is fixed by `seed`. A `cap` below `base` is raised to `base`.
    pub fn with_seed(base: Duration, cap: Duration, seed: u64) -> Self {
        Backoff { base, cap: cap.max(base), failures: 0, rng: SplitMix64(seed) }
    }

    /// The largest delay [`next_delay`](Backoff::next_delay) can return now.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32 << self.failures.min(31);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before the next attempt; counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let span = ceiling.saturating_sub(self.base);
        let jitter = Duration::try_from_secs_f64(span.as_secs_f64() * self.rng.next_unit()).unwrap_or(span);
        self.base.saturating_add(jitter.min(span))
    }

    /// Consecutive failures counted since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forget the failures (call after a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// SplitMix64: tiny, fast, and good enough to spread retries.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(2);
    const CAP: Duration = Duration::from_secs(60);

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let mut backoff = Backoff::with_seed(BASE, CAP, 7);
        let ceilings: Vec<u64> = (0..8)
            .map(|_| {
                let ceiling = backoff.ceiling();
                let delay = backoff.next_delay();
                assert!(delay >= BASE && delay <= ceiling, "{delay:?} outside [{BASE:?}, {ceiling:?}]");
                ceiling.as_secs()
            })
            .collect();
        assert_eq!(ceilings, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff.failures(), 8);
    }

    #[test]
    fn first_delay_is_the_base_and_reset_starts_over() {
        let mut backoff = Backoff::with_seed(BASE, CAP, 1);
        assert_eq!(backoff.next_delay(), BASE);
        for _ in 0..10 {
            backoff.next_delay();
        }
        assert_eq!(backoff.ceiling(), CAP);
        backoff.reset();
        assert_eq!(backoff.failures(), 0);
        assert_eq!(backoff.ceiling(), BASE);
        assert_eq!(backoff.next_delay(), BASE);
    }

    #[test]
    fn the_seed_fixes_the_jitter_and_the_jitter_spreads() {
        let run = |seed| {
            let mut backoff = Backoff::with_seed(BASE, CAP, seed);
            (0..12).map(|_| backoff.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        // At the cap the delays are spread over [base, cap], not pinned to it.
        let capped = &run(42)[6..];
        assert!(capped.iter().any(|d| *d < CAP - Duration::from_secs(5)), "{capped:?}");
    }

    #[test]
    fn survives_huge_failure_counts_and_a_cap_below_the_base() {
        let mut backoff = Backoff::with_seed(BASE, Duration::from_secs(1), 3);
        assert_eq!(backoff.ceiling(), BASE);
        for _ in 0..100 {
            assert_eq!(backoff.next_delay(), BASE);
        }
        let mut long = Backoff::with_seed(Duration::from_secs(u64::MAX / 4), Duration::MAX, 3);
        for _ in 0..40 {
            long.next_delay();
        }
        assert_eq!(long.ceiling(), Duration::MAX);
    }
}
