//! The monitor against this machine's real `/proc`: plausible figures, rates
//! from the second sample, bounded history, the sampling task's lifecycle.
//! Nothing here asserts how fast a sample is; `examples/cost.rs` prints that.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use osprey_monitor::{MonitorSettings, Resolution, ResourceMonitor, ResourceSample};

fn settings() -> MonitorSettings {
    MonitorSettings::default()
}

fn assert_percent(name: &str, value: f64, max: f64) {
    assert!(value.is_finite() && (0.0..=max).contains(&value), "{name} = {value} outside 0..={max}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_sample_of_this_machine_is_plausible() {
    let monitor = ResourceMonitor::new(settings());
    let s = monitor.sample_now();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    assert!(s.ts_ms > 1_600_000_000_000 && s.ts_ms <= now_ms, "{}", s.ts_ms);
    assert_eq!(s.averaged, 1);

    let cores = s.cpu.cores;
    assert!(cores >= 1);
    assert!(s.cpu.per_core_percent.len() >= cores);
    assert_percent("cpu.total", s.cpu.total_percent, 100.0);
    assert_percent("cpu.iowait", s.cpu.iowait_percent, 100.0);
    for (i, pct) in s.cpu.per_core_percent.iter().enumerate() {
        assert_percent(&format!("cpu{i}"), *pct, 100.0);
    }
    assert!(s.load.one >= 0.0 && s.load.five >= 0.0 && s.load.fifteen >= 0.0);

    let m = s.memory;
    assert!(m.total_bytes > 0);
    assert!(m.available_bytes <= m.total_bytes);
    assert_eq!(m.used_bytes, m.total_bytes - m.available_bytes);
    assert_percent("memory.used", m.used_percent, 100.0);
    assert!(m.swap_used_bytes <= m.swap_total_bytes);

    assert!(s.disks.iter().any(|d| d.total_bytes > 0), "no filesystem found: {:?}", s.disks);
    for d in &s.disks {
        assert!(d.free_bytes <= d.total_bytes, "{d:?}");
        assert_percent(&d.mount, d.used_percent, 100.0);
        assert!(!["proc", "sysfs", "tmpfs", "cgroup", "cgroup2", "devpts"].contains(&d.fs_type.as_str()), "{d:?}");
    }

    let p = s.process;
    assert!(p.rss_bytes > 0 && p.virtual_bytes >= p.rss_bytes, "{p:?}");
    assert!(p.threads >= 1);
    assert!(p.open_fds >= 3 && p.open_fds <= p.max_fds, "{p:?}");
    assert_percent("process.cpu", p.cpu_percent, 100.0 * cores as f64);
    let now_s = now_ms as f64 / 1000.0;
    assert!(p.start_time_unix > 1_600_000_000.0 && p.start_time_unix <= now_s + 1.0, "{p:?}");

    assert!(s.tcp.total >= s.tcp.time_wait, "{:?}", s.tcp);
    assert!(s.gpu.is_empty() || cfg!(feature = "cuda"));

    // serde_json may move a float's last digit, so compare integers exactly and floats closely.
    let back: ResourceSample = serde_json::from_str(&serde_json::to_string(&s).unwrap_or_default()).unwrap_or_default();
    assert_eq!(
        (back.ts_ms, back.memory.total_bytes, back.process.rss_bytes, back.tcp),
        (s.ts_ms, m.total_bytes, p.rss_bytes, s.tcp)
    );
    assert_eq!(back.disks.len(), s.disks.len());
    assert!((back.memory.used_percent - m.used_percent).abs() < 1e-9, "samples survive JSON");
}

#[cfg(target_os = "linux")]
#[test]
fn rates_appear_from_the_second_sample_and_counters_only_grow() {
    let monitor = ResourceMonitor::new(settings());
    let first = monitor.sample_now();
    assert!(first.disk_io.is_none() && first.network.is_none(), "no previous sample to compare with");
    std::thread::sleep(Duration::from_millis(50));
    let second = monitor.sample_now();
    let (io, net) = (second.disk_io.unwrap_or_default(), second.network.unwrap_or_default());
    assert!(second.disk_io.is_some() && second.network.is_some());
    for (name, rate) in [
        ("read", io.read_bytes_per_sec),
        ("write", io.write_bytes_per_sec),
        ("rx", net.rx_bytes_per_sec),
        ("tx", net.tx_bytes_per_sec),
    ] {
        assert!(rate.is_finite() && rate >= 0.0, "{name} = {rate}");
    }
    assert!(second.disk_read_bytes_total >= first.disk_read_bytes_total);
    assert!(second.disk_written_bytes_total >= first.disk_written_bytes_total);
    assert!(second.net_rx_bytes_total >= first.net_rx_bytes_total);
    assert!(second.net_tx_bytes_total >= first.net_tx_bytes_total);
}

/// utime + stime of this process, clock ticks.
#[cfg(target_os = "linux")]
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after.split_whitespace().skip(11).take(2).filter_map(|f| f.parse::<u64>().ok()).sum()
}

