//! Parsers for the `/proc` text the monitor reads, one pure function per
//! file.
//!
//! They take the file's text and allocate nothing per line, so the sampler
//! can read every file into one reused buffer and parse it in place. They
//! are forgiving where the kernel's format varies (older kernels have fewer
//! columns, CPUs go offline, interface names touch their counters) and strict
//! only about what a sample cannot do without. They live apart from the
//! readers so that tests can feed them captured text.

use crate::sample::{percent, LoadAverage, MemorySample, TcpSample};

/// What went wrong parsing a file; the reader adds the path.
pub(crate) type ParseError = &'static str;

/// Bytes per sector in `/proc/diskstats`, whatever the device's real sector size.
const DISKSTATS_SECTOR: u64 = 512;

/// The jiffies of one `cpu` line of `/proc/stat`, reduced to what the
/// percentages need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    /// user + nice + system + idle + iowait + irq + softirq + steal (guest
    /// time is already inside user and nice).
    pub total: u64,
    pub idle: u64,
    pub iowait: u64,
}

impl CpuTimes {
    /// Busy and iowait percent of the time between `prev` and `self`.
    ///
    /// Counters can step backwards (iowait notably does on some kernels), so
    /// every difference saturates and the results are clamped to 0–100.
    pub fn percent_since(&self, prev: &CpuTimes) -> (f64, f64) {
        let total = self.total.saturating_sub(prev.total);
        if total == 0 {
            return (0.0, 0.0);
        }
        let idle = self.idle.saturating_sub(prev.idle);
        let iowait = self.iowait.saturating_sub(prev.iowait);
        let busy = total.saturating_sub(idle.saturating_add(iowait));
        (percent(busy, total), percent(iowait, total))
    }
}

/// The parts of `/proc/stat` the monitor uses.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct KernelStat {
    /// The aggregate `cpu` line.
    pub all: CpuTimes,
    /// `cpuN` lines by N; `None` for CPUs without a line (offline).
    pub cores: Vec<Option<CpuTimes>>,
    /// Number of `cpuN` lines.
    pub online: usize,
    /// Boot time, unix seconds.
    pub btime: Option<u64>,
}

/// Parses `/proc/stat` into `out`, reusing its per-core vector.
pub(crate) fn parse_stat(text: &str, out: &mut KernelStat) -> Result<(), ParseError> {
    out.cores.clear();
    out.online = 0;
    out.btime = None;
    let mut seen_all = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("cpu") {
            let (id, fields) = rest.split_once(' ').unwrap_or((rest, ""));
            let Some(times) = parse_cpu_fields(fields) else { continue };
            if id.is_empty() {
                out.all = times;
                seen_all = true;
            } else if let Ok(n) = id.parse::<usize>() {
                if n >= out.cores.len() {
                    out.cores.resize(n + 1, None);
                }
                out.cores[n] = Some(times);
                out.online += 1;
            }
        } else if let Some(rest) = line.strip_prefix("btime ") {
            out.btime = rest.trim().parse().ok();
        }
    }
    if seen_all {
        Ok(())
    } else {
        Err("no aggregate `cpu` line")
    }
}

/// The numbers after `cpuN`; at least user, nice, system and idle.
fn parse_cpu_fields(fields: &str) -> Option<CpuTimes> {
    let mut v = [0u64; 8];
    let mut n = 0;
    for field in fields.split_ascii_whitespace().take(v.len()) {
        v[n] = field.parse().ok()?;
        n += 1;
    }
    if n < 4 {
        return None;
    }
    let [user, nice, system, idle, iowait, irq, softirq, steal] = v;
    let total = [user, nice, system, idle, iowait, irq, softirq, steal].iter().fold(0u64, |a, b| a.saturating_add(*b));
    Some(CpuTimes { total, idle, iowait })
}

/// Parses `/proc/meminfo` (values in kB). Kernels before 3.14 lack
/// `MemAvailable`; there it is estimated as free + buffers + page cache.
pub(crate) fn parse_meminfo(text: &str) -> Result<MemorySample, ParseError> {
    let (mut total, mut available) = (None, None);
    let (mut free, mut buffers, mut cached, mut swap_total, mut swap_free) = (0, 0, 0, 0, 0);
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else { continue };
        match key {
            "MemTotal" => total = Some(kib(rest)),
            "MemAvailable" => available = Some(kib(rest)),
            "MemFree" => free = kib(rest),
            "Buffers" => buffers = kib(rest),
            "Cached" => cached = kib(rest),
            "SwapTotal" => swap_total = kib(rest),
            "SwapFree" => {
                swap_free = kib(rest);
                // The last key needed; the rest of the file is not.
                break;
            }
            _ => {}
        }
    }
    let total_bytes = total.ok_or("no MemTotal")?;
    let available_bytes = available.unwrap_or(free + buffers + cached).min(total_bytes);
    let used_bytes = total_bytes - available_bytes;
    Ok(MemorySample {
        total_bytes,
        available_bytes,
        used_bytes,
        used_percent: percent(used_bytes, total_bytes),
        swap_total_bytes: swap_total,
        swap_used_bytes: swap_total.saturating_sub(swap_free),
    })
}

