//! Which filesystems to report, and how full they are.
//!
//! With no configured paths, the monitor reports every *real* filesystem in
//! `/proc/self/mountinfo`: pseudo filesystems (proc, sysfs, cgroup, tmpfs,
//! devpts, …) are skipped, and a device mounted several times (bind mounts,
//! a container's `/etc/hosts`) is reported once, preferring the mount of its
//! root. `overlay` counts as real: it is a container's root filesystem.
//! Filesystems reporting zero blocks are dropped when measured.
//!
//! The mount list is re-read now and then by the sampler, not every sample;
//! `statvfs` runs every sample.
// Parsing mountinfo is only reached on Linux.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::path::{Path, PathBuf};

use crate::sample::DiskUsage;

/// Filesystem types that hold no user data worth a disk gauge.
const PSEUDO_FS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fuse.gvfsd-fuse",
    "fuse.lxcfs",
    "fuse.portal",
    "fuse.snapfuse",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "nfsd",
    "pipefs",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "sockfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// One line of `/proc/self/mountinfo`, reduced to what selection needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MountEntry {
    /// `major:minor` of the device.
    pub device: String,
    /// The directory of the filesystem that is mounted here (`/` unless a bind mount).
    pub root: String,
    pub mount_point: String,
    pub fs_type: String,
}

/// A filesystem the sampler measures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MountTarget {
    pub path: PathBuf,
    /// The `mount` label: the mount point, or the configured path.
    pub label: String,
    pub fs_type: String,
}

/// Parses `/proc/<pid>/mountinfo`, skipping malformed lines.
///
/// Fields: id, parent id, major:minor, root, mount point, options, optional
/// fields ended by `-`, type, source, super options. Paths escape space, tab,
/// newline and backslash as octal (`\040`).
pub(crate) fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split(' ');
        let (Some(device), Some(root), Some(mount_point)) = (f.nth(2), f.next(), f.next()) else { continue };
        // Skip the options and the optional fields up to the separator.
        if !f.any(|x| x == "-") {
            continue;
        }
        let Some(fs_type) = f.next() else { continue };
        out.push(MountEntry {
            device: device.to_owned(),
            root: unescape(root),
            mount_point: unescape(mount_point),
            fs_type: fs_type.to_owned(),
        });
    }
    out
}

/// Undoes the kernel's octal escapes (`\040` → space).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal =
            bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn is_pseudo_fs(fs_type: &str) -> bool {
    PSEUDO_FS.contains(&fs_type)
}

/// What to measure: the configured paths, or every real filesystem once.
pub(crate) fn targets(entries: &[MountEntry], configured: &[PathBuf]) -> Vec<MountTarget> {
    if !configured.is_empty() {
        return configured
            .iter()
            .map(|path| MountTarget {
                path: path.clone(),
                label: path.display().to_string(),
                fs_type: containing_mount(entries, path).map(|e| e.fs_type.clone()).unwrap_or_default(),
            })
            .collect();
    }
    let mut chosen: Vec<&MountEntry> = Vec::new();
    for entry in entries.iter().filter(|e| !is_pseudo_fs(&e.fs_type)) {
        match chosen.iter_mut().find(|c| c.device == entry.device) {
            Some(current) if prefer(entry, current) => *current = entry,
            Some(_) => {}
            None => chosen.push(entry),
        }
    }
    chosen.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    chosen
        .into_iter()
        .map(|e| MountTarget {
            path: e.mount_point.clone().into(),
            label: e.mount_point.clone(),
            fs_type: e.fs_type.clone(),
        })
        .collect()
}

/// Of two mounts of one device, the one that shows its whole filesystem,
/// then the shorter path.
fn prefer(candidate: &MountEntry, current: &MountEntry) -> bool {
    let key = |e: &MountEntry| (e.root != "/", e.mount_point.len());
    key(candidate) < key(current)
}

/// The mount a path lives on: the longest mount point that contains it.
fn containing_mount<'a>(entries: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    entries.iter().filter(|e| path.starts_with(&e.mount_point)).max_by_key(|e| e.mount_point.len())
}

