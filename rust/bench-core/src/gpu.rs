//! GPU figures of one repetition, read through NVML the same way in both languages. Mirrors
//! python/mlbench/gpu.py: while a repetition on a CUDA device runs, a thread reads the job's GPU
//! every SAMPLE_INTERVAL (memory in use: its peak; utilisation: its mean), and the GPU's
//! total-energy counter is read before and after. The GPU is the first of CUDA_VISIBLE_DEVICES (an
//! index or a GPU-UUID), else index 0. NVML counts every process on the GPU: run one job per GPU.
//! On a CPU, or where NVML cannot be opened (libnvidia-ml is loaded at run time), every field is
//! null, never 0.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use nvml_wrapper::Nvml as NvmlLib;

use crate::record::GpuResources;

pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(50);

/// One GPU's instantaneous readings; None where the GPU does not report one.
pub trait Reader: Send + Sync {
    fn memory_used_mb(&self) -> Option<f64>;
    fn utilisation_percent(&self) -> Option<f64>;
    fn energy_mj(&self) -> Option<u64>;
}

#[derive(Default)]
struct Samples {
    peak_mb: Option<f64>,
    util_sum: f64,
    util_n: u64,
    n: u64,
}

impl Samples {
    fn take(&mut self, reader: &dyn Reader) {
        if let Some(used) = reader.memory_used_mb() {
            self.peak_mb = Some(self.peak_mb.map_or(used, |peak| peak.max(used)));
        }
        if let Some(util) = reader.utilisation_percent() {
            self.util_sum += util;
            self.util_n += 1;
        }
        self.n += 1;
    }
}

/// Runs `work` while a thread samples `reader` (at its start, every `interval`, at its end).
pub fn sampled<T>(
    reader: Option<&dyn Reader>,
    interval: Duration,
    work: impl FnOnce() -> T,
) -> (T, GpuResources) {
    let Some(reader) = reader else {
        return (work(), GpuResources::default());
    };
    let samples = Mutex::new(Samples::default());
    let stop = AtomicBool::new(false);
    let energy_start = reader.energy_mj();
    let result = std::thread::scope(|scope| {
        scope.spawn(|| loop {
            samples.lock().expect("sampler lock").take(reader);
            let mut waited = Duration::ZERO;
            while waited < interval {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let step = Duration::from_millis(5).min(interval - waited);
                std::thread::sleep(step);
                waited += step;
            }
        });
        let result = work();
        stop.store(true, Ordering::Relaxed);
        result
    });
    let mut samples = samples.into_inner().expect("sampler lock");
    samples.take(reader);
    let energy = match (energy_start, reader.energy_mj()) {
        (Some(start), Some(end)) => Some(end.saturating_sub(start) as f64 / 1000.0),
        _ => None,
    };
    let figures = GpuResources {
        gpu_peak_mem_mb: None,
        gpu_mem_used_peak_mb: samples.peak_mb,
        gpu_util_percent: (samples.util_n > 0).then(|| samples.util_sum / samples.util_n as f64),
        gpu_energy_j: energy,
        gpu_samples: Some(samples.n),
    };
    (result, figures)
}

/// The job's GPU through NVML (nvml-wrapper).
pub struct Nvml {
    nvml: NvmlLib,
    index: Option<u32>,
    uuid: Option<String>,
}

impl Nvml {
    fn open() -> Result<Self, String> {
        let nvml = NvmlLib::init().map_err(|e| e.to_string())?;
        let visible = std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_default();
        let first = visible.split(',').next().unwrap_or("").trim().to_string();
        let reader = if first.starts_with("GPU-") || first.starts_with("MIG-") {
            Nvml { nvml, index: None, uuid: Some(first) }
        } else {
            Nvml { nvml, index: Some(first.parse().unwrap_or(0)), uuid: None }
        };
        reader.device().map_err(|e| e.to_string())?;
        Ok(reader)
    }

    fn device(&self) -> Result<nvml_wrapper::Device<'_>, nvml_wrapper::error::NvmlError> {
        match (&self.uuid, self.index) {
            (Some(uuid), _) => self.nvml.device_by_uuid(uuid.as_str()),
            (None, index) => self.nvml.device_by_index(index.unwrap_or(0)),
        }
    }
}

impl Reader for Nvml {
    fn memory_used_mb(&self) -> Option<f64> {
        self.device().and_then(|d| d.memory_info()).ok().map(|m| m.used as f64 / 1048576.0)
    }

    fn utilisation_percent(&self) -> Option<f64> {
        self.device().and_then(|d| d.utilization_rates()).ok().map(|u| f64::from(u.gpu))
    }

    fn energy_mj(&self) -> Option<u64> {
        self.device().and_then(|d| d.total_energy_consumption()).ok()
    }
}

/// The process's one reader for `device` (opened on first use): NVML for a CUDA device; None on a
/// CPU, or (with one line on stderr) where NVML cannot be opened.
pub fn reader_for(device: &str) -> Option<&'static dyn Reader> {
    static READER: OnceLock<Option<Nvml>> = OnceLock::new();
    if !device.starts_with("cuda") {
        return None;
    }
    READER
        .get_or_init(|| match Nvml::open() {
            Ok(reader) => Some(reader),
            Err(err) => {
                eprintln!("warning: NVML unavailable, GPU memory/utilisation/energy recorded as null: {err}");
                None
            }
        })
        .as_ref()
        .map(|reader| reader as &dyn Reader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// A GPU whose memory in use rises by 10 MiB per reading, 50% busy, 7 J per energy reading.
    struct Fake {
        reads: AtomicU64,
        energy: AtomicU64,
    }

    impl Reader for Fake {
        fn memory_used_mb(&self) -> Option<f64> {
            Some(10.0 * self.reads.fetch_add(1, Ordering::SeqCst) as f64)
        }
        fn utilisation_percent(&self) -> Option<f64> {
            Some(50.0)
        }
        fn energy_mj(&self) -> Option<u64> {
            Some(self.energy.fetch_add(7000, Ordering::SeqCst))
        }
    }

    #[test]
    fn no_reader_gives_nulls_never_zeros() {
        let (out, figures) = sampled(None, SAMPLE_INTERVAL, || 42);
        assert_eq!(out, 42);
        assert!(figures.gpu_mem_used_peak_mb.is_none() && figures.gpu_energy_j.is_none());
        assert!(figures.gpu_util_percent.is_none() && figures.gpu_samples.is_none());
        assert!(reader_for("cpu").is_none());
    }

    #[test]
    fn samples_peak_mean_and_energy_difference() {
        let fake = Fake { reads: AtomicU64::new(0), energy: AtomicU64::new(1000) };
        let (_, figures) =
            sampled(Some(&fake), Duration::from_millis(5), || std::thread::sleep(Duration::from_millis(60)));
        let n = figures.gpu_samples.unwrap();
        assert!(n >= 3, "{n} samples in 60 ms at 5 ms");
        assert_eq!(figures.gpu_mem_used_peak_mb, Some(10.0 * (n - 1) as f64));
        assert_eq!(figures.gpu_util_percent, Some(50.0));
        assert_eq!(figures.gpu_energy_j, Some(7.0)); // one reading before, one after
    }
}