/// A `/proc/meminfo` value (`"   16314060 kB"`) in bytes; 0 when unreadable.
fn kib(rest: &str) -> u64 {
    let number = rest.split_ascii_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    number.saturating_mul(1024)
}

/// Parses `/proc/loadavg` (`"0.52 0.58 0.59 1/467 12345"`).
pub(crate) fn parse_loadavg(text: &str) -> Result<LoadAverage, ParseError> {
    let mut it = text.split_ascii_whitespace().map(|f| f.parse::<f64>());
    match (it.next(), it.next(), it.next()) {
        (Some(Ok(one)), Some(Ok(five)), Some(Ok(fifteen))) => Ok(LoadAverage { one, five, fifteen }),
        _ => Err("expected three load averages"),
    }
}

/// Sums bytes read and written over the devices `is_disk` accepts, from
/// `/proc/diskstats`. Short or malformed lines are skipped.
pub(crate) fn parse_diskstats(text: &str, mut is_disk: impl FnMut(&str) -> bool) -> (u64, u64) {
    let (mut read, mut written) = (0u64, 0u64);
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(name) = f.nth(2) else { continue };
        // After the name: reads, reads merged, sectors read, ms reading,
        // writes, writes merged, sectors written.
        let (Some(r), Some(w)) = (f.nth(2), f.nth(3)) else { continue };
        let (Ok(r), Ok(w)) = (r.parse::<u64>(), w.parse::<u64>()) else { continue };
        if is_disk(name) {
            read = read.saturating_add(r.saturating_mul(DISKSTATS_SECTOR));
            written = written.saturating_add(w.saturating_mul(DISKSTATS_SECTOR));
        }
    }
    (read, written)
}

/// Guesses from its name whether a block device is a whole physical disk,
/// for hosts where `/sys/block` cannot tell: no partitions, loop, RAM, zram,
/// device-mapper or md devices (the last two would count their members'
/// traffic twice).
pub(crate) fn looks_like_whole_disk(name: &str) -> bool {
    const VIRTUAL: [&str; 6] = ["loop", "ram", "zram", "dm-", "md", "fd"];
    if VIRTUAL.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    let ends_in_digit = name.ends_with(|c: char| c.is_ascii_digit());
    for prefix in ["nvme", "mmcblk", "nbd", "rbd"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            // nvme0n1 / mmcblk0 are disks, nvme0n1p2 / mmcblk0p1 partitions.
            return !rest.contains('p');
        }
    }
    // sda, vdb, xvdc, hdd: a trailing digit is a partition number.
    !ends_in_digit
}

/// Sums bytes received and sent over every interface but `lo`, from
/// `/proc/net/dev`.
pub(crate) fn parse_net_dev(text: &str) -> Result<(u64, u64), ParseError> {
    let (mut rx, mut tx) = (0u64, 0u64);
    for line in text.lines() {
        // Header lines have no colon; counters may touch it ("eth0:123").
        let Some((name, counters)) = line.split_once(':') else { continue };
        if name.trim() == "lo" {
            continue;
        }
        let mut f = counters.split_ascii_whitespace();
        let (Some(r), Some(t)) = (f.next(), f.nth(7)) else { return Err("short interface line") };
        let (Ok(r), Ok(t)) = (r.parse::<u64>(), t.parse::<u64>()) else { return Err("non-numeric byte counter") };
        rx = rx.saturating_add(r);
        tx = tx.saturating_add(t);
    }
    Ok((rx, tx))
}

/// Adds the sockets of one `/proc/net/tcp` or `/proc/net/tcp6` to `out`.
pub(crate) fn count_tcp_states(text: &str, out: &mut TcpSample) {
    // The first line is the column header.
    for line in text.lines().skip(1) {
        // sl, local address, remote address, state (hex, as in TCP_ESTABLISHED = 1).
        let Some(state) = line.split_ascii_whitespace().nth(3) else { continue };
        match u8::from_str_radix(state, 16) {
            Ok(0x01) => out.established += 1,
            Ok(0x06) => out.time_wait += 1,
            Ok(0x0A) => out.listen += 1,
            Ok(_) => {}
            Err(_) => continue,
        }
        out.total += 1;
    }
}

