//! What one sample holds: the serialisable figures the API serves and the
//! history rings keep.
//!
//! Units are fixed so that consumers never guess: sizes in bytes, rates per
//! second, ratios as percent (0–100, except the process CPU figure, which is
//! a share of one core and exceeds 100 with several busy threads), time as
//! unix milliseconds. Figures the platform cannot provide are zero, empty or
//! `None`; rates are `None` until two readings exist to compare.

use serde::{Deserialize, Serialize};

/// The two history resolutions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// One entry per sampling interval.
    Fine,
    /// One entry per `coarse_interval`, the average of the fine samples in it.
    Coarse,
}

/// Everything measured at one instant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceSample {
    /// When the sample was taken, unix milliseconds; for a coarse sample, the
    /// start of the window it averages.
    pub ts_ms: i64,
    /// Fine samples this entry stands for: 1 for a fine sample, the number
    /// averaged for a coarse one.
    pub averaged: u32,
    pub cpu: CpuSample,
    pub load: LoadAverage,
    pub memory: MemorySample,
    pub disks: Vec<DiskUsage>,
    /// Whole-device read and write rates; `None` on the first sample or when
    /// `/proc/diskstats` is unreadable.
    pub disk_io: Option<IoRates>,
    /// Receive and transmit rates over every interface but loopback.
    pub network: Option<NetRates>,
    /// Bytes read from whole devices since boot.
    pub disk_read_bytes_total: u64,
    /// Bytes written to whole devices since boot.
    pub disk_written_bytes_total: u64,
    /// Bytes received on non-loopback interfaces since boot (or since the
    /// interfaces appeared).
    pub net_rx_bytes_total: u64,
    /// Bytes sent on non-loopback interfaces.
    pub net_tx_bytes_total: u64,
    pub process: ProcessSample,
    pub tcp: TcpSample,
    /// One entry per GPU; empty without the `cuda` feature, a driver or a GPU.
    pub gpu: Vec<GpuSample>,
}

/// Host CPU busy time since the previous sample (for the first, since the
/// monitor was built). Samples only milliseconds apart give coarse figures:
/// the kernel counts in 10 ms ticks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuSample {
    /// Busy share of the whole machine (every core together is 100).
    pub total_percent: f64,
    /// Busy share of each core, indexed by CPU number; an offline CPU reads 0.
    pub per_core_percent: Vec<f64>,
    /// Share of time idle with I/O outstanding (Linux's `iowait`).
    pub iowait_percent: f64,
    /// Online CPUs.
    pub cores: usize,
}

/// Run-queue load averages, as `uptime` prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// Host memory; `used` is `total - available`, as `free` computes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemorySample {
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub used_bytes: u64,
    pub used_percent: f64,
    pub swap_total_bytes: u64,
    pub swap_used_bytes: u64,
}

/// One mounted filesystem.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskUsage {
    /// The mount point (or the configured path).
    pub mount: String,
    pub fs_type: String,
    pub total_bytes: u64,
    /// Space an unprivileged user may still write (excludes the root reserve).
    pub free_bytes: u64,
    /// Used over what unprivileged users can use, as `df` reports it.
    pub used_percent: f64,
}

/// Block-device throughput.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IoRates {
    pub read_bytes_per_sec: f64,
    pub write_bytes_per_sec: f64,
}

/// Network throughput.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetRates {
    pub rx_bytes_per_sec: f64,
    pub tx_bytes_per_sec: f64,
}

/// This process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSample {
    /// CPU time over wall time since the previous sample, as a percent of one
    /// core: 250 means two and a half cores busy. Computed over at least
    /// 100 ms (CPU time comes in 10 ms ticks); samples closer together repeat
    /// the last figure, and the very first reads 0 until 100 ms have passed.
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub virtual_bytes: u64,
    /// Open file descriptors (including the few the monitor keeps open).
    pub open_fds: u64,
    /// The soft `RLIMIT_NOFILE`; `u64::MAX` when unlimited.
    pub max_fds: u64,
    pub threads: u64,
    /// Process start, unix seconds.
    pub start_time_unix: f64,
}

/// TCP sockets (IPv4 and IPv6) in this network namespace, by state.
///
/// Read from the kernel's own counters (`/proc/net/snmp`, `/proc/net/sockstat`
/// and `sockstat6`) because listing every socket in `/proc/net/tcp` costs
/// milliseconds per sample; only `listen` comes from that listing, taken once
/// a minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpSample {
    /// ESTABLISHED and CLOSE-WAIT connections (the kernel's `CurrEstab`).
    pub established: u64,
    /// Listening sockets, as of the last minute's listing.
    pub listen: u64,
    pub time_wait: u64,
    /// Every socket with an address (any state, TIME-WAIT included).
    pub total: u64,
}

/// One GPU, as NVML reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    pub index: u32,
    pub name: String,
    /// Share of the last driver sampling period with a kernel running.
    pub utilization_percent: f64,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
}

/// What the monitor itself costs, measured around every
/// [`crate::ResourceMonitor::sample_now`] (reading, history, metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorCost {
    /// Samples taken since the monitor was built.
    pub samples: u64,
    /// Mean wall time of one sample, microseconds.
    pub mean_sample_us: f64,
    /// Longest sample, microseconds (the first, which opens files and maybe
    /// NVML, is usually it).
    pub max_sample_us: f64,
    /// Seconds since the monitor was built.
    pub elapsed_seconds: f64,
    /// Summed sample wall time over elapsed time, percent of one core. Wall
    /// time bounds CPU time from above, so this over-states the cost a little.
    pub cpu_share_percent: f64,
}

/// `part` as a percentage of `whole`, 0 when `whole` is 0, at most 100.
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 100.0 / whole as f64).min(100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_is_lowercase_on_the_wire() -> Result<(), serde_json::Error> {
        assert_eq!(serde_json::to_string(&Resolution::Fine)?, r#""fine""#);
        assert_eq!(serde_json::from_str::<Resolution>(r#""coarse""#)?, Resolution::Coarse);
        assert!(serde_json::from_str::<Resolution>(r#""Coarse""#).is_err());
        Ok(())
    }

    #[test]
    fn samples_round_trip_through_json() -> Result<(), serde_json::Error> {
        let sample = ResourceSample {
            ts_ms: 1_700_000_000_000,
            averaged: 1,
            cpu: CpuSample { total_percent: 12.5, per_core_percent: vec![10.0, 15.0], iowait_percent: 0.5, cores: 2 },
            disks: vec![DiskUsage { mount: "/".into(), fs_type: "ext4".into(), total_bytes: 10, ..Default::default() }],
            disk_io: Some(IoRates { read_bytes_per_sec: 1.0, write_bytes_per_sec: 2.0 }),
            process: ProcessSample { max_fds: u64::MAX, ..Default::default() },
            ..Default::default()
        };
        let back: ResourceSample = serde_json::from_str(&serde_json::to_string(&sample)?)?;
        assert_eq!(back, sample);
        Ok(())
    }
}
