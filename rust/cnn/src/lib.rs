//! What the deep-learning tasks' tch and candle arms share (the CNN task's binary and rust/rnn): each
//! framework's half of the `train_classifier` protocol of bench-core, for any network.
pub mod candle_net;
pub mod tch_net;

use std::collections::BTreeMap;

use bench_core::config::Job;
use bench_core::error::Result;
use bench_core::training::TrainParams;

/// The frameworks these arms serve and their versions (`TrainingInfo::frameworks`).
pub const FRAMEWORKS: &[(&str, &str)] =
    &[("tch", env!("MLBENCH_VERSION_TCH")), ("candle", env!("MLBENCH_VERSION_CANDLE_CORE"))];

/// The job's framework's thread setup (`TrainingInfo::setup`).
pub fn setup(job: &Job) -> Result<BTreeMap<String, u64>> {
    match job.framework.as_str() {
        "tch" => tch_net::setup(job),
        _ => candle_net::setup(job),
    }
}

/// The job's kernel switches (`TrainingInfo::kernels`): libtorch's on tch; candle has none (the task
/// spec records it `unsupported` when a switch is on).
pub fn kernels(job: &Job, params: &TrainParams) -> Result<BTreeMap<String, String>> {
    match job.framework.as_str() {
        "tch" => tch_net::kernels(job, params),
        _ => Ok(BTreeMap::new()),
    }
}
