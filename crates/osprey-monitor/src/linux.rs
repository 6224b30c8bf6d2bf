//! The Linux sampler: reads `/proc`, `statvfs` and NVML into one
//! [`ResourceSample`].
//!
//! Per sample it reads ten small `/proc` files through descriptors kept
//! open ([`ProcFile`]), calls `statvfs` once per filesystem and counts
//! `/proc/self/fd`. What changes rarely or is expensive to read — the mount
//! list, which block devices are physical disks, the open-files limit, the
//! listening TCP sockets — is re-read every [`REFRESH`]. Rates compare with the previous sample using a monotonic
//! clock; the CPU figures compare with a baseline taken in [`Collector::new`],
//! so even the first sample has them (the process figure once 100 ms have
//! passed, see [`MIN_PROCESS_CPU_WINDOW`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::MonitorError;
use crate::gpu::GpuProbe;
use crate::mounts::{self, MountTarget};
use crate::parse::{self, KernelStat};
use crate::procfile::ProcFile;
use crate::sample::{CpuSample, IoRates, NetRates, ProcessSample, ResourceSample, TcpSample};
use crate::MonitorSettings;

/// How often the slowly changing lists are re-read.
const REFRESH: Duration = Duration::from_secs(60);
/// Shortest window the process CPU figure is computed over. CPU time comes
/// in clock ticks (10 ms), so over a millisecond one tick would read as a
/// thousand percent; samples closer together repeat the last figure.
const MIN_PROCESS_CPU_WINDOW: Duration = Duration::from_millis(100);

/// Cumulative counters from one sample, for the next one's rates.
struct IoReading {
    at: Instant,
    disk: Option<(u64, u64)>,
    net: Option<(u64, u64)>,
}

pub(crate) struct Collector {
    stat: ProcFile,
    meminfo: ProcFile,
    loadavg: ProcFile,
    diskstats: ProcFile,
    net_dev: ProcFile,
    snmp: ProcFile,
    sockstat: ProcFile,
    sockstat6: ProcFile,
    self_stat: ProcFile,
    /// For `fd_count`, which stats (kernel 6.2+) or lists `/proc/self/fd`.
    process: Option<procfs::process::Process>,
    ticks_per_second: f64,
    page_size: u64,
    /// The previous and the current `/proc/stat`, swapped after each sample.
    cpu_prev: KernelStat,
    cpu_now: KernelStat,
    /// Process CPU ticks and when they were read: the baseline of the next figure.
    process_prev: Option<(u64, Instant)>,
    process_cpu_percent: f64,
    io_prev: Option<IoReading>,
    start_time_unix: f64,
    max_fds: u64,
    /// Listening TCP sockets, from the last walk of `/proc/net/tcp{,6}`.
    tcp_listen: u64,
    configured_mounts: Vec<PathBuf>,
    mounts: Vec<MountTarget>,
    /// Physical whole disks from `/sys/block`; `None` to go by names.
    disks: Option<Vec<String>>,
    refreshed: Option<Instant>,
    gpu: GpuProbe,
    /// Files whose failure was already logged at warn level.
    warned: Vec<&'static str>,
}

impl Collector {
    pub(crate) fn new(settings: &MonitorSettings) -> Self {
        let mut collector = Self {
            stat: ProcFile::new("/proc/stat"),
            meminfo: ProcFile::new("/proc/meminfo"),
            loadavg: ProcFile::new("/proc/loadavg"),
            diskstats: ProcFile::new("/proc/diskstats"),
            net_dev: ProcFile::new("/proc/net/dev"),
            snmp: ProcFile::new("/proc/net/snmp"),
            sockstat: ProcFile::new("/proc/net/sockstat"),
            sockstat6: ProcFile::new("/proc/net/sockstat6"),
            self_stat: ProcFile::new("/proc/self/stat"),
            process: procfs::process::Process::myself().ok(),
            ticks_per_second: procfs::ticks_per_second().max(1) as f64,
            page_size: procfs::page_size(),
            cpu_prev: KernelStat::default(),
            cpu_now: KernelStat::default(),
            process_prev: None,
            process_cpu_percent: 0.0,
            io_prev: None,
            start_time_unix: 0.0,
            max_fds: 0,
            tcp_listen: 0,
            configured_mounts: settings.mounts.clone(),
            mounts: Vec::new(),
            disks: None,
            refreshed: None,
            gpu: GpuProbe::new(),
            warned: Vec::new(),
        };
        collector.baseline();
        collector
    }

