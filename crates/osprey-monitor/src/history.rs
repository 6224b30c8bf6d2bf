//! The two bounded history rings and the averaging that feeds the coarse one.
//!
//! Every sample goes into the fine ring. Coarse windows are aligned to
//! multiples of `coarse_interval` in unix time (whole minutes by default);
//! when the first sample of a new window arrives, the finished window becomes
//! one coarse sample stamped with the window's start. So the window in
//! progress is not yet in the coarse ring.
//!
//! A coarse sample averages what varies smoothly: CPU percentages (total,
//! per core, iowait), load, memory and swap, disk and network rates (over the
//! samples that had them), the process CPU percentage and GPU utilisation and
//! memory. Everything else — disks, the other process figures, TCP counts,
//! cumulative counters — is the window's last sample.
//!
//! Time comes from the samples' own `ts_ms`, so tests drive windows with
//! explicit timestamps.

use std::collections::VecDeque;
use std::time::Duration;

use crate::sample::{IoRates, MemorySample, NetRates, ResourceSample};
use crate::{MonitorSettings, Resolution};

pub(crate) struct History {
    fine: Ring,
    coarse: Ring,
    coarse_ms: i64,
    window: Option<Window>,
}

impl History {
    pub(crate) fn new(settings: &MonitorSettings) -> Self {
        let coarse_ms = i64::try_from(settings.coarse_interval.max(Duration::from_millis(1)).as_millis());
        Self {
            fine: Ring::new(settings.fine_capacity),
            coarse: Ring::new(settings.coarse_capacity),
            coarse_ms: coarse_ms.unwrap_or(i64::MAX),
            window: None,
        }
    }

    pub(crate) fn push(&mut self, sample: ResourceSample) {
        let index = sample.ts_ms.div_euclid(self.coarse_ms);
        if self.window.as_ref().is_some_and(|w| w.index != index) {
            // The fine ring's newest entry is the finished window's last sample.
            if let (Some(window), Some(last)) = (self.window.take(), self.fine.items.back()) {
                self.coarse.push(window.finish(last, self.coarse_ms));
            }
        }
        self.window.get_or_insert_with(|| Window::new(index)).add(&sample);
        self.fine.push(sample);
    }

    pub(crate) fn latest(&self) -> Option<&ResourceSample> {
        self.fine.items.back()
    }

    /// Oldest first, only samples at or after `since_ms` when given.
    pub(crate) fn query(&self, resolution: Resolution, since_ms: Option<i64>) -> Vec<ResourceSample> {
        let ring = match resolution {
            Resolution::Fine => &self.fine,
            Resolution::Coarse => &self.coarse,
        };
        let since = since_ms.unwrap_or(i64::MIN);
        ring.items.iter().filter(|s| s.ts_ms >= since).cloned().collect()
    }
}

/// A queue that drops its oldest entry when full.
struct Ring {
    items: VecDeque<ResourceSample>,
    capacity: usize,
}

impl Ring {
    fn new(capacity: usize) -> Self {
        // Grows as samples arrive rather than reserving a day's worth up front.
        Self { items: VecDeque::new(), capacity: capacity.max(1) }
    }

    fn push(&mut self, sample: ResourceSample) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(sample);
    }
}

/// Running sums over one coarse window.
struct Window {
    index: i64,
    n: u32,
    cpu_total: f64,
    cpu_iowait: f64,
    /// Sum and count per core (cores may come and go within a window).
    per_core: Vec<(f64, u32)>,
    load: [f64; 3],
    /// total, available, used, swap total, swap used.
    memory: [f64; 5],
    memory_percent: f64,
    disk_io: Mean2,
    network: Mean2,
    process_cpu: f64,
    /// GPU index, utilisation sum, memory-used sum, count.
    gpu: Vec<(u32, f64, f64, u32)>,
}

/// Sums of an optional pair, counting only the samples that had it.
#[derive(Default)]
struct Mean2 {
    a: f64,
    b: f64,
    n: u32,
}

impl Mean2 {
    fn add(&mut self, pair: Option<(f64, f64)>) {
        if let Some((a, b)) = pair {
            self.a += a;
            self.b += b;
            self.n += 1;
        }
    }

    fn mean(&self) -> Option<(f64, f64)> {
        (self.n > 0).then(|| (self.a / f64::from(self.n), self.b / f64::from(self.n)))
    }
}

