//! Monitor settings: what the operator writes under `[monitor]`.
//!
//! Every field has a default, unknown fields are rejected (a typo must not
//! silently leave a default in force), durations are humantime strings
//! (`"1s"`, `"1m"`), and [`MonitorSettings::validate`] checks ranges before
//! anything is built.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Shortest accepted sampling interval: below it the monitor's own cost stops
/// being negligible and `/proc` counters (clock ticks, 10 ms) stop resolving.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Longest accepted interval, for both resolutions.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Upper bound on a ring's length: a sample is a few hundred bytes, so this
/// caps one ring at a few GiB even on a many-core host, which is already absurd.
const MAX_CAPACITY: usize = 10_000_000;

/// How often to sample and how much history to keep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorSettings {
    /// When false, [`crate::ResourceMonitor::spawn`] starts nothing; explicit
    /// [`crate::ResourceMonitor::sample_now`] calls still work.
    pub enabled: bool,
    /// Time between fine samples.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Fine samples kept (the default is one hour at one second).
    pub fine_capacity: usize,
    /// Width of the window each coarse sample averages.
    #[serde(with = "humantime_serde")]
    pub coarse_interval: Duration,
    /// Coarse samples kept (the default is 24 hours at one minute).
    pub coarse_capacity: usize,
    /// Paths whose filesystems to report; empty means every real mounted
    /// filesystem, once per device.
    pub mounts: Vec<PathBuf>,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(1),
            fine_capacity: 3600,
            coarse_interval: Duration::from_secs(60),
            coarse_capacity: 1440,
            mounts: Vec::new(),
        }
    }
}

impl MonitorSettings {
    /// Checks every range; the error names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval < MIN_INTERVAL || self.interval > MAX_INTERVAL {
            return Err(format!("monitor.interval must be between 10ms and 24h, got {:?}", self.interval));
        }
        if self.coarse_interval < self.interval || self.coarse_interval > MAX_INTERVAL {
            return Err(format!(
                "monitor.coarse_interval must be between monitor.interval ({:?}) and 24h, got {:?}",
                self.interval, self.coarse_interval
            ));
        }
        for (field, value) in [("fine_capacity", self.fine_capacity), ("coarse_capacity", self.coarse_capacity)] {
            if value == 0 || value > MAX_CAPACITY {
                return Err(format!("monitor.{field} must be between 1 and {MAX_CAPACITY}, got {value}"));
            }
        }
        if let Some(path) = self.mounts.iter().find(|p| !p.is_absolute()) {
            return Err(format!("monitor.mounts must hold absolute paths, got {}", path.display()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_parse_from_partial_json() -> Result<(), Box<dyn std::error::Error>> {
        let defaults = MonitorSettings::default();
        defaults.validate()?;
        assert!(defaults.enabled);
        assert_eq!(defaults.interval, Duration::from_secs(1));
        assert_eq!((defaults.fine_capacity, defaults.coarse_capacity), (3600, 1440));
        assert_eq!(defaults.coarse_interval, Duration::from_secs(60));

        let s: MonitorSettings = serde_json::from_str(r#"{"interval": "500ms", "mounts": ["/"]}"#)?;
        s.validate()?;
        assert_eq!(s.interval, Duration::from_millis(500));
        assert_eq!(s.coarse_interval, Duration::from_secs(60), "unspecified fields keep defaults");
        assert_eq!(s.mounts, vec![PathBuf::from("/")]);

        let round_trip: MonitorSettings = serde_json::from_str(&serde_json::to_string(&s)?)?;
        assert_eq!(round_trip, s);
        Ok(())
    }

    #[test]
    fn rejects_typos_and_out_of_range_values() {
        assert!(serde_json::from_str::<MonitorSettings>(r#"{"intervall": "1s"}"#).is_err());
        let with = |f: &dyn Fn(&mut MonitorSettings)| {
            let mut s = MonitorSettings::default();
            f(&mut s);
            s.validate()
        };
        assert!(with(&|_| {}).is_ok());
        assert!(with(&|s| s.interval = Duration::ZERO).is_err());
        assert!(with(&|s| s.interval = Duration::from_millis(5)).is_err());
        assert!(with(&|s| s.coarse_interval = Duration::ZERO).is_err());
        assert!(with(&|s| s.coarse_interval = Duration::from_millis(500)).is_err(), "coarser than fine");
        assert!(with(&|s| s.coarse_interval = s.interval).is_ok());
        assert!(with(&|s| s.fine_capacity = 0).is_err());
        assert!(with(&|s| s.coarse_capacity = 0).is_err());
        assert!(with(&|s| s.fine_capacity = 1).is_ok());
        assert!(with(&|s| s.mounts = vec!["data".into()]).is_err());
        assert!(with(&|s| s.mounts = vec!["/data".into()]).is_ok());
        let msg = with(&|s| s.fine_capacity = 0).err().unwrap_or_default();
        assert!(msg.contains("fine_capacity"), "{msg}");
    }
}