    /// Takes one sample.
    pub(crate) fn collect(&mut self) -> ResourceSample {
        let now = Instant::now();
        if self.refreshed.is_none_or(|at| now.duration_since(at) >= REFRESH) {
            self.refresh(now);
        }
        let mut s = ResourceSample { ts_ms: crate::unix_ms(), averaged: 1, ..ResourceSample::default() };
        s.cpu = self.cpu();
        match self.loadavg.parse(parse::parse_loadavg) {
            Ok(load) => s.load = load,
            Err(e) => self.warn_once(e),
        }
        match self.meminfo.parse(parse::parse_meminfo) {
            Ok(memory) => s.memory = memory,
            Err(e) => self.warn_once(e),
        }
        s.disks = self.mounts.iter().filter_map(mounts::usage).collect();
        self.io(now, &mut s);
        s.process = self.process(now, s.cpu.cores);
        s.tcp = self.tcp();
        self.gpu.sample(&mut s.gpu);
        s
    }

    /// Reads what the first sample compares against, and the constants.
    fn baseline(&mut self) {
        if let Err(e) = self.stat.parse(|t| parse::parse_stat(t, &mut self.cpu_prev)) {
            self.warn_once(e);
        }
        let btime = self.cpu_prev.btime.unwrap_or(0) as f64;
        match self.self_stat.parse(parse::parse_self_stat) {
            Ok(st) => {
                self.start_time_unix = btime + st.start_ticks as f64 / self.ticks_per_second;
                self.process_prev = Some((st.cpu_ticks, Instant::now()));
            }
            Err(e) => self.warn_once(e),
        }
    }