#[cfg(target_os = "linux")]
#[test]
fn process_cpu_reflects_work_done_between_samples() {
    let monitor = ResourceMonitor::new(settings());
    monitor.sample_now();
    // Spin until the kernel has charged this process a few ticks, however
    // busy the machine, and past the figure's 100 ms minimum window; the
    // deadline only keeps a broken clock from hanging the test.
    let (start, began) = (cpu_ticks(), std::time::Instant::now());
    let deadline = began + Duration::from_secs(20);
    let mut x = 0u64;
    while (cpu_ticks() < start + 5 || began.elapsed() < Duration::from_millis(150))
        && std::time::Instant::now() < deadline
    {
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
    let s = monitor.sample_now();
    assert!(s.process.cpu_percent > 0.0, "{:?}", s.process);
}

#[cfg(target_os = "linux")]
#[test]
fn tcp_counts_see_our_own_sockets() -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let client = std::net::TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    let monitor = ResourceMonitor::new(settings());
    let tcp = monitor.sample_now().tcp;
    // Lower bounds only: other tests open and close sockets concurrently.
    assert!(tcp.listen >= 1, "{tcp:?}");
    assert!(tcp.established >= 2, "both ends of the connection: {tcp:?}");
    assert!(tcp.total >= 3, "{tcp:?}");
    drop((client, server));
    Ok(())
}

#[test]
fn history_is_bounded_oldest_first_and_filters_by_time() {
    let monitor = ResourceMonitor::new(MonitorSettings { fine_capacity: 5, ..settings() });
    assert!(monitor.latest().is_none());
    let taken: Vec<ResourceSample> = (0..8).map(|_| monitor.sample_now()).collect();

    let fine = monitor.history(Resolution::Fine, None);
    assert_eq!(fine.len(), 5);
    assert_eq!(fine, taken[3..], "the five newest, oldest first");
    assert_eq!(monitor.latest().as_ref(), taken.last());

    let since = fine[2].ts_ms;
    let recent = monitor.history(Resolution::Fine, Some(since));
    assert!(recent.len() >= 3 && recent.iter().all(|s| s.ts_ms >= since));
    assert!(monitor.history(Resolution::Fine, Some(i64::MAX)).is_empty());
    assert_eq!(monitor.cost().samples, 8);
}

#[cfg(unix)]
#[test]
fn configured_mounts_are_the_only_disks() {
    let monitor = ResourceMonitor::new(MonitorSettings { mounts: vec!["/".into()], ..settings() });
    let s = monitor.sample_now();
    assert_eq!(s.disks.len(), 1, "{:?}", s.disks);
    assert_eq!(s.disks[0].mount, "/");
    assert!(s.disks[0].total_bytes > 0);
}

#[test]
fn cost_counts_every_sample() {
    let monitor = ResourceMonitor::new(settings());
    assert_eq!(monitor.cost().samples, 0);
    for _ in 0..3 {
        monitor.sample_now();
    }
    let cost = monitor.cost();
    assert_eq!(cost.samples, 3);
    assert!(cost.mean_sample_us > 0.0 && cost.max_sample_us >= cost.mean_sample_us, "{cost:?}");
    assert!(cost.elapsed_seconds > 0.0 && cost.cpu_share_percent > 0.0, "{cost:?}");
}

#[tokio::test(start_paused = true)]
async fn the_task_samples_every_interval_until_stopped() {
    let monitor = ResourceMonitor::new(settings());
    let task = monitor.spawn();
    // Ticks at 0, 1, 2, 3 and 4 s; time only moves when everything is idle.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    assert_eq!(monitor.cost().samples, 5);
    assert_eq!(monitor.history(Resolution::Fine, None).len(), 5);

    monitor.stop();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("stops promptly").expect("did not panic");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(monitor.cost().samples, 5, "no samples after stop");

    // A later spawn starts afresh.
    let again = monitor.spawn();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(monitor.cost().samples, 7);
    again.abort();
}

#[tokio::test(start_paused = true)]
async fn the_task_ends_when_the_monitor_is_dropped() {
    let monitor = ResourceMonitor::new(settings());
    let task = monitor.spawn();
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(monitor);
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("ends with the monitor").expect("did not panic");
}

#[tokio::test(start_paused = true)]
async fn a_disabled_monitor_spawns_nothing() {
    let monitor = ResourceMonitor::new(MonitorSettings { enabled: false, ..settings() });
    monitor.spawn().await.expect("ends at once");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(monitor.cost().samples, 0);
    assert!(monitor.latest().is_none());
    assert!(!monitor.settings().enabled);
}
