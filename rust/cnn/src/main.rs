//! CNN image classification in tch (libtorch) and candle: LeNet-5, the small CNN, ResNet-18, VGG-16, MobileNetV2 and the SE attention CNN (Python twin:
//! python/tasks/deep_learning/cnn.py; the burn arm is rust/cnn-burn). The `train_classifier`
//! protocol of bench-core owns the epochs, clocks and artifacts; each arm holds the networks, the
//! loading of the shared initial weights and one epoch.
mod candle_arm;
mod tch_arm;

use std::collections::BTreeMap;
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use bench_core::training::{main_training, NetShape, Network, TrainParams, TrainingInfo};

/// One dispatch: (framework, algorithm).
fn build(job: &Job, params: &TrainParams, shape: &NetShape, weights: &Path) -> Result<Box<dyn Network>> {
    match (job.framework.as_str(), job.algorithm.as_str()) {
        ("tch", "lenet" | "simple_cnn" | "resnet18" | "attention_cnn" | "vgg16" | "mobilenet") => {
            tch_arm::build(job, params, shape, weights)
        }
        ("candle", "lenet" | "simple_cnn" | "resnet18" | "attention_cnn" | "vgg16" | "mobilenet") => {
            candle_arm::build(job, params, shape, weights)
        }
        (framework, algorithm) => {
            Err(BenchError::usage(format!("algorithm: {algorithm:?} is not implemented for {framework}")))
        }
    }
}

fn setup(job: &Job) -> Result<BTreeMap<String, u64>> {
    match job.framework.as_str() {
        "tch" => cnn::tch_net::setup(job),
        _ => cnn::candle_net::setup(job),
    }
}

fn main() {
    main_training(TrainingInfo {
        frameworks: &[("tch", env!("MLBENCH_VERSION_TCH")), ("candle", env!("MLBENCH_VERSION_CANDLE_CORE"))],
        build,
        setup,
        spec: include_str!("../../../configs/tasks/cnn.yaml"),
    })
}
