//! Prints what the monitor costs: 20 samples at 100 ms through the real
//! sampling task, then `cost()` and the last sample.
//!
//! ```text
//! cargo run -p osprey-monitor --example cost [--features cuda] [-- SAMPLES INTERVAL_MS]
//! ```

use std::time::Duration;

use osprey_monitor::{MonitorSettings, Resolution, ResourceMonitor};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let samples: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20);
    let interval = Duration::from_millis(args.next().map(|a| a.parse()).transpose()?.unwrap_or(100));

    let settings = MonitorSettings { interval, ..MonitorSettings::default() };
    settings.validate()?;
    let monitor = ResourceMonitor::new(settings);
    let task = monitor.spawn();
    while monitor.cost().samples < samples {
        tokio::time::sleep(interval / 4).await;
    }
    monitor.stop();
    task.await?;

    let cost = monitor.cost();
    println!("{}", serde_json::to_string_pretty(&cost)?);
    println!(
        "{} samples at {interval:?}: mean {:.0} µs, max {:.0} µs, {:.3}% of one core ({:.4}% at 1 Hz)",
        cost.samples,
        cost.mean_sample_us,
        cost.max_sample_us,
        cost.cpu_share_percent,
        cost.mean_sample_us / 1e6 * 100.0,
    );
    if let Some(last) = monitor.history(Resolution::Fine, None).last() {
        println!("{}", serde_json::to_string_pretty(last)?);
    }
    Ok(())
}
