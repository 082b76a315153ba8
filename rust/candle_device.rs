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
    candle_core::Device::new_cuda(0).map_err(|e| BenchError::run(format!("candle: {e}")))
}
