//! Sequence classification with recurrent nets in burn (its pure-Rust `flex` CPU backend; `cuda`
//! under HW=gpu): a tanh RNN, an LSTM or a GRU, stacked, optionally bidirectional (Python twin:
//! python/tasks/deep_learning/rnn.py; tch and candle: rust/rnn). cnn-burn's library trains it.
//!
//! burn keeps one `GateController` (two `Linear`s, weights stored [in, out]) per gate where PyTorch
//! stacks the gates in one [gates x hidden, in] matrix: `nets` splits PyTorch's matrices by gate, in
//! PyTorch's order (LSTM i, f, g, o; GRU r, z, n), and transposes them; its GRU with `reset_after`
//! (burn's default) is PyTorch's. Proven by tests/test_parity_rnn.py.
mod nets;

use bench_core::error::BenchError;
use bench_core::training::{main_training, recurrent_gates, TrainingInfo};
use cnn_burn::burn_net::{setup, train_net};

fn main() {
    main_training(TrainingInfo {
        frameworks: &[("burn", env!("MLBENCH_VERSION_BURN"))],
        build: |job, params, shape, weights| {
            if job.framework != "burn" || recurrent_gates(&job.algorithm) == 0 {
                return Err(BenchError::usage(format!(
                    "algorithm: {:?} is not implemented for {}",
                    job.algorithm, job.framework
                )));
            }
            train_net(job, params, |device| nets::load(job, params, shape, weights, device))
        },
        setup,
        kernels: None,
        spec: include_str!("../../../configs/tasks/rnn.yaml"),
    })
}