/// Size and free space of one filesystem; `None` when it cannot be measured
/// or has no blocks (a pseudo filesystem the list did not know).
#[cfg(unix)]
pub(crate) fn usage(target: &MountTarget) -> Option<DiskUsage> {
    let s = rustix::fs::statvfs(&target.path).ok()?;
    if s.f_blocks == 0 {
        return None;
    }
    let block = if s.f_frsize > 0 { s.f_frsize } else { s.f_bsize };
    let free_bytes = s.f_bavail.saturating_mul(block);
    let used_bytes = s.f_blocks.saturating_sub(s.f_bfree).saturating_mul(block);
    Some(DiskUsage {
        mount: target.label.clone(),
        fs_type: target.fs_type.clone(),
        total_bytes: s.f_blocks.saturating_mul(block),
        free_bytes,
        // Like df: the root reserve counts as neither used nor available.
        used_percent: crate::sample::percent(used_bytes, used_bytes.saturating_add(free_bytes)),
    })
}

#[cfg(not(unix))]
pub(crate) fn usage(_target: &MountTarget) -> Option<DiskUsage> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
28 27 0:25 / /mnt/my\\040disk rw,relatime master:3 propagate_from:2 - xfs /dev/sdb1 rw
29 27 254:0 /var/lib/docker/containers/abc/hosts /etc/hosts rw - ext4 /dev/vda rw
30 27 0:40 / /merged rw - overlay overlay rw,lowerdir=/a
31 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684092k
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
bad line
33 27 0:50 / /nosep rw
";

    #[test]
    fn mountinfo_lines_parse_with_escapes_and_optional_fields() {
        let entries = parse_mountinfo(MOUNTINFO);
        assert_eq!(entries.len(), 7, "two malformed lines skipped");
        assert_eq!(
            entries[2],
            MountEntry {
                device: "0:25".into(),
                root: "/".into(),
                mount_point: "/mnt/my disk".into(),
                fs_type: "xfs".into()
            }
        );
        assert_eq!(entries[3].root, "/var/lib/docker/containers/abc/hosts");
        assert_eq!(unescape(r"a\134b\011c\0"), "a\\b\tc\\0");
    }

    #[test]
    fn real_filesystems_are_chosen_once_per_device() {
        let entries = parse_mountinfo(MOUNTINFO);
        let labels: Vec<_> = targets(&entries, &[]).into_iter().map(|t| (t.label, t.fs_type)).collect();
        assert_eq!(
            labels,
            [("/".into(), "ext4".into()), ("/merged".into(), "overlay".into()), ("/mnt/my disk".into(), "xfs".into())]
        );

        // A device seen only through a bind mount is still reported, once.
        let bind_only: Vec<_> = entries.iter().filter(|e| e.mount_point != "/").cloned().collect();
        let labels: Vec<_> = targets(&bind_only, &[]).into_iter().map(|t| t.label).collect();
        assert!(labels.contains(&"/etc/hosts".to_string()), "{labels:?}");
    }

    #[test]
    fn configured_paths_take_the_type_of_their_mount() {
        let entries = parse_mountinfo(MOUNTINFO);
        let t = targets(&entries, &["/mnt/my disk/models".into(), "/srv".into()]);
        assert_eq!((t[0].label.as_str(), t[0].fs_type.as_str()), ("/mnt/my disk/models", "xfs"));
        assert_eq!((t[1].label.as_str(), t[1].fs_type.as_str()), ("/srv", "ext4"));
    }

    #[cfg(unix)]
    #[test]
    fn root_filesystem_has_a_size() {
        let root = MountTarget { path: "/".into(), label: "/".into(), fs_type: String::new() };
        let u = usage(&root).expect("statvfs(/) works");
        assert!(u.total_bytes > 0 && u.free_bytes <= u.total_bytes, "{u:?}");
        assert!((0.0..=100.0).contains(&u.used_percent));
        let missing = MountTarget { path: "/definitely/not/here".into(), ..root };
        assert!(usage(&missing).is_none());
    }
}
