//! The sampler on systems without `/proc`: what the standard library,
//! `statvfs` and NVML can tell. CPU counts the available cores, disks are the
//! configured paths (or `/`) on Unix, GPUs come from NVML with the `cuda`
//! feature; everything else stays zero and rates stay `None`.

use std::path::PathBuf;

use crate::gpu::GpuProbe;
use crate::mounts::{self, MountTarget};
use crate::sample::{CpuSample, ResourceSample};
use crate::MonitorSettings;

pub(crate) struct Collector {
    mounts: Vec<MountTarget>,
    gpu: GpuProbe,
}

impl Collector {
    pub(crate) fn new(settings: &MonitorSettings) -> Self {
        let paths = if settings.mounts.is_empty() { vec![PathBuf::from("/")] } else { settings.mounts.clone() };
        let mounts = paths
            .into_iter()
            .map(|path| MountTarget { label: path.display().to_string(), path, fs_type: String::new() })
            .collect();
        Self { mounts, gpu: GpuProbe::new() }
    }

    pub(crate) fn collect(&mut self) -> ResourceSample {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let mut s = ResourceSample {
            ts_ms: crate::unix_ms(),
            averaged: 1,
            cpu: CpuSample { cores, per_core_percent: vec![0.0; cores], ..CpuSample::default() },
            disks: self.mounts.iter().filter_map(mounts::usage).collect(),
            ..ResourceSample::default()
        };
        self.gpu.sample(&mut s.gpu);
        s
    }
}
