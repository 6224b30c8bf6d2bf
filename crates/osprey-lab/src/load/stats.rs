//! What one generator thread records, in constant memory: histograms,
//! counters, and one per-second bucket at a time.
//!
//! Each thread owns its [`ThreadStats`] outright (no locks on the request
//! path). Every second the thread hands its finished [`SecondBucket`] to the
//! collector; at the end it hands over the rest, and the collector merges
//! threads with [`ThreadStats::merge`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::hist::{self, Hist};
use super::server_timing::ServerTimingStats;

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The TCP connection (or HTTP/2 handshake) could not be made.
    Connect,
    /// No complete response within `--timeout`.
    Timeout,
    Status4xx,
    Status5xx,
    /// The response failed a scenario check (status, JSON field, body text).
    Check,
    /// The connection broke mid-exchange.
    Io,
}

/// Failed requests by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    pub connect: u64,
    pub timeout: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    pub check: u64,
    pub io: u64,
}

impl ErrorCounts {
    pub fn add(&mut self, kind: ErrorKind) {
        *match kind {
            ErrorKind::Connect => &mut self.connect,
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::Status4xx => &mut self.status_4xx,
            ErrorKind::Status5xx => &mut self.status_5xx,
            ErrorKind::Check => &mut self.check,
            ErrorKind::Io => &mut self.io,
        } += 1;
    }

    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.status_4xx + self.status_5xx + self.check + self.io
    }

    pub fn merge(&mut self, o: &ErrorCounts) {
        self.connect += o.connect;
        self.timeout += o.timeout;
        self.status_4xx += o.status_4xx;
        self.status_5xx += o.status_5xx;
        self.check += o.check;
        self.io += o.io;
    }
}

/// Bytes on the wire, counted by the connections' I/O wrapper.
#[derive(Debug, Default)]
pub struct IoCounters {
    pub read: AtomicU64,
    pub written: AtomicU64,
}

impl IoCounters {
    fn snapshot(&self) -> (u64, u64) {
        (self.written.load(Ordering::Relaxed), self.read.load(Ordering::Relaxed))
    }
}

/// Figures for one request kind.
#[derive(Debug, Clone)]
pub struct KindStats {
    /// Coordinated-omission-corrected latency: from the scheduled send time
    /// (open model), or filled in at the end by `record_correct` (closed model).
    pub latency: Hist,
    /// Latency from the moment the request was handed to the connection.
    pub raw: Hist,
    pub sent: u64,
    /// Ended with an HTTP response (any status).
    pub completed: u64,
    pub ok: u64,
    pub errors: ErrorCounts,
    /// Response body bytes.
    pub body_bytes: u64,
}

impl Default for KindStats {
    fn default() -> Self {
        KindStats {
            latency: hist::precise(),
            raw: hist::precise(),
            sent: 0,
            completed: 0,
            ok: 0,
            errors: ErrorCounts::default(),
            body_bytes: 0,
        }
    }
}

impl KindStats {
    pub fn merge(&mut self, o: &KindStats) {
        hist::add(&mut self.latency, &o.latency);
        hist::add(&mut self.raw, &o.raw);
        self.sent += o.sent;
        self.completed += o.completed;
        self.ok += o.ok;
        self.errors.merge(&o.errors);
        self.body_bytes += o.body_bytes;
    }
}

/// One second of one thread (or, after merging, of the whole run).
#[derive(Debug, Clone)]
pub struct SecondBucket {
    /// Seconds since the start.
    pub second: u32,
    pub sent: u64,
    pub completed: u64,
    pub ok: u64,
    pub errors: u64,
    pub missed: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Headline latency (corrected in the open model, raw in the closed one), coarse.
    pub latency: Hist,
}

impl SecondBucket {
    pub fn new(second: u32) -> Self {
        SecondBucket {
            second,
            sent: 0,
            completed: 0,
            ok: 0,
            errors: 0,
            missed: 0,
            bytes_sent: 0,
            bytes_received: 0,
            latency: hist::coarse(),
        }
    }

    pub fn merge(&mut self, o: &SecondBucket) {
        self.sent += o.sent;
        self.completed += o.completed;
        self.ok += o.ok;
        self.errors += o.errors;
        self.missed += o.missed;
        self.bytes_sent += o.bytes_sent;
        self.bytes_received += o.bytes_received;
        hist::add(&mut self.latency, &o.latency);
    }
}

/// Most distinct error messages kept as samples.
const MAX_ERROR_SAMPLES: usize = 8;

/// Everything one generator thread measured.
#[derive(Debug)]
pub struct ThreadStats {
    pub kinds: Vec<KindStats>,
    /// Open model: arrivals due; closed model: equals `sent`.
    pub scheduled: u64,
    /// Open model: arrivals not sent because the backlog was full.
    pub missed: u64,
    pub connections_opened: u64,
    pub server_timing: Option<Box<ServerTimingStats>>,
    /// Open model: how late the scheduler dispatched each arrival.
    pub scheduler_lag: Hist,
    /// Open model: scheduled time → handed to a connection (lag plus waiting for a free one).
    pub send_delay: Hist,
    pub error_samples: Vec<String>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    timeline: Timeline,
}

#[derive(Debug)]
struct Timeline {
    current: SecondBucket,
    ends_at: Instant,
    finished: Vec<SecondBucket>,
    io: Arc<IoCounters>,
    io_mark: (u64, u64),
}