/// `CurrEstab` from `/proc/net/snmp`: TCP connections (IPv4 and IPv6) in
/// ESTABLISHED or CLOSE-WAIT. The `Tcp:` section is a header line of names
/// followed by a line of values.
pub(crate) fn parse_snmp_curr_estab(text: &str) -> Result<u64, ParseError> {
    let mut tcp = text.lines().filter_map(|l| l.strip_prefix("Tcp:"));
    let (Some(names), Some(values)) = (tcp.next(), tcp.next()) else { return Err("no Tcp section") };
    let column = names.split_ascii_whitespace().position(|n| n == "CurrEstab").ok_or("no CurrEstab column")?;
    let value = values.split_ascii_whitespace().nth(column).ok_or("short Tcp values line")?;
    value.parse().map_err(|_| "non-numeric CurrEstab")
}

/// Sockets in use and in TIME-WAIT from the line starting with `prefix` in
/// `/proc/net/sockstat` (`"TCP: inuse 16 orphan 0 tw 2 alloc 19 mem 0"`) or
/// `/proc/net/sockstat6` (`"TCP6: inuse 2"`, no `tw`: it is shared).
pub(crate) fn parse_sockstat_tcp(text: &str, prefix: &str) -> Result<(u64, u64), ParseError> {
    let line = text.lines().find_map(|l| l.strip_prefix(prefix)).ok_or("no TCP line")?;
    let (mut inuse, mut tw) = (None, 0);
    let mut f = line.split_ascii_whitespace();
    while let (Some(key), Some(value)) = (f.next(), f.next()) {
        match key {
            "inuse" => inuse = Some(value.parse().map_err(|_| "non-numeric inuse")?),
            "tw" => tw = value.parse().map_err(|_| "non-numeric tw")?,
            _ => {}
        }
    }
    Ok((inuse.ok_or("no inuse count")?, tw))
}

/// The parts of `/proc/self/stat` the monitor uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SelfStat {
    /// utime + stime, clock ticks.
    pub cpu_ticks: u64,
    pub threads: u64,
    /// Start time after boot, clock ticks.
    pub start_ticks: u64,
    pub virtual_bytes: u64,
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name in field 2 may contain spaces
/// and parentheses, so fields are counted from its last `)`.
pub(crate) fn parse_self_stat(text: &str) -> Result<SelfStat, ParseError> {
    let (_, rest) = text.rsplit_once(')').ok_or("no `)` after the command name")?;
    // Field 3 (state) is index 0 here, so field N is index N - 3.
    let mut f = rest.split_ascii_whitespace();
    let mut field = |skip: usize| f.nth(skip).ok_or("too few fields");
    let utime = field(14 - 3)?;
    let stime = field(0)?;
    let threads = field(20 - 15 - 1)?;
    let start = field(22 - 20 - 1)?;
    let vsize = field(0)?;
    let rss = field(0)?;
    let num = |s: &str| s.parse::<u64>().map_err(|_| "non-numeric field");
    Ok(SelfStat {
        cpu_ticks: num(utime)?.saturating_add(num(stime)?),
        threads: num(threads)?,
        start_ticks: num(start)?,
        virtual_bytes: num(vsize)?,
        // A signed field; a transiently negative value means none.
        rss_pages: rss.parse::<i64>().map_err(|_| "non-numeric rss")?.max(0).unsigned_abs(),
    })
}

