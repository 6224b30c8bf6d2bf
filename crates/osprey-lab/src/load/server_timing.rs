//! `Server-Timing` (W3C): when the target reports where its time went
//! (`queue;dur=1.2, tokenize;dur=0.3, inference;dur=4.0, total;dur=5.8`),
//! the client's latency is split into network, queueing and service time.
//!
//! - server time: the `total` metric when present, else the sum of all `dur`s;
//! - queueing: the `queue` metric (0 when absent);
//! - service: server time minus queueing;
//! - network: the client's raw response time minus server time (transport,
//!   HTTP framing and client overhead).

use super::hist::{self, Hist};

/// Distinct metric names tracked; further names are counted, not recorded.
pub const MAX_METRICS: usize = 16;

/// Parses a header value into `(name, dur in ms)` pairs; entries without `dur` are skipped.
pub fn parse(value: &str) -> impl Iterator<Item = (&str, f64)> {
    value.split(',').filter_map(|entry| {
        let mut parts = entry.split(';');
        let name = parts.next()?.trim();
        if name.is_empty() {
            return None;
        }
        let dur = parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("dur").then(|| v.trim().trim_matches('"').parse::<f64>().ok()).flatten()
        })?;
        (dur.is_finite() && dur >= 0.0).then_some((name, dur))
    })
}

/// Per-metric histograms and the latency breakdown.
#[derive(Debug, Clone)]
pub struct ServerTimingStats {
    /// Responses that carried at least one parseable metric.
    pub responses: u64,
    pub metrics: Vec<(String, Hist)>,
    /// Metric samples not recorded because [`MAX_METRICS`] names were already tracked.
    pub untracked: u64,
    pub network: Hist,
    pub queueing: Hist,
    pub service: Hist,
}

impl Default for ServerTimingStats {
    fn default() -> Self {
        ServerTimingStats {
            responses: 0,
            metrics: Vec::new(),
            untracked: 0,
            network: hist::precise(),
            queueing: hist::precise(),
            service: hist::precise(),
        }
    }
}

fn us(ms: f64) -> u64 {
    (ms * 1000.0).round() as u64
}

impl ServerTimingStats {
    /// Records one response's header against its raw client latency.
    pub fn record(&mut self, header: &str, client_us: u64) {
        let (mut sum, mut total, mut queue, mut any) = (0.0, None, 0.0, false);
        for (name, dur) in parse(header) {
            any = true;
            sum += dur;
            if name.eq_ignore_ascii_case("total") {
                total = Some(dur);
            } else if name.eq_ignore_ascii_case("queue") {
                queue = dur;
            }
            let tracked = self.metrics.len();
            match self.metrics.iter_mut().find(|(n, _)| n == name) {
                Some((_, h)) => hist::record(h, us(dur)),
                None if tracked < MAX_METRICS => {
                    let mut h = hist::precise();
                    hist::record(&mut h, us(dur));
                    self.metrics.push((name.to_string(), h));
                }
                None => self.untracked += 1,
            }
        }
        if !any {
            return;
        }
        self.responses += 1;
        let server = us(total.unwrap_or(sum));
        let queue = us(queue).min(server);
        hist::record(&mut self.queueing, queue);
        hist::record(&mut self.service, server - queue);
        hist::record(&mut self.network, client_us.saturating_sub(server));
    }

    pub fn merge(&mut self, other: &ServerTimingStats) {
        self.responses += other.responses;
        self.untracked += other.untracked;
        for (name, h) in &other.metrics {
            match self.metrics.iter_mut().find(|(n, _)| n == name) {
                Some((_, mine)) => hist::add(mine, h),
                None => self.metrics.push((name.clone(), h.clone())),
            }
        }
        hist::add(&mut self.network, &other.network);
        hist::add(&mut self.queueing, &other.queueing);
        hist::add(&mut self.service, &other.service);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_osprey_header() {
        let got: Vec<_> =
            parse("queue;dur=1.2, tokenize;dur=0.3, inference;dur=4.0;desc=\"fwd\", total;dur=5.8, miss").collect();
        assert_eq!(got, [("queue", 1.2), ("tokenize", 0.3), ("inference", 4.0), ("total", 5.8)]);
        assert_eq!(parse("db;desc=x;dur=\"2.5\"").collect::<Vec<_>>(), [("db", 2.5)]);
        assert_eq!(parse("").count(), 0);
    }

    #[test]
    fn splits_client_latency() {
        let mut s = ServerTimingStats::default();
        s.record("queue;dur=1.2, tokenize;dur=0.3, inference;dur=4.0, total;dur=5.8", 7_000);
        assert_eq!(s.responses, 1);
        assert_eq!(s.metrics.len(), 4);
        assert!((1_195..=1_205).contains(&s.queueing.max()));
        assert!((4_590..=4_610).contains(&s.service.max()), "{}", s.service.max());
        assert!((1_195..=1_205).contains(&s.network.max()), "{}", s.network.max());
        // Without `total`, the sum is the server time.
        let mut s = ServerTimingStats::default();
        s.record("app;dur=2", 3_000);
        assert!((1_995..=2_005).contains(&s.service.max()));
        s.record("nothing-here", 3_000);
        assert_eq!(s.responses, 1);
    }
}
