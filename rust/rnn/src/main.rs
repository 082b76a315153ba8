//! Sequence classification with recurrent nets (a tanh RNN, an LSTM, a GRU; stacked, optionally
//! bidirectional) in tch (libtorch) and candle (Python twin: python/tasks/deep_learning/rnn.py; the
//! burn arm is rust/rnn-burn). The `train_classifier` protocol of bench-core owns the epochs, clocks
//! and artifacts; cnn::tch_net and cnn::candle_net train any network; each arm here holds the
//! recurrent nets and their mapping of PyTorch's weights.
mod candle_arm;
mod tch_arm;

use std::path::Path;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use bench_core::training::{main_training, recurrent_gates, NetShape, Network, TrainParams, TrainingInfo};

/// One dispatch: (framework, cell).
fn build(job: &Job, params: &TrainParams, shape: &NetShape, weights: &Path) -> Result<Box<dyn Network>> {
    let cell = job.algorithm.as_str();
    if recurrent_gates(cell) == 0 {
        return Err(BenchError::usage(format!("algorithm: {cell:?} is not a recurrent cell")));
    }
    match job.framework.as_str() {
        "tch" => tch_arm::build(job, params, shape, weights),
        _ => candle_arm::build(job, params, shape, weights),
    }
}

fn main() {
    main_training(TrainingInfo {
        frameworks: cnn::FRAMEWORKS,
        build,
        setup: cnn::setup,
        kernels: Some(cnn::kernels),
        spec: include_str!("../../../configs/tasks/rnn.yaml"),
    })
}