    /// Re-reads the mount list, the physical disks and the open-files limit.
    fn refresh(&mut self, now: Instant) {
        self.refreshed = Some(now);
        let entries = match std::fs::read_to_string("/proc/self/mountinfo") {
            Ok(text) => mounts::parse_mountinfo(&text),
            Err(source) => {
                self.warn_once(MonitorError::Read { path: "/proc/self/mountinfo", source });
                Vec::new()
            }
        };
        self.mounts = mounts::targets(&entries, &self.configured_mounts);
        self.disks = physical_disks();
        let mut listen = TcpSample::default();
        for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let walked = ProcFile::new(path).parse(|t| {
                parse::count_tcp_states(t, &mut listen);
                Ok(())
            });
            if let Err(error) = walked {
                tracing::trace!(%error, "cannot walk TCP sockets");
            }
        }
        self.tcp_listen = listen.listen;
        let mut limits = ProcFile::new("/proc/self/limits");
        match limits.parse(parse::parse_max_open_files) {
            Ok(max) => self.max_fds = max,
            Err(e) => self.warn_once(e),
        }
    }

    fn cpu(&mut self) -> CpuSample {
        let read = self.stat.parse(|t| parse::parse_stat(t, &mut self.cpu_now));
        if let Err(e) = read {
            self.warn_once(e);
            return CpuSample::default();
        }
        let (now, prev) = (&self.cpu_now, &self.cpu_prev);
        let (total_percent, iowait_percent) = now.all.percent_since(&prev.all);
        let per_core_percent = now
            .cores
            .iter()
            .enumerate()
            .map(|(i, core)| match (core, prev.cores.get(i).copied().flatten()) {
                (Some(now), Some(prev)) => now.percent_since(&prev).0,
                _ => 0.0,
            })
            .collect();
        let cpu = CpuSample { total_percent, per_core_percent, iowait_percent, cores: now.online };
        std::mem::swap(&mut self.cpu_now, &mut self.cpu_prev);
        cpu
    }

    fn io(&mut self, now: Instant, s: &mut ResourceSample) {
        let disks = &self.disks;
        let disk = match self.diskstats.parse(|text| {
            Ok(parse::parse_diskstats(text, |name| match disks {
                Some(list) => list.iter().any(|d| d == name),
                None => parse::looks_like_whole_disk(name),
            }))
        }) {
            Ok(totals) => Some(totals),
            Err(e) => {
                self.warn_once(e);
                None
            }
        };
        let net = match self.net_dev.parse(parse::parse_net_dev) {
            Ok(totals) => Some(totals),
            Err(e) => {
                self.warn_once(e);
                None
            }
        };
        (s.disk_read_bytes_total, s.disk_written_bytes_total) = disk.unwrap_or_default();
        (s.net_rx_bytes_total, s.net_tx_bytes_total) = net.unwrap_or_default();
        if let Some(prev) = &self.io_prev {
            let secs = now.duration_since(prev.at).as_secs_f64();
            if secs > 0.0 {
                let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
                s.disk_io = disk.zip(prev.disk).map(|((r, w), (pr, pw))| IoRates {
                    read_bytes_per_sec: rate(r, pr),
                    write_bytes_per_sec: rate(w, pw),
                });
                s.network = net.zip(prev.net).map(|((rx, tx), (prx, ptx))| NetRates {
                    rx_bytes_per_sec: rate(rx, prx),
                    tx_bytes_per_sec: rate(tx, ptx),
                });
            }
        }
        self.io_prev = Some(IoReading { at: now, disk, net });
    }

    fn process(&mut self, now: Instant, cores: usize) -> ProcessSample {
        let mut p =
            ProcessSample { start_time_unix: self.start_time_unix, max_fds: self.max_fds, ..Default::default() };
        match self.self_stat.parse(parse::parse_self_stat) {
            Ok(st) => {
                p.rss_bytes = st.rss_pages.saturating_mul(self.page_size);
                p.virtual_bytes = st.virtual_bytes;
                p.threads = st.threads;
                match self.process_prev {
                    Some((ticks, at)) if now.duration_since(at) >= MIN_PROCESS_CPU_WINDOW => {
                        let cpu_secs = st.cpu_ticks.saturating_sub(ticks) as f64 / self.ticks_per_second;
                        let max = 100.0 * cores.max(1) as f64;
                        self.process_cpu_percent = (cpu_secs / now.duration_since(at).as_secs_f64() * 100.0).min(max);
                        self.process_prev = Some((st.cpu_ticks, now));
                    }
                    Some(_) => {}
                    None => self.process_prev = Some((st.cpu_ticks, now)),
                }
                p.cpu_percent = self.process_cpu_percent;
            }
            Err(e) => self.warn_once(e),
        }
        if let Some(process) = &self.process {
            match process.fd_count() {
                Ok(n) => p.open_fds = n as u64,
                Err(error) => tracing::trace!(%error, "cannot count open file descriptors"),
            }
        }
        p
    }

    /// TCP sockets from the kernel's counters, which cost microseconds:
    /// walking `/proc/net/tcp` costs milliseconds even when nearly empty,
    /// because the kernel scans its whole connection hash table (and does
    /// it again for `tcp6`). Only the listening count needs the walk; it is
    /// taken in [`Self::refresh`].
    fn tcp(&mut self) -> TcpSample {
        let mut tcp = TcpSample { listen: self.tcp_listen, ..TcpSample::default() };
        match self.snmp.parse(parse::parse_snmp_curr_estab) {
            Ok(established) => tcp.established = established,
            Err(e) => self.warn_once(e),
        }
        match self.sockstat.parse(|t| parse::parse_sockstat_tcp(t, "TCP:")) {
            Ok((inuse, tw)) => {
                tcp.time_wait = tw;
                tcp.total = inuse.saturating_add(tw);
            }
            Err(e) => self.warn_once(e),
        }
        match self.sockstat6.parse(|t| parse::parse_sockstat_tcp(t, "TCP6:")) {
            Ok((inuse, _)) => tcp.total = tcp.total.saturating_add(inuse),
            // No IPv6 is normal; not worth a warning.
            Err(error) => tracing::trace!(%error, "no IPv6 socket counters"),
        }
        tcp
    }

    /// Logs a failure at warn level the first time each file fails, then at trace.
    fn warn_once(&mut self, error: MonitorError) {
        if self.warned.contains(&error.path()) {
            tracing::trace!(%error, "resource monitor source unavailable");
        } else {
            tracing::warn!(%error, "resource monitor source unavailable; its figures will read zero");
            self.warned.push(error.path());
        }
    }
}

/// Whole physical disks per `/sys/block`: entries with a backing `device`
/// (which loop, RAM, zram, device-mapper and md devices lack). `None` when
/// sysfs cannot tell, to fall back on device names.
fn physical_disks() -> Option<Vec<String>> {
    let names: Vec<String> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .filter(|entry| entry.path().join("device").exists())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| !["loop", "ram", "zram"].iter().any(|p| name.starts_with(p)))
        .collect();
    (!names.is_empty()).then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_has_cpu_but_no_rates_and_the_second_has_rates() {
        let mut c = Collector::new(&MonitorSettings::default());
        let first = c.collect();
        assert!(first.cpu.cores >= 1);
        assert!(first.disk_io.is_none() && first.network.is_none());
        std::thread::sleep(Duration::from_millis(20));
        let second = c.collect();
        assert!(second.disk_io.is_some(), "/proc/diskstats is readable here");
        assert!(second.network.is_some(), "/proc/net/dev is readable here");
        assert!(second.ts_ms >= first.ts_ms);
        assert!(c.warned.is_empty(), "every source read: {:?}", c.warned);
    }

    #[test]
    fn sysfs_lists_disks_without_virtual_devices() {
        for name in physical_disks().unwrap_or_default() {
            assert!(!name.starts_with("loop") && !name.starts_with("dm-"), "{name}");
        }
    }
}
