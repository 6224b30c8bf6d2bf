//! Resource monitor for osprey: host and process CPU, memory, disks, disk and
//! network I/O, file descriptors, TCP sockets and GPUs, sampled in the
//! background into bounded history rings and published as Prometheus
//! metrics.
//!
//! An analysis server is usually limited by one of these (memory for models,
//! CPU for tokenisation, GPU for inference, descriptors for connections), and
//! an operator needs to see which without installing a node exporter. The
//! monitor must not become a load itself: a sample reads a handful of `/proc`
//! files through descriptors kept open and costs a few hundred microseconds,
//! well under the 1 % of one core budget at 1 Hz; [`ResourceMonitor::cost`]
//! measures that in production rather than asserting it.
//!
//! The one entry point is [`ResourceMonitor`]:
//!
//! - [`ResourceMonitor::spawn`] samples every `interval` (1 s) on the
//!   current tokio runtime until [`ResourceMonitor::stop`];
//! - [`ResourceMonitor::sample_now`], [`ResourceMonitor::latest`] and
//!   [`ResourceMonitor::history`] (fine: 1 h at 1 s; coarse: 24 h of
//!   one-minute averages) for the API;
//! - [`ResourceMonitor::cost`] for the monitor's own overhead;
//! - Prometheus series named in [`metrics`] (`osprey_system_*`,
//!   `osprey_gpu_*`, `osprey_process_cpu_usage_percent`,
//!   `osprey_monitor_*`; the standard `process_*` series are the server's).
//!
//! ```
//! use osprey_monitor::{MonitorSettings, ResourceMonitor, Resolution};
//!
//! let monitor = ResourceMonitor::new(MonitorSettings::default());
//! let sample = monitor.sample_now();
//! assert!(sample.cpu.cores >= 1);
//! assert!(sample.disk_io.is_none(), "rates need two samples");
//! assert_eq!(monitor.history(Resolution::Fine, None).len(), 1);
//! println!("{:.1}% CPU, {} bytes available", sample.cpu.total_percent, sample.memory.available_bytes);
//!
//! // In the server: sample once a second until shutdown.
//! # async fn serve(monitor: ResourceMonitor) {
//! let task = monitor.spawn();
//! // ...
//! monitor.stop();
//! task.await.ok();
//! # }
//! ```
//!
//! Linux is the supported platform. Elsewhere the crate builds and samples
//! what it can (core count, `statvfs` of the configured paths, NVML); other
//! figures read zero and rates `None`.
//!
//! # Layout
//!
//! - `monitor` — [`ResourceMonitor`]: the sampling task, history access,
//!   cost accounting.
//! - `linux` — the sampler: which files are read when, rates against the
//!   previous sample; `portable` stands in on other systems.
//! - `parse` — pure parsers for each `/proc` file, tested on captured text.
//! - `procfile` — a `/proc` file kept open and re-read in place.
//! - `mounts` — which filesystems count as real, and `statvfs`.
//! - `gpu` — NVML behind the `cuda` feature, opened once, lazily.
//! - `history` — the bounded rings and coarse averaging.
//! - `sample` — [`ResourceSample`] and its parts, [`Resolution`], [`MonitorCost`].
//! - `settings` — [`MonitorSettings`] and its validation.
//! - [`metrics`] — Prometheus names, descriptions, publication.

#[cfg(target_os = "linux")]
mod error;
mod gpu;
mod history;
#[cfg(target_os = "linux")]
mod linux;
mod monitor;
mod mounts;
#[cfg(target_os = "linux")]
mod parse;
#[cfg(not(target_os = "linux"))]
mod portable;
#[cfg(target_os = "linux")]
mod procfile;
mod sample;
mod settings;

pub mod metrics;

#[cfg(target_os = "linux")]
use linux::Collector;
#[cfg(not(target_os = "linux"))]
use portable::Collector;

pub use monitor::ResourceMonitor;
pub use sample::{
    CpuSample, DiskUsage, GpuSample, IoRates, LoadAverage, MemorySample, MonitorCost, NetRates, ProcessSample,
    Resolution, ResourceSample, TcpSample,
};
pub use settings::MonitorSettings;

/// Now, in unix milliseconds (0 if the clock is before 1970).
fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