impl ThreadStats {
    pub fn new(kinds: usize, start: Instant, io: Arc<IoCounters>) -> Self {
        ThreadStats {
            kinds: (0..kinds).map(|_| KindStats::default()).collect(),
            scheduled: 0,
            missed: 0,
            connections_opened: 0,
            server_timing: None,
            scheduler_lag: hist::precise(),
            send_delay: hist::precise(),
            error_samples: Vec::new(),
            bytes_sent: 0,
            bytes_received: 0,
            timeline: Timeline {
                current: SecondBucket::new(0),
                ends_at: start + Duration::from_secs(1),
                finished: Vec::new(),
                io,
                io_mark: (0, 0),
            },
        }
    }

    /// Closes the per-second buckets that ended before `now`.
    pub fn roll(&mut self, now: Instant) {
        let t = &mut self.timeline;
        while now >= t.ends_at {
            let next = SecondBucket::new(t.current.second + 1);
            let mut done = std::mem::replace(&mut t.current, next);
            let io = t.io.snapshot();
            done.bytes_sent = io.0 - t.io_mark.0;
            done.bytes_received = io.1 - t.io_mark.1;
            t.io_mark = io;
            t.finished.push(done);
            t.ends_at += Duration::from_secs(1);
        }
    }

    /// Takes the closed buckets (and, when `all`, the open one too).
    pub fn take_seconds(&mut self, all: bool) -> Vec<SecondBucket> {
        let t = &mut self.timeline;
        if all {
            let io = t.io.snapshot();
            let mut last = std::mem::replace(&mut t.current, SecondBucket::new(u32::MAX));
            last.bytes_sent = io.0 - t.io_mark.0;
            last.bytes_received = io.1 - t.io_mark.1;
            t.io_mark = io;
            self.bytes_sent = io.0;
            self.bytes_received = io.1;
            t.finished.push(last);
        }
        std::mem::take(&mut t.finished)
    }

    /// A request is about to go out.
    pub fn on_send(&mut self, kind: usize) {
        self.kinds[kind].sent += 1;
        self.timeline.current.sent += 1;
    }

    /// An arrival was dropped because the backlog was full (open model).
    pub fn on_missed(&mut self, now: Instant) {
        self.roll(now);
        self.missed += 1;
        self.timeline.current.missed += 1;
    }

    /// A response arrived; `error` is set when its status or checks failed.
    pub fn on_response(&mut self, kind: usize, now: Instant, timing: Timing, error: Option<ErrorKind>, body: u64) {
        self.roll(now);
        let k = &mut self.kinds[kind];
        k.completed += 1;
        k.body_bytes += body;
        hist::record(&mut k.raw, timing.raw_us);
        let headline = match timing.corrected_us {
            Some(c) => {
                hist::record(&mut k.latency, c);
                c
            }
            None => timing.raw_us,
        };
        let b = &mut self.timeline.current;
        b.completed += 1;
        hist::record(&mut b.latency, headline);
        match error {
            None => {
                k.ok += 1;
                b.ok += 1;
            }
            Some(e) => {
                k.errors.add(e);
                b.errors += 1;
            }
        }
    }

    /// A request failed without a response.
    pub fn on_failure(&mut self, kind: usize, now: Instant, error: ErrorKind, message: &dyn std::fmt::Display) {
        self.roll(now);
        self.kinds[kind].errors.add(error);
        self.timeline.current.errors += 1;
        self.sample_error(message);
    }

    /// Keeps the first few distinct error messages for the report.
    pub fn sample_error(&mut self, message: &dyn std::fmt::Display) {
        if self.error_samples.len() < MAX_ERROR_SAMPLES {
            let m = message.to_string();
            if !self.error_samples.contains(&m) {
                self.error_samples.push(m);
            }
        }
    }

    pub fn server_timing(&mut self) -> &mut ServerTimingStats {
        self.server_timing.get_or_insert_with(Default::default)
    }

    /// Adds another thread's figures (not its timeline).
    pub fn merge(&mut self, o: &ThreadStats) {
        for (mine, theirs) in self.kinds.iter_mut().zip(&o.kinds) {
            mine.merge(theirs);
        }
        self.scheduled += o.scheduled;
        self.missed += o.missed;
        self.connections_opened += o.connections_opened;
        if let Some(st) = &o.server_timing {
            self.server_timing().merge(st);
        }
        hist::add(&mut self.scheduler_lag, &o.scheduler_lag);
        hist::add(&mut self.send_delay, &o.send_delay);
        for m in &o.error_samples {
            self.sample_error(m);
        }
        self.bytes_sent += o.bytes_sent;
        self.bytes_received += o.bytes_received;
    }
}

/// Latencies of one exchange, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub raw_us: u64,
    /// From the scheduled send time (open model only).
    pub corrected_us: Option<u64>,
}

/// Whole microseconds in a duration, saturating.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_roll_per_second_and_carry_bytes() {
        let start = Instant::now();
        let io = Arc::new(IoCounters::default());
        let mut s = ThreadStats::new(1, start, io.clone());
        s.on_send(0);
        s.on_response(0, start, Timing { raw_us: 100, corrected_us: None }, None, 10);
        io.written.fetch_add(50, Ordering::Relaxed);
        s.on_send(0);
        s.on_response(
            0,
            start + Duration::from_millis(2500),
            Timing { raw_us: 200, corrected_us: Some(300) },
            Some(ErrorKind::Status5xx),
            0,
        );
        let secs = s.take_seconds(false);
        assert_eq!(secs.iter().map(|b| b.second).collect::<Vec<_>>(), [0, 1]);
        assert_eq!((secs[0].completed, secs[0].ok, secs[0].bytes_sent), (1, 1, 50));
        assert_eq!(secs[1].completed, 0);
        let rest = s.take_seconds(true);
        assert_eq!((rest[0].second, rest[0].errors), (2, 1));
        assert_eq!(s.kinds[0].errors.status_5xx, 1);
        assert_eq!(s.kinds[0].latency.len(), 1);
        assert_eq!(s.kinds[0].raw.len(), 2);
    }
}
