//! CNN image classification in tch (libtorch) and candle: LeNet-5, the small CNN, ResNet-18, VGG-16, MobileNetV2 and the SE attention CNN (Python twin:
//! python/tasks/deep_learning/cnn.py; the burn arm is rust/cnn-burn). The `train_classifier`
//! protocol of bench-core owns the epochs, clocks and artifacts; each arm holds the networks, the
//! loading of the shared initial weights and one epoch.
mod candle_arm;
mod tch_arm;

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

fn main() {
    main_training(TrainingInfo {
        frameworks: cnn::FRAMEWORKS,
        build,
        setup: cnn::setup,
        kernels: Some(cnn::kernels),
        spec: include_str!("../../../configs/tasks/cnn.yaml"),
    })
}
