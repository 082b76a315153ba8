//! CNN image classification in burn (its pure-Rust `flex` CPU backend; `cuda` under HW=gpu):
//! LeNet-5, the small CNN, ResNet-18, VGG-16, MobileNetV2 and the SE attention CNN (Python twin: python/tasks/deep_learning/cnn.py; tch and candle:
//! rust/cnn). Its own workspace: burn 0.22 resolves torch-sys 0.22 into any lockfile it is in.
//!
//! Two mappings make it the same work as PyTorch, both proven by tests/test_parity_cnn.py:
//! burn's `Linear` stores its weight as [in, out] (PyTorch: [out, in]), so it is transposed on
//! load; burn's `BatchNorm` updates the running variance with the biased batch variance where
//! PyTorch uses the unbiased one, so `TorchBatchNorm` below applies PyTorch's rule.
mod nets;

use bench_core::error::BenchError;
use bench_core::training::{main_training, TrainingInfo};
use cnn_burn::burn_net::{setup, train_net};

fn main() {
    main_training(TrainingInfo {
        frameworks: &[("burn", env!("MLBENCH_VERSION_BURN"))],
        build: |job, params, shape, weights| match (job.framework.as_str(), job.algorithm.as_str()) {
            ("burn", "lenet" | "simple_cnn" | "resnet18" | "attention_cnn" | "vgg16" | "mobilenet") => {
                train_net(job, params, |device| nets::load(job, params, shape, weights, device))
            }
            (framework, algorithm) => {
                Err(BenchError::usage(format!("algorithm: {algorithm:?} is not implemented for {framework}")))
            }
        },
        setup,
        kernels: None,
        spec: include_str!("../../../configs/tasks/cnn.yaml"),
    })
}
