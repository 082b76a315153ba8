//! The job's device for a libtorch arm of the model tasks (text_generation-tch, text_encoding-tch
//! include this file: `#[path = "../../tch_device.rs"] mod tch_device;`), and the synchronisation
//! before a clock read.
use bench_core::config::Job;
use bench_core::error::{BenchError, Result};

/// The CPU, or the first CUDA GPU (when libtorch sees one).
pub fn device(job: &Job) -> Result<tch::Device> {
    match job.device.as_str() {
        "cuda" if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
        "cuda" => Err(BenchError::usage("device: cuda: no CUDA device visible to libtorch (tch)")),
        _ => Ok(tch::Device::Cpu),
    }
}

/// Wait for the device's queued kernels (CUDA runs them asynchronously; nothing on the CPU).
#[allow(dead_code)] // the encoder arm synchronises by copying its outputs to the host
pub fn sync(device: tch::Device) {
    if let tch::Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}
