//! Emotion-trend rules: per rule, minute buckets of (posts, summed share of
//! the rule's emotion) over its baseline; after each batch the window's
//! mean is compared with the baseline's mean before it.
//!
//! A post counts at its creation time when that lies within the baseline
//! (and not in the future), else at the time it was processed, so a
//! backfill of old posts does not look like a sudden surge. At start the
//! buckets are seeded from the store's hourly emotion statistics for the
//! rule's topic, so a restart does not forget the baseline.

use std::collections::VecDeque;

use serde_json::{json, Value};

use super::settings::TrendRule;

const BUCKET_MS: i64 = 60_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: i64,
    posts: u64,
    share: f64,
}

/// One rule's state.
pub struct Trend {
    pub rule: TrendRule,
    buckets: VecDeque<Bucket>,
    quiet_until: i64,
}

impl Trend {
    pub fn new(rule: TrendRule) -> Self {
        Self { rule, buckets: VecDeque::new(), quiet_until: 0 }
    }

    fn window_ms(&self) -> i64 {
        self.rule.window.as_millis() as i64
    }

    fn baseline_ms(&self) -> i64 {
        self.rule.baseline.as_millis() as i64
    }

    /// Whether a post of `topic` counts for this rule.
    pub fn applies(&self, topic: Option<&str>) -> bool {
        match &self.rule.topic {
            None => true,
            Some(t) => topic == Some(t.as_str()),
        }
    }

    /// Adds `posts` posts whose shares of the emotion sum to `share`, at `at` (epoch ms).
    pub fn add(&mut self, at: i64, posts: u64, share: f64) {
        let start = at - at.rem_euclid(BUCKET_MS);
        // Buckets stay sorted; most additions land in the newest one.
        let pos = self.buckets.iter().rposition(|b| b.start <= start);
        match pos {
            Some(i) if self.buckets[i].start == start => {
                self.buckets[i].posts += posts;
                self.buckets[i].share += share;
            }
            Some(i) => self.buckets.insert(i + 1, Bucket { start, posts, share }),
            None => self.buckets.push_front(Bucket { start, posts, share }),
        }
    }

    /// When a post created at `created` (epoch ms, if known) counts, given `now`.
    pub fn placed(&self, created: Option<i64>, now: i64) -> i64 {
        match created {
            Some(c) if c <= now && c > now - self.baseline_ms() => c,
            _ => now,
        }
    }

    /// Drops what is older than window + baseline, then checks the rule; the
    /// alert body when it fires.
    pub fn check(&mut self, now: i64) -> Option<Value> {
        let (window, baseline) = (self.window_ms(), self.baseline_ms());
        while self.buckets.front().is_some_and(|b| b.start + BUCKET_MS <= now - window - baseline) {
            self.buckets.pop_front();
        }
        let (mut wp, mut ws, mut bp, mut bs) = (0u64, 0f64, 0u64, 0f64);
        for b in &self.buckets {
            if b.start >= now - window {
                wp += b.posts;
                ws += b.share;
            } else {
                bp += b.posts;
                bs += b.share;
            }
        }
        if now < self.quiet_until || wp < self.rule.min_posts || bp < self.rule.min_posts {
            return None;
        }
        let (current, usual) = (ws / wp as f64, bs / bp as f64);
        if current <= self.rule.factor * usual {
            return None;
        }
        self.quiet_until = now + self.rule.cooldown.map_or(window, |c| c.as_millis() as i64);
        Some(json!({
            "rule": self.rule.name,
            "emotion": self.rule.emotion,
            "topic": self.rule.topic,
            "window_secs": self.rule.window.as_secs(),
            "baseline_secs": self.rule.baseline.as_secs(),
            "window_posts": wp,
            "window_share": current,
            "baseline_posts": bp,
            "baseline_share": usual,
            "ratio": if usual > 0.0 { current / usual } else { f64::INFINITY },
            "factor": self.rule.factor,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rule() -> TrendRule {
        TrendRule {
            name: "anger".into(),
            emotion: "anger".into(),
            topic: Some("rust".into()),
            window: Duration::from_secs(3_600),
            baseline: Duration::from_secs(86_400),
            factor: 2.0,
            min_posts: 10,
            cooldown: None,
        }
    }

    const H: i64 = 3_600_000;

    #[test]
    fn fires_when_the_window_doubles_the_baseline_and_then_stays_quiet() {
        let now = 100 * 86_400_000;
        let mut t = Trend::new(rule());
        // 20 baseline hours at 10 % anger.
        for h in 2..22 {
            t.add(now - h * H, 10, 1.0);
        }
        // The last hour: 10 posts at 25 %.
        t.add(now - 10 * 60_000, 10, 2.5);
        let fired = t.check(now).expect("fires");
        assert_eq!(fired["window_posts"], 10);
        assert_eq!(fired["baseline_posts"], 200);
        assert!((fired["ratio"].as_f64().expect("test value") - 2.5).abs() < 1e-9);
        // Cooldown: the same state does not fire again within the window.
        assert!(t.check(now + 60_000).is_none());
    }

    #[test]
    fn does_not_fire_at_or_below_the_factor_or_with_too_few_posts() {
        let now = 100 * 86_400_000;
        let mut t = Trend::new(rule());
        for h in 2..22 {
            t.add(now - h * H, 10, 1.0);
        }
        t.add(now - 60_000, 10, 2.0); // exactly 2×: not above
        assert!(t.check(now).is_none());
        let mut few = Trend::new(rule());
        few.add(now - 5 * H, 10, 1.0);
        few.add(now - 60_000, 9, 9.0); // 9 < min_posts
        assert!(few.check(now).is_none());
    }

    #[test]
    fn old_buckets_are_dropped_and_backfilled_posts_are_placed_now() {
        let now = 100 * 86_400_000;
        let mut t = Trend::new(rule());
        t.add(now - 30 * H, 100, 100.0); // older than window + baseline
        t.add(now - 3 * H, 10, 1.0);
        t.check(now);
        assert_eq!(t.buckets.len(), 1);
        assert_eq!(t.placed(Some(now - 3 * H), now), now - 3 * H);
        assert_eq!(t.placed(Some(now - 48 * H), now), now);
        assert_eq!(t.placed(Some(now + H), now), now);
        assert_eq!(t.placed(None, now), now);
        assert!(t.applies(Some("rust")) && !t.applies(Some("go")) && !t.applies(None));
    }
}