impl Window {
    fn new(index: i64) -> Self {
        Self {
            index,
            n: 0,
            cpu_total: 0.0,
            cpu_iowait: 0.0,
            per_core: Vec::new(),
            load: [0.0; 3],
            memory: [0.0; 5],
            memory_percent: 0.0,
            disk_io: Mean2::default(),
            network: Mean2::default(),
            process_cpu: 0.0,
            gpu: Vec::new(),
        }
    }

    fn add(&mut self, s: &ResourceSample) {
        self.n += 1;
        self.cpu_total += s.cpu.total_percent;
        self.cpu_iowait += s.cpu.iowait_percent;
        if self.per_core.len() < s.cpu.per_core_percent.len() {
            self.per_core.resize(s.cpu.per_core_percent.len(), (0.0, 0));
        }
        for (acc, pct) in self.per_core.iter_mut().zip(&s.cpu.per_core_percent) {
            acc.0 += pct;
            acc.1 += 1;
        }
        for (acc, v) in self.load.iter_mut().zip([s.load.one, s.load.five, s.load.fifteen]) {
            *acc += v;
        }
        let m = &s.memory;
        let bytes = [m.total_bytes, m.available_bytes, m.used_bytes, m.swap_total_bytes, m.swap_used_bytes];
        for (acc, v) in self.memory.iter_mut().zip(bytes) {
            *acc += v as f64;
        }
        self.memory_percent += m.used_percent;
        self.disk_io.add(s.disk_io.map(|r| (r.read_bytes_per_sec, r.write_bytes_per_sec)));
        self.network.add(s.network.map(|r| (r.rx_bytes_per_sec, r.tx_bytes_per_sec)));
        self.process_cpu += s.process.cpu_percent;
        for g in &s.gpu {
            match self.gpu.iter_mut().find(|acc| acc.0 == g.index) {
                Some(acc) => {
                    acc.1 += g.utilization_percent;
                    acc.2 += g.memory_used_bytes as f64;
                    acc.3 += 1;
                }
                None => self.gpu.push((g.index, g.utilization_percent, g.memory_used_bytes as f64, 1)),
            }
        }
    }

