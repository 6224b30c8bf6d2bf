//! The load generator watching itself: CPU time from `/proc`, peak memory,
//! and the verdict on whether a figure measures the server or the tool.
//!
//! Linux only; elsewhere the figures are absent (`None`), never invented.
//! `/proc` reports CPU time in clock ticks; the tick is 100 Hz on every
//! mainstream Linux build (`USER_HZ`), which is assumed here.

use std::time::Duration;

const TICKS_PER_SECOND: u64 = 100;

/// User and system CPU time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTime {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTime {
    pub fn total(self) -> Duration {
        self.user + self.system
    }

    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime { user: self.user.saturating_sub(earlier.user), system: self.system.saturating_sub(earlier.system) }
    }
}

/// CPU time of the whole process.
pub fn process_cpu() -> Option<CpuTime> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// CPU time of the calling thread.
pub fn thread_cpu() -> Option<CpuTime> {
    parse_stat(&std::fs::read_to_string("/proc/thread-self/stat").ok()?)
}

/// Peak resident set size of the process (`VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `utime` and `stime` (fields 14 and 15) of a `/proc/.../stat` line.
fn parse_stat(text: &str) -> Option<CpuTime> {
    // The command name (field 2) may contain spaces and parentheses; fields resume after the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    let tick = |t: u64| Duration::from_millis(t * 1000 / TICKS_PER_SECOND);
    Some(CpuTime { user: tick(user), system: tick(system) })
}

/// A generator thread busier than this share of wall time was CPU-bound.
pub const BUSY_THREAD: f64 = 0.9;
/// Open-model scheduler lag (p99) beyond which sends were visibly late.
pub const LATE_SCHEDULER_MS: f64 = 10.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_with_awkward_names() {
        let line = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 3 0 100 0 0";
        let cpu = parse_stat(line).expect("parses");
        assert_eq!(cpu.user, Duration::from_millis(2500));
        assert_eq!(cpu.system, Duration::from_millis(750));
    }

    #[test]
    fn reads_this_process() {
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(process_cpu().is_some());
            assert!(thread_cpu().is_some());
            assert!(peak_rss_bytes().is_some_and(|b| b > 0));
        }
    }
}
