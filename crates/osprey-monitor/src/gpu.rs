//! GPU figures through NVML, with the `cuda` feature.
//!
//! NVML is opened on the first sample, not at start-up, and only once: on a
//! host without the driver or a GPU, `Nvml::init` fails, the failure is
//! logged once at debug level and every later sample reports no GPUs without
//! trying again. Without the feature this is an empty stub.

use crate::sample::GpuSample;

#[cfg(feature = "cuda")]
pub(crate) use with_nvml::GpuProbe;

#[cfg(not(feature = "cuda"))]
pub(crate) use without_nvml::GpuProbe;

#[cfg(feature = "cuda")]
mod with_nvml {
    use nvml_wrapper::Nvml;

    use super::GpuSample;

    enum State {
        Untried,
        Ready {
            /// Boxed: the library's symbol table is some 11 KiB.
            nvml: Box<Nvml>,
            /// Device names by index, asked once.
            names: Vec<Option<String>>,
        },
        Unavailable,
    }

    pub(crate) struct GpuProbe {
        state: State,
    }

    impl GpuProbe {
        pub(crate) fn new() -> Self {
            Self { state: State::Untried }
        }

        /// Appends one entry per GPU to `out`.
        pub(crate) fn sample(&mut self, out: &mut Vec<GpuSample>) {
            if matches!(self.state, State::Untried) {
                self.state = match Nvml::init() {
                    Ok(nvml) => State::Ready { nvml: Box::new(nvml), names: Vec::new() },
                    Err(error) => {
                        tracing::debug!(%error, "NVML unavailable; reporting no GPUs");
                        State::Unavailable
                    }
                };
            }
            let State::Ready { nvml, names } = &mut self.state else { return };
            let count = match nvml.device_count() {
                Ok(count) => count,
                Err(error) => {
                    tracing::trace!(%error, "NVML device count failed");
                    return;
                }
            };
            let len = usize::try_from(count).unwrap_or(0);
            if names.len() < len {
                names.resize(len, None);
            }
            for (slot, index) in (0..count).enumerate() {
                let device = match nvml.device_by_index(index) {
                    Ok(device) => device,
                    Err(error) => {
                        tracing::trace!(%error, index, "NVML device unavailable");
                        continue;
                    }
                };
                let name = match names.get_mut(slot) {
                    Some(cached) => cached.get_or_insert_with(|| device.name().unwrap_or_default()).clone(),
                    None => String::new(),
                };
                // A figure the device does not support (MIG, some vGPUs) reads 0.
                let utilization_percent = device.utilization_rates().map(|u| f64::from(u.gpu)).unwrap_or(0.0);
                let (memory_used_bytes, memory_total_bytes) =
                    device.memory_info().map(|m| (m.used, m.total)).unwrap_or((0, 0));
                out.push(GpuSample { index, name, utilization_percent, memory_used_bytes, memory_total_bytes });
            }
        }
    }
}

#[cfg(not(feature = "cuda"))]
mod without_nvml {
    use super::GpuSample;

    pub(crate) struct GpuProbe;

    impl GpuProbe {
        pub(crate) fn new() -> Self {
            Self
        }

        /// Built without `cuda`: never any GPUs.
        pub(crate) fn sample(&mut self, _out: &mut Vec<GpuSample>) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the feature there are never GPUs; with it, whatever this host
    /// has, and asking twice gives the same devices (NVML is opened once).
    #[test]
    fn probing_is_stable() {
        let mut probe = GpuProbe::new();
        let (mut first, mut second) = (Vec::new(), Vec::new());
        probe.sample(&mut first);
        probe.sample(&mut second);
        if cfg!(not(feature = "cuda")) {
            assert!(first.is_empty());
        }
        let indices = |v: &[GpuSample]| v.iter().map(|g| g.index).collect::<Vec<_>>();
        assert_eq!(indices(&first), indices(&second));
        for gpu in &second {
            assert!((0.0..=100.0).contains(&gpu.utilization_percent), "{gpu:?}");
            assert!(gpu.memory_used_bytes <= gpu.memory_total_bytes, "{gpu:?}");
        }
    }
}