/// The soft open-files limit from `/proc/<pid>/limits`; `u64::MAX` for unlimited.
pub(crate) fn parse_max_open_files(text: &str) -> Result<u64, ParseError> {
    let line = text.lines().find_map(|l| l.strip_prefix("Max open files")).ok_or("no `Max open files` line")?;
    match line.split_ascii_whitespace().next() {
        Some("unlimited") => Ok(u64::MAX),
        Some(soft) => soft.parse().map_err(|_| "non-numeric open-files limit"),
        None => Err("empty `Max open files` line"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "\
cpu  4705 356 584 3699176 23060 0 277 0 0 0
cpu0 1393 280 290 1853244 11474 0 139 0 0 0
cpu2 3312 76 294 1845932 11586 0 138 0 0 0
cpufreq junk
intr 114930548 113199788 3 0 5 263 0 4 [... thousands of numbers ...]
ctxt 1990473
btime 1062191376
processes 2915
procs_running 1
softirq 183433 0 21755 12 39 1137 231 21459 2263
";

    #[test]
    fn stat_reads_aggregate_and_per_core_lines_and_skips_odd_ones() -> Result<(), ParseError> {
        let mut k = KernelStat::default();
        parse_stat(STAT, &mut k)?;
        assert_eq!(k.all, CpuTimes { total: 4705 + 356 + 584 + 3699176 + 23060 + 277, idle: 3699176, iowait: 23060 });
        assert_eq!(k.cores.len(), 3, "cpu1 is offline but cpu2 keeps its index");
        assert!(k.cores[1].is_none());
        assert_eq!(k.cores[2].map(|c| c.idle), Some(1845932));
        assert_eq!(k.online, 2);
        assert_eq!(k.btime, Some(1062191376));

        // Parsing again reuses the buffer and forgets cores that vanished.
        parse_stat("cpu 1 2 3 4\ncpu0 1 2 3 4\n", &mut k)?;
        assert_eq!((k.cores.len(), k.online, k.btime), (1, 1, None));
        assert_eq!(k.all, CpuTimes { total: 10, idle: 4, iowait: 0 }, "pre-2.6 kernels have four columns");

        assert!(parse_stat("intr 1 2 3\n", &mut k).is_err());
        assert!(parse_stat("cpu 1 2 x 4\n", &mut k).is_err(), "a garbled aggregate line is not trusted");
        Ok(())
    }

    #[test]
    fn cpu_percentages_come_from_deltas_and_saturate() {
        let prev = CpuTimes { total: 1000, idle: 800, iowait: 50 };
        let now = CpuTimes { total: 1200, idle: 900, iowait: 70 };
        // 200 ticks: 100 idle, 20 iowait, 80 busy.
        assert_eq!(now.percent_since(&prev), (40.0, 10.0));
        assert_eq!(now.percent_since(&now), (0.0, 0.0), "no time passed");
        let iowait_went_back = CpuTimes { total: 1100, idle: 850, iowait: 10 };
        let (busy, iowait) = iowait_went_back.percent_since(&prev);
        assert_eq!((busy, iowait), (50.0, 0.0));
    }

    #[test]
    fn meminfo_uses_available_or_estimates_it() -> Result<(), ParseError> {
        let text = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    4000000 kB\n\
                    Buffers:          100000 kB\nCached:          2000000 kB\nSwapCached:            0 kB\n\
                    SwapTotal:       2000000 kB\nSwapFree:        1500000 kB\nDirty:  12 kB\n";
        let m = parse_meminfo(text)?;
        assert_eq!(m.total_bytes, 16_000_000 * 1024);
        assert_eq!(m.available_bytes, 4_000_000 * 1024);
        assert_eq!(m.used_bytes, 12_000_000 * 1024);
        assert_eq!(m.used_percent, 75.0);
        assert_eq!((m.swap_total_bytes, m.swap_used_bytes), (2_000_000 * 1024, 500_000 * 1024));

        let old_kernel = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n";
        let m = parse_meminfo(old_kernel)?;
        assert_eq!(m.available_bytes, 400 * 1024);
        assert_eq!((m.swap_total_bytes, m.swap_used_bytes), (0, 0));

        assert!(parse_meminfo("MemFree: 1 kB\n").is_err());
        Ok(())
    }

    #[test]
    fn loadavg_reads_three_figures() -> Result<(), ParseError> {
        assert_eq!(
            parse_loadavg("0.52 0.58 1.59 1/467 12345\n")?,
            LoadAverage { one: 0.52, five: 0.58, fifteen: 1.59 }
        );
        assert!(parse_loadavg("0.52 0.58\n").is_err());
        Ok(())
    }

    #[test]
    fn diskstats_sums_only_whole_disks() {
        let text = "   7       0 loop0 310 0 6000 20 0 0 0 0 0 40 20 0 0 0 0\n\
                    8       0 sda 1000 10 2000 300 500 20 4000 700 0 900 1000\n\
                    8       1 sda1 900 10 1800 290 400 20 3000 600 0 800 900\n\
                    259     0 nvme0n1 100 0 10 1 50 0 20 2 0 3 3 0 0 0 0 0 0\n\
                    259     1 nvme0n1p1 100 0 10 1 50 0 20 2 0 3 3 0 0 0 0 0 0\n\
                    253     0 dm-0 5 0 5 0 5 0 5 0 0 0 0\n\
                    1 0 ram0 1 2\n\
                    \n";
        let (read, written) = parse_diskstats(text, looks_like_whole_disk);
        assert_eq!(read, (2000 + 10) * 512);
        assert_eq!(written, (4000 + 20) * 512);
        let (read, _) = parse_diskstats(text, |name| name == "sda1");
        assert_eq!(read, 1800 * 512);
    }

    #[test]
    fn whole_disk_names() {
        for disk in ["sda", "vdb", "xvda", "nvme0n1", "mmcblk0", "nbd0"] {
            assert!(looks_like_whole_disk(disk), "{disk}");
        }
        for part in ["sda1", "vdb12", "nvme0n1p1", "mmcblk0p2", "loop3", "ram0", "zram0", "dm-1", "md127"] {
            assert!(!looks_like_whole_disk(part), "{part}");
        }
    }

    #[test]
    fn net_dev_sums_every_interface_but_loopback() -> Result<(), ParseError> {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
   lo: 1216754    1128    0    0    0     0          0         0  1216754    1128    0    0    0     0       0          0\n  \
 eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n\
wlan0:4294967296 10 0 0 0 0 0 0 7 20 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(text)?, (1000 + 4294967296, 2000 + 7));
        assert!(parse_net_dev("eth0: 1 2 3\n").is_err());
        assert_eq!(parse_net_dev("Inter-|\n")?, (0, 0));
        Ok(())
    }

    #[test]
    fn tcp_states_are_counted_by_hex_code() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n\
   2: 0100007F:C350 0100007F:1F90 06 00000000:00000000 03:00000F9E 00000000     0        0 0 3\n\
   3: 0100007F:C351 0100007F:1F90 0a 00000000:00000000 00:00000000 00000000     0        0 3 1\n\
   4: 0100007F:C352 0100007F:1F90 08 00000000:00000000 00:00000000 00000000     0        0 4 1\n\
   garbage\n";
        let mut tcp = TcpSample::default();
        count_tcp_states(text, &mut tcp);
        count_tcp_states("  sl  local_address\n", &mut tcp);
        assert_eq!(tcp, TcpSample { established: 1, listen: 2, time_wait: 1, total: 5 });
    }

    #[test]
    fn tcp_counters_from_snmp_and_sockstat() -> Result<(), ParseError> {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs\n\
                    Tcp: 1 200 120000 -1 170 122 14 24 6 15229\n\
                    Udp: InDatagrams\nUdp: 3\n";
        assert_eq!(parse_snmp_curr_estab(snmp)?, 6);
        assert!(parse_snmp_curr_estab("Tcp: RtoAlgorithm\nTcp: 1\n").is_err());
        assert!(parse_snmp_curr_estab("Ip: 1\n").is_err());

        let sockstat = "sockets: used 39\nTCP: inuse 16 orphan 0 tw 2 alloc 19 mem 0\nUDP: inuse 0 mem 0\n";
        assert_eq!(parse_sockstat_tcp(sockstat, "TCP:")?, (16, 2));
        assert_eq!(parse_sockstat_tcp("TCP6: inuse 2\nUDP6: inuse 0\n", "TCP6:")?, (2, 0));
        assert!(parse_sockstat_tcp(sockstat, "TCP6:").is_err());
        assert!(parse_sockstat_tcp("TCP: orphan 0\n", "TCP:").is_err());
        Ok(())
    }

    #[test]
    fn self_stat_counts_fields_after_the_last_parenthesis() -> Result<(), ParseError> {
        let text = "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 2000 0 0 0 \
                    150 50 0 0 20 0 7 0 123456 1073741824 2560 18446744073709551615 1 1 0 0 0 0 0 0 0\n";
        let s = parse_self_stat(text)?;
        assert_eq!(
            s,
            SelfStat { cpu_ticks: 200, threads: 7, start_ticks: 123456, virtual_bytes: 1 << 30, rss_pages: 2560 }
        );
        assert!(parse_self_stat("4242 (x) S 1 2 3\n").is_err());
        assert!(parse_self_stat("4242 x S\n").is_err());
        Ok(())
    }

    #[test]
    fn open_files_limit() -> Result<(), ParseError> {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_open_files(text)?, 1024);
        assert_eq!(parse_max_open_files("Max open files  unlimited  unlimited  files\n")?, u64::MAX);
        assert!(parse_max_open_files("Max processes 1 1\n").is_err());
        Ok(())
    }
}