    /// The coarse sample: averages over the window on top of its last sample.
    fn finish(self, last: &ResourceSample, coarse_ms: i64) -> ResourceSample {
        let n = f64::from(self.n.max(1));
        let bytes = |sum: f64| (sum / n).round() as u64;
        let mut s = last.clone();
        s.ts_ms = self.index.saturating_mul(coarse_ms);
        s.averaged = self.n;
        s.cpu.total_percent = self.cpu_total / n;
        s.cpu.iowait_percent = self.cpu_iowait / n;
        s.cpu.per_core_percent =
            self.per_core.iter().map(|&(sum, k)| if k == 0 { 0.0 } else { sum / f64::from(k) }).collect();
        (s.load.one, s.load.five, s.load.fifteen) = (self.load[0] / n, self.load[1] / n, self.load[2] / n);
        let [total, available, used, swap_total, swap_used] = self.memory;
        s.memory = MemorySample {
            total_bytes: bytes(total),
            available_bytes: bytes(available),
            used_bytes: bytes(used),
            used_percent: self.memory_percent / n,
            swap_total_bytes: bytes(swap_total),
            swap_used_bytes: bytes(swap_used),
        };
        s.disk_io = self.disk_io.mean().map(|(r, w)| IoRates { read_bytes_per_sec: r, write_bytes_per_sec: w });
        s.network = self.network.mean().map(|(rx, tx)| NetRates { rx_bytes_per_sec: rx, tx_bytes_per_sec: tx });
        s.process.cpu_percent = self.process_cpu / n;
        for g in &mut s.gpu {
            if let Some(&(_, util, mem, k)) = self.gpu.iter().find(|acc| acc.0 == g.index) {
                g.utilization_percent = util / f64::from(k);
                g.memory_used_bytes = (mem / f64::from(k)).round() as u64;
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{CpuSample, GpuSample, ProcessSample, TcpSample};

    fn settings(fine: usize, coarse: usize, coarse_interval: Duration) -> MonitorSettings {
        MonitorSettings { fine_capacity: fine, coarse_capacity: coarse, coarse_interval, ..Default::default() }
    }

    /// A sample whose figures are all derived from `v`, so averages are easy to predict.
    fn sample(ts_ms: i64, v: f64) -> ResourceSample {
        ResourceSample {
            ts_ms,
            averaged: 1,
            cpu: CpuSample { total_percent: v, per_core_percent: vec![v, 2.0 * v], iowait_percent: v / 10.0, cores: 2 },
            memory: MemorySample {
                total_bytes: 1000,
                available_bytes: 1000 - v as u64,
                used_bytes: v as u64,
                used_percent: v / 10.0,
                swap_total_bytes: 0,
                swap_used_bytes: 0,
            },
            disk_io: (v > 0.0).then_some(IoRates { read_bytes_per_sec: v, write_bytes_per_sec: 2.0 * v }),
            process: ProcessSample { cpu_percent: 3.0 * v, threads: v as u64, ..Default::default() },
            tcp: TcpSample { total: v as u64, ..Default::default() },
            gpu: vec![GpuSample {
                index: 0,
                utilization_percent: v,
                memory_used_bytes: 10 * v as u64,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn fine_ring_is_bounded_oldest_first_and_filters_by_time() {
        let mut h = History::new(&settings(5, 10, Duration::from_secs(60)));
        for i in 0..8 {
            h.push(sample(1_000 * i, i as f64));
        }
        let all = h.query(Resolution::Fine, None);
        assert_eq!(all.iter().map(|s| s.ts_ms).collect::<Vec<_>>(), [3_000, 4_000, 5_000, 6_000, 7_000]);
        let recent = h.query(Resolution::Fine, Some(5_000));
        assert_eq!(recent.iter().map(|s| s.ts_ms).collect::<Vec<_>>(), [5_000, 6_000, 7_000]);
        assert!(h.query(Resolution::Fine, Some(8_000)).is_empty());
        assert_eq!(h.latest().map(|s| s.ts_ms), Some(7_000));
    }

    #[test]
    fn coarse_samples_average_each_finished_window() {
        // Windows of 10 s: [0, 10 s) holds values 0, 10, 20; [10 s, 20 s) holds 30, 40.
        let mut h = History::new(&settings(100, 100, Duration::from_secs(10)));
        for (ts, v) in [(1_000, 0.0), (4_000, 10.0), (9_999, 20.0), (10_000, 30.0), (15_000, 40.0)] {
            h.push(sample(ts, v));
        }
        let coarse = h.query(Resolution::Coarse, None);
        assert_eq!(coarse.len(), 1, "the second window is still open");
        let c = &coarse[0];
        assert_eq!((c.ts_ms, c.averaged), (0, 3));
        assert_eq!(c.cpu.total_percent, 10.0);
        assert_eq!(c.cpu.per_core_percent, [10.0, 20.0]);
        assert_eq!(c.cpu.iowait_percent, 1.0);
        assert_eq!((c.memory.used_bytes, c.memory.available_bytes, c.memory.total_bytes), (10, 990, 1000));
        assert_eq!(c.memory.used_percent, 1.0);
        // Only two of the three samples had I/O rates (the first had none).
        assert_eq!(c.disk_io, Some(IoRates { read_bytes_per_sec: 15.0, write_bytes_per_sec: 30.0 }));
        assert_eq!(c.process.cpu_percent, 30.0);
        assert_eq!((c.gpu[0].utilization_percent, c.gpu[0].memory_used_bytes), (10.0, 100));
        // Not averaged: taken from the window's last sample.
        assert_eq!((c.process.threads, c.tcp.total), (20, 20));

        h.push(sample(25_000, 50.0));
        let coarse = h.query(Resolution::Coarse, Some(10_000));
        assert_eq!(coarse.len(), 1);
        assert_eq!((coarse[0].ts_ms, coarse[0].averaged, coarse[0].cpu.total_percent), (10_000, 2, 35.0));
        assert_eq!(h.query(Resolution::Coarse, None).len(), 2);
    }

    #[test]
    fn coarse_ring_is_bounded_and_survives_gaps() {
        let mut h = History::new(&settings(3, 2, Duration::from_secs(1)));
        // One sample per window, with a gap of several empty windows.
        for ts in [0, 1_000, 2_000, 9_000, 10_000] {
            h.push(sample(ts, 1.0));
        }
        let coarse = h.query(Resolution::Coarse, None);
        assert_eq!(coarse.iter().map(|s| s.ts_ms).collect::<Vec<_>>(), [2_000, 9_000]);
        assert!(coarse.iter().all(|s| s.averaged == 1));
    }
}
