//! Prometheus metric names and their publication.
//!
//! Host figures are `osprey_system_*` (and `osprey_gpu_*`); the monitor's own
//! cost is `osprey_monitor_*`. The standard `process_*` series
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_open_fds`, …) are exported by the server through the
//! `metrics-process` crate and deliberately not repeated here; this crate
//! adds only [`PROCESS_CPU_USAGE_PERCENT`], which they lack.
//!
//! Every sample sets the gauges and, with `absolute`, the counters through
//! the `metrics` facade; without an installed recorder that is a no-op.
//! Label values come from small sets: `cpu` (`total` and CPU numbers),
//! `window`, `mount` (the monitored filesystems), `state`, `gpu` (device
//! index). A mount or GPU that disappears keeps its last value until the
//! exporter forgets idle series.

use std::sync::Arc;

use metrics::{describe_counter, describe_gauge, SharedString, Unit};

use crate::sample::{MonitorCost, ResourceSample};

/// Busy share by `cpu`: `total` (the whole machine) or a CPU number.
pub const CPU_USAGE_PERCENT: &str = "osprey_system_cpu_usage_percent";
/// Share of time idle with I/O outstanding, whole machine.
pub const CPU_IOWAIT_PERCENT: &str = "osprey_system_cpu_iowait_percent";
/// Load average by `window` (1m, 5m, 15m).
pub const LOAD_AVERAGE: &str = "osprey_system_load_average";
pub const MEMORY_TOTAL_BYTES: &str = "osprey_system_memory_total_bytes";
pub const MEMORY_AVAILABLE_BYTES: &str = "osprey_system_memory_available_bytes";
/// Total minus available, as `free` computes it.
pub const MEMORY_USED_BYTES: &str = "osprey_system_memory_used_bytes";
pub const MEMORY_USED_PERCENT: &str = "osprey_system_memory_used_percent";
pub const SWAP_TOTAL_BYTES: &str = "osprey_system_swap_total_bytes";
pub const SWAP_USED_BYTES: &str = "osprey_system_swap_used_bytes";
/// Filesystem size by `mount`.
pub const DISK_TOTAL_BYTES: &str = "osprey_system_disk_total_bytes";
/// Space available to unprivileged users by `mount`.
pub const DISK_FREE_BYTES: &str = "osprey_system_disk_free_bytes";
/// Used share by `mount`, as `df` computes it.
pub const DISK_USED_PERCENT: &str = "osprey_system_disk_used_percent";
/// Bytes read from whole physical disks since boot.
pub const DISK_READ_BYTES_TOTAL: &str = "osprey_system_disk_read_bytes_total";
/// Bytes written to whole physical disks since boot.
pub const DISK_WRITTEN_BYTES_TOTAL: &str = "osprey_system_disk_written_bytes_total";
/// Bytes received on every interface but loopback.
pub const NETWORK_RECEIVE_BYTES_TOTAL: &str = "osprey_system_network_receive_bytes_total";
/// Bytes sent on every interface but loopback.
pub const NETWORK_TRANSMIT_BYTES_TOTAL: &str = "osprey_system_network_transmit_bytes_total";
/// TCP sockets by `state` (established, listen, time_wait, total).
pub const TCP_CONNECTIONS: &str = "osprey_system_tcp_connections";
/// GPU busy share by `gpu` index.
pub const GPU_UTILIZATION_PERCENT: &str = "osprey_gpu_utilization_percent";
pub const GPU_MEMORY_USED_BYTES: &str = "osprey_gpu_memory_used_bytes";
pub const GPU_MEMORY_TOTAL_BYTES: &str = "osprey_gpu_memory_total_bytes";
/// This process's CPU use, percent of one core (above 100 with several busy threads).
pub const PROCESS_CPU_USAGE_PERCENT: &str = "osprey_process_cpu_usage_percent";
/// Wall time of the monitor's last sample.
pub const MONITOR_SAMPLE_SECONDS: &str = "osprey_monitor_sample_seconds";
/// Summed sample time over time since start, percent of one core.
pub const MONITOR_CPU_SHARE_PERCENT: &str = "osprey_monitor_cpu_share_percent";

/// Every name this crate publishes, for checks such as "does each dashboard
/// query name a real series".
pub const ALL_NAMES: &[&str] = &[
    CPU_USAGE_PERCENT,
    CPU_IOWAIT_PERCENT,
    LOAD_AVERAGE,
    MEMORY_TOTAL_BYTES,
    MEMORY_AVAILABLE_BYTES,
    MEMORY_USED_BYTES,
    MEMORY_USED_PERCENT,
    SWAP_TOTAL_BYTES,
    SWAP_USED_BYTES,
    DISK_TOTAL_BYTES,
    DISK_FREE_BYTES,
    DISK_USED_PERCENT,
    DISK_READ_BYTES_TOTAL,
    DISK_WRITTEN_BYTES_TOTAL,
    NETWORK_RECEIVE_BYTES_TOTAL,
    NETWORK_TRANSMIT_BYTES_TOTAL,
    TCP_CONNECTIONS,
    GPU_UTILIZATION_PERCENT,
    GPU_MEMORY_USED_BYTES,
    GPU_MEMORY_TOTAL_BYTES,
    PROCESS_CPU_USAGE_PERCENT,
    MONITOR_SAMPLE_SECONDS,
    MONITOR_CPU_SHARE_PERCENT,
];

/// Registers descriptions with the installed recorder; call once at start-up.
pub fn describe() {
    describe_gauge!(CPU_USAGE_PERCENT, Unit::Percent, "Host CPU busy share, whole machine (cpu=total) and per CPU");
    describe_gauge!(CPU_IOWAIT_PERCENT, Unit::Percent, "Host CPU share idle with I/O outstanding");
    describe_gauge!(LOAD_AVERAGE, "Host load average by window (1m, 5m, 15m)");
    describe_gauge!(MEMORY_TOTAL_BYTES, Unit::Bytes, "Host memory installed");
    describe_gauge!(MEMORY_AVAILABLE_BYTES, Unit::Bytes, "Host memory available to new work without swapping");
    describe_gauge!(MEMORY_USED_BYTES, Unit::Bytes, "Host memory in use (total minus available)");
    describe_gauge!(MEMORY_USED_PERCENT, Unit::Percent, "Host memory in use, share of total");
    describe_gauge!(SWAP_TOTAL_BYTES, Unit::Bytes, "Host swap space");
    describe_gauge!(SWAP_USED_BYTES, Unit::Bytes, "Host swap space in use");
    describe_gauge!(DISK_TOTAL_BYTES, Unit::Bytes, "Filesystem size by mount");
    describe_gauge!(DISK_FREE_BYTES, Unit::Bytes, "Filesystem space available to unprivileged users by mount");
    describe_gauge!(DISK_USED_PERCENT, Unit::Percent, "Filesystem space used by mount, as df reports it");
    describe_counter!(DISK_READ_BYTES_TOTAL, Unit::Bytes, "Bytes read from physical disks since boot");
    describe_counter!(DISK_WRITTEN_BYTES_TOTAL, Unit::Bytes, "Bytes written to physical disks since boot");
    describe_counter!(NETWORK_RECEIVE_BYTES_TOTAL, Unit::Bytes, "Bytes received on non-loopback interfaces");
    describe_counter!(NETWORK_TRANSMIT_BYTES_TOTAL, Unit::Bytes, "Bytes sent on non-loopback interfaces");
    describe_gauge!(TCP_CONNECTIONS, "TCP sockets in this network namespace by state");
    describe_gauge!(GPU_UTILIZATION_PERCENT, Unit::Percent, "GPU busy share by device");
    describe_gauge!(GPU_MEMORY_USED_BYTES, Unit::Bytes, "GPU memory allocated by device");
    describe_gauge!(GPU_MEMORY_TOTAL_BYTES, Unit::Bytes, "GPU memory installed by device");
    describe_gauge!(PROCESS_CPU_USAGE_PERCENT, Unit::Percent, "Server process CPU use, percent of one core");
    describe_gauge!(MONITOR_SAMPLE_SECONDS, Unit::Seconds, "Wall time of the resource monitor's last sample");
    describe_gauge!(MONITOR_CPU_SHARE_PERCENT, Unit::Percent, "Resource monitor cost, percent of one core");
}

/// Copies samples into the installed recorder, keeping the per-CPU label
/// values so that they are not formatted again every second.
#[derive(Default)]
pub(crate) struct Publisher {
    cpu_labels: Vec<SharedString>,
}

impl Publisher {
    pub(crate) fn publish(&mut self, s: &ResourceSample) {
        metrics::gauge!(CPU_USAGE_PERCENT, "cpu" => "total").set(s.cpu.total_percent);
        while self.cpu_labels.len() < s.cpu.per_core_percent.len() {
            let label: Arc<str> = self.cpu_labels.len().to_string().into();
            self.cpu_labels.push(label.into());
        }
        for (label, pct) in self.cpu_labels.iter().zip(&s.cpu.per_core_percent) {
            metrics::gauge!(CPU_USAGE_PERCENT, "cpu" => label.clone()).set(*pct);
        }
        metrics::gauge!(CPU_IOWAIT_PERCENT).set(s.cpu.iowait_percent);

        for (window, value) in [("1m", s.load.one), ("5m", s.load.five), ("15m", s.load.fifteen)] {
            metrics::gauge!(LOAD_AVERAGE, "window" => window).set(value);
        }

        let m = &s.memory;
        metrics::gauge!(MEMORY_TOTAL_BYTES).set(m.total_bytes as f64);
        metrics::gauge!(MEMORY_AVAILABLE_BYTES).set(m.available_bytes as f64);
        metrics::gauge!(MEMORY_USED_BYTES).set(m.used_bytes as f64);
        metrics::gauge!(MEMORY_USED_PERCENT).set(m.used_percent);
        metrics::gauge!(SWAP_TOTAL_BYTES).set(m.swap_total_bytes as f64);
        metrics::gauge!(SWAP_USED_BYTES).set(m.swap_used_bytes as f64);

        for d in &s.disks {
            metrics::gauge!(DISK_TOTAL_BYTES, "mount" => d.mount.clone()).set(d.total_bytes as f64);
            metrics::gauge!(DISK_FREE_BYTES, "mount" => d.mount.clone()).set(d.free_bytes as f64);
            metrics::gauge!(DISK_USED_PERCENT, "mount" => d.mount.clone()).set(d.used_percent);
        }

        // Zero means "could not read" (or nothing to count): publishing it
        // would look like a counter reset to Prometheus.
        for (name, total) in [
            (DISK_READ_BYTES_TOTAL, s.disk_read_bytes_total),
            (DISK_WRITTEN_BYTES_TOTAL, s.disk_written_bytes_total),
            (NETWORK_RECEIVE_BYTES_TOTAL, s.net_rx_bytes_total),
            (NETWORK_TRANSMIT_BYTES_TOTAL, s.net_tx_bytes_total),
        ] {
            if total > 0 {
                metrics::counter!(name).absolute(total);
            }
        }

        let t = &s.tcp;
        for (state, n) in
            [("established", t.established), ("listen", t.listen), ("time_wait", t.time_wait), ("total", t.total)]
        {
            metrics::gauge!(TCP_CONNECTIONS, "state" => state).set(n as f64);
        }

        for g in &s.gpu {
            let gpu = g.index.to_string();
            metrics::gauge!(GPU_UTILIZATION_PERCENT, "gpu" => gpu.clone()).set(g.utilization_percent);
            metrics::gauge!(GPU_MEMORY_USED_BYTES, "gpu" => gpu.clone()).set(g.memory_used_bytes as f64);
            metrics::gauge!(GPU_MEMORY_TOTAL_BYTES, "gpu" => gpu).set(g.memory_total_bytes as f64);
        }

        metrics::gauge!(PROCESS_CPU_USAGE_PERCENT).set(s.process.cpu_percent);
    }
}

/// The monitor's own figures, after each sample.
pub(crate) fn publish_cost(last_sample_seconds: f64, cost: &MonitorCost) {
    metrics::gauge!(MONITOR_SAMPLE_SECONDS).set(last_sample_seconds);
    metrics::gauge!(MONITOR_CPU_SHARE_PERCENT).set(cost.cpu_share_percent);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder};

    use super::*;
    use crate::sample::{CpuSample, DiskUsage, GpuSample};

    /// Records which series were touched, as `name{label=value,…}`.
    #[derive(Default)]
    struct Names(Mutex<BTreeSet<String>>);

    impl Names {
        fn note(&self, key: &Key) {
            let labels: Vec<_> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            let series = format!("{}{{{}}}", key.name(), labels.join(","));
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(series);
        }
    }

    impl Recorder for Names {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            self.note(key);
            Counter::noop()
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            self.note(key);
            Gauge::noop()
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            self.note(key);
            Histogram::noop()
        }
    }

    #[test]
    fn names_are_prefixed_unique_and_leave_process_series_to_the_server() {
        let unique: BTreeSet<_> = ALL_NAMES.iter().collect();
        assert_eq!(unique.len(), ALL_NAMES.len());
        for name in ALL_NAMES {
            assert!(
                name.starts_with("osprey_system_")
                    || name.starts_with("osprey_gpu_")
                    || name.starts_with("osprey_process_")
                    || name.starts_with("osprey_monitor_"),
                "{name}"
            );
        }
    }

    #[test]
    fn publication_uses_only_listed_names_and_bounded_labels() {
        let sample = ResourceSample {
            cpu: CpuSample { total_percent: 50.0, per_core_percent: vec![40.0, 60.0], iowait_percent: 1.0, cores: 2 },
            disks: vec![DiskUsage { mount: "/".into(), ..Default::default() }],
            disk_read_bytes_total: 1,
            disk_written_bytes_total: 1,
            net_rx_bytes_total: 1,
            net_tx_bytes_total: 1,
            gpu: vec![GpuSample { index: 0, ..Default::default() }],
            ..Default::default()
        };
        let recorder = Names::default();
        metrics::with_local_recorder(&recorder, || {
            describe();
            let mut publisher = Publisher::default();
            publisher.publish(&sample);
            publisher.publish(&sample);
            publish_cost(0.001, &MonitorCost::default());
        });
        let series = recorder.0.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        let names: BTreeSet<&str> = series.iter().filter_map(|s| s.split('{').next()).collect();
        assert_eq!(names, ALL_NAMES.iter().copied().collect(), "every listed name is published and nothing else");
        for expected in [
            "osprey_system_cpu_usage_percent{cpu=total}",
            "osprey_system_cpu_usage_percent{cpu=1}",
            "osprey_system_load_average{window=15m}",
            "osprey_system_disk_free_bytes{mount=/}",
            "osprey_system_tcp_connections{state=time_wait}",
            "osprey_gpu_memory_total_bytes{gpu=0}",
        ] {
            assert!(series.contains(expected), "{expected} missing from {series:?}");
        }
        assert!(!series.iter().any(|s| s.starts_with("process_")));
    }
}
