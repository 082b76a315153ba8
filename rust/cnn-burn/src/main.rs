//! CNN image classification in burn (its pure-Rust `flex` CPU backend; `cuda` under HW=gpu):
//! LeNet-5, the small CNN, ResNet-18, VGG-16, MobileNetV2 and the SE attention CNN (Python twin: python/tasks/deep_learning/cnn.py; tch and candle:
//! rust/cnn). Its own workspace: burn 0.22 resolves torch-sys 0.22 into any lockfile it is in.
//!
//! Two mappings make it the same work as PyTorch, both proven by tests/test_parity_cnn.py:
//! burn's `Linear` stores its weight as [in, out] (PyTorch: [out, in]), so it is transposed on
//! load; burn's `BatchNorm` updates the running variance with the biased batch variance where
//! PyTorch uses the unbiased one, so `TorchBatchNorm` below applies PyTorch's rule.
mod nets;

use std::collections::BTreeMap;
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use bench_core::training::{main_training, Images, NetShape, Network, TrainParams, TrainingInfo};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};

use nets::Net;

fn device(job: &Job) -> Device {
    #[cfg(feature = "cuda")]
    if job.device == "cuda" {
        return Device::cuda(0);
    }
    let _ = job;
    Device::flex()
}

fn setup(job: &Job) -> Result<BTreeMap<String, u64>> {
    if job.device == "cuda" && !cfg!(feature = "cuda") {
        return Err(BenchError::usage(
            "device: cuda: burn was built without its `cuda` backend (build with HW=gpu)",
        ));
    }
    std::env::set_var("RAYON_NUM_THREADS", job.threads.to_string());
    let _ = rayon::ThreadPoolBuilder::new().num_threads(job.threads as usize).build_global();
    Ok(BTreeMap::from([("rayon".to_string(), rayon::current_num_threads() as u64)]))
}

struct BurnNet {
    model: Option<Net>,
    optimizer: ModuleOptimizer,
    lr: f64,
    device: Device,
    dtype: FloatDType, // the job's precision
    data: Option<(Tensor<4>, Tensor<1, Int>, Tensor<4>)>,
}

fn build(job: &Job, params: &TrainParams, shape: &NetShape, weights: &Path) -> Result<Box<dyn Network>> {
    let device = device(job);
    let train_device = device.clone().autodiff();
    let model = nets::load(job, params, shape, weights, &train_device)?;
    let optimizer = match params.optimizer.as_str() {
        "sgd" => SgdConfig::new()
            .with_momentum(Some(MomentumConfig {
                momentum: params.momentum,
                dampening: 0.0,
                nesterov: false,
            }))
            .with_weight_decay(
                (params.weight_decay > 0.0).then(|| WeightDecayConfig::new(params.weight_decay as f32)),
            )
            .init(),
        _ => AdamWConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .with_weight_decay(params.weight_decay as f32)
            .init(),
    };
    let dtype = nets::dtype(job);
    Ok(Box::new(BurnNet {
        model: Some(model),
        optimizer,
        lr: params.learning_rate,
        device,
        dtype,
        data: None,
    }))
}

fn images(images: &Images, device: &Device, dtype: FloatDType) -> Tensor<4> {
    Tensor::<4>::from_data(TensorData::new(images.x.clone(), images.dims.to_vec()), device).cast(dtype)
}

/// A tensor's values as float32 (what leaves an arm, whatever it computes in).
fn values<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    tensor
        .cast(FloatDType::F32)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| BenchError::run(format!("burn: {e:?}")))
}

impl Network for BurnNet {
    fn upload(&mut self, train: &Images, test: &Images) -> Result<()> {
        let train_device = self.device.clone().autodiff();
        let labels = Tensor::from_data(TensorData::new(train.y.clone(), [train.n]), &train_device);
        self.data =
            Some((images(train, &train_device, self.dtype), labels, images(test, &self.device, self.dtype)));
        Ok(())
    }

    fn train_epoch(&mut self, order: &[i64], batch_size: usize) -> Result<f64> {
        let (x, y, _) = self.data.as_ref().ok_or_else(|| BenchError::run("train before upload"))?;
        let mut model = self.model.take().ok_or_else(|| BenchError::run("no model"))?;
        let train_device = x.device();
        let loss_fn = CrossEntropyLossConfig::new().init(&train_device);
        let mut total = 0.0;
        for chunk in order.chunks(batch_size) {
            let index =
                Tensor::<1, Int>::from_data(TensorData::new(chunk.to_vec(), [chunk.len()]), &train_device);
            let logits = model.forward(x.clone().select(0, index.clone()));
            let loss = loss_fn.forward(logits, y.clone().select(0, index));
            let value: f64 = loss.clone().cast(FloatDType::F64).into_scalar();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = self.optimizer.step(self.lr, model, grads);
            total += value * chunk.len() as f64;
        }
        self.model = Some(model);
        Ok(total / order.len() as f64)
    }

    fn logits(&mut self, count: usize, batch_size: usize) -> Result<Vec<f32>> {
        let (_, _, x) = self.data.as_ref().ok_or_else(|| BenchError::run("logits before upload"))?;
        let model = self.model.as_ref().ok_or_else(|| BenchError::run("no model"))?.valid();
        let mut out = Vec::with_capacity(count);
        let mut start = 0;
        while start < count {
            let len = batch_size.min(count - start);
            let logits = model.forward(x.clone().narrow(0, start, len));
            out.extend(values(logits)?);
            start += len;
        }
        Ok(out)
    }

    fn weights(&self) -> Result<Vec<(String, Vec<f32>)>> {
        let model = self.model.as_ref().ok_or_else(|| BenchError::run("no model"))?;
        let mut named = Vec::new();
        for (name, tensor) in model.named_tensors() {
            named.push((name, values(tensor)?));
        }
        named.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(named)
    }

    fn sync(&self) -> Result<()> {
        self.device.sync().map_err(|e| BenchError::run(format!("burn: {e:?}")))
    }
}

fn main() {
    main_training(TrainingInfo {
        frameworks: &[("burn", env!("MLBENCH_VERSION_BURN"))],
        build: |job, params, shape, weights| match (job.framework.as_str(), job.algorithm.as_str()) {
            ("burn", "lenet" | "simple_cnn" | "resnet18" | "attention_cnn" | "vgg16" | "mobilenet") => {
                build(job, params, shape, weights)
            }
            (framework, algorithm) => {
                Err(BenchError::usage(format!("algorithm: {algorithm:?} is not implemented for {framework}")))
            }
        },
        setup,
        spec: include_str!("../../../configs/tasks/cnn.yaml"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float64_jobs_compute_in_float64() {
        let device = Device::flex().autodiff();
        let images = Images { x: vec![0.5; 4], y: vec![0], n: 1, dims: [1, 1, 2, 2] };
        let x = super::images(&images, &device, FloatDType::F64);
        assert_eq!(x.dtype(), burn::tensor::DType::F64);
        assert_eq!((x.clone() * x).sum().dtype(), burn::tensor::DType::F64);
    }
}
