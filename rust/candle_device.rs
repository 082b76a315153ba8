//! The job's device for a candle arm of the model tasks (text_generation and text_encoding include
//! this file: `#[path = "../../candle_device.rs"] mod candle_device;`).
use bench_core::config::Job;
use bench_core::error::{BenchError, Result};

/// The CPU, or the first CUDA GPU (a `cuda` build that sees one).
pub fn candle_device(job: &Job) -> Result<candle_core::Device> {
    if job.device != "cuda" {
        return Ok(candle_core::Device::Cpu);
    }
    if !candle_core::utils::cuda_is_available() {
        return Err(BenchError::usage(
            "device: cuda: candle was built without its `cuda` feature (build with HW=gpu) or sees no GPU",
        ));
    }
    // A `cuda` build where the driver is a stub (a build machine): one line (candle appends a backtrace
    // when RUST_BACKTRACE is set), exit 2.
    candle_core::Device::new_cuda(0).map_err(|e| {
        BenchError::usage(format!(
            "device: cuda: candle sees no usable GPU: {}",
            e.to_string().lines().next().unwrap_or_default()
        ))
    })
}
