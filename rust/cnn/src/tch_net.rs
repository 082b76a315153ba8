//! The tch half of the `train_classifier` protocol every deep-learning task shares: the network (any
//! `ModuleT`) and its optimizer on the job's device and precision (`TchNet`), thread setup. tch runs
//! the same libtorch kernels PyTorch calls, through Rust bindings; variable names are PyTorch's
//! (`conv1.weight`, `bn1.running_var`), so the shared safetensors file loads as it is.
use std::collections::BTreeMap;
use std::ffi::c_int;
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use bench_core::training::{Images, Network, TrainParams};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

pub fn err(e: tch::TchError) -> BenchError {
    BenchError::run(format!("tch: {e}"))
}

pub fn setup(job: &Job) -> Result<BTreeMap<String, u64>> {
    if job.device == "cuda" && !tch::Cuda::is_available() {
        return Err(BenchError::usage("device: cuda: no CUDA device visible to libtorch (tch)"));
    }
    tch::set_num_threads(job.threads as i32);
    Ok(BTreeMap::from([("libtorch".to_string(), tch::get_num_threads() as u64)]))
}

// csrc/kernels.cpp: libtorch's CUDA float32 switches, which tch does not bind.
extern "C" {
    fn mlbench_set_tf32(allow: c_int);
    fn mlbench_cudnn_tf32() -> c_int;
    fn mlbench_cublas_tf32() -> c_int;
    fn mlbench_cudnn_benchmark() -> c_int;
}

/// The job's CUDA kernel switches (cuDNN's autotuner, TF32), set as PyTorch's side sets them
/// (python/mlbench/torch_net.py, `kernels`), and what libtorch then reports (`env.kernels`). tf32 false
/// turns TF32 off explicitly: libtorch lets cuDNN use it unless told otherwise.
pub fn kernels(_job: &Job, params: &TrainParams) -> Result<BTreeMap<String, String>> {
    tch::Cuda::cudnn_set_benchmark(params.cudnn_benchmark);
    // SAFETY: these functions only write and read flags of libtorch's global context.
    let (benchmark, cudnn, cublas) = unsafe {
        mlbench_set_tf32(c_int::from(params.tf32));
        (mlbench_cudnn_benchmark(), mlbench_cudnn_tf32(), mlbench_cublas_tf32())
    };
    Ok([("cudnn_benchmark", benchmark), ("cudnn_tf32", cudnn), ("cublas_tf32", cublas)]
        .into_iter()
        .map(|(name, on)| (name.to_string(), (on != 0).to_string()))
        .collect())
}

pub fn device(job: &Job) -> Device {
    if job.device == "cuda" {
        Device::Cuda(0)
    } else {
        Device::Cpu
    }
}

pub struct TchNet {
    vs: nn::VarStore,
    model: Box<dyn ModuleT>,
    optimizer: nn::Optimizer,
    device: Device,
    kind: Kind, // the job's precision
    data: Option<(Tensor, Tensor, Tensor)>,
}

/// A network of the job built by `model` on a VarStore (PyTorch's names), loaded from the shared initial
/// weights and cast to the job's precision, with the job's optimizer.
pub fn train_net(
    job: &Job,
    params: &TrainParams,
    weights: &Path,
    model: impl FnOnce(nn::Path) -> Box<dyn ModuleT>,
) -> Result<Box<dyn Network>> {
    let device = device(job);
    let mut vs = nn::VarStore::new(device);
    let model = model(vs.root());
    vs.load(weights).map_err(|e| BenchError::usage(format!("{}: {e}", weights.display())))?;
    let kind = if bench_core::training::float64(job) { Kind::Double } else { Kind::Float };
    vs.set_kind(kind);
    let optimizer = match params.optimizer.as_str() {
        "sgd" => {
            nn::Sgd { momentum: params.momentum, dampening: 0.0, wd: params.weight_decay, nesterov: false }
                .build(&vs, params.learning_rate)
        }
        _ => nn::AdamW { beta1: 0.9, beta2: 0.999, wd: params.weight_decay, eps: 1e-8, amsgrad: false }
            .build(&vs, params.learning_rate),
    }
    .map_err(err)?;
    Ok(Box::new(TchNet { vs, model, optimizer, device, kind, data: None }))
}

fn images(images: &Images, device: Device, kind: Kind) -> Tensor {
    let dims: Vec<i64> = images.dims.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(&images.x).view(dims.as_slice()).to_device(device).to_kind(kind)
}

impl Network for TchNet {
    fn upload(&mut self, train: &Images, test: &Images) -> Result<()> {
        let labels = Tensor::from_slice(&train.y).to(self.device);
        self.data =
            Some((images(train, self.device, self.kind), labels, images(test, self.device, self.kind)));
        Ok(())
    }

    fn train_epoch(&mut self, order: &[i64], batch_size: usize) -> Result<f64> {
        let (x, y, _) = self.data.as_ref().ok_or_else(|| BenchError::run("train before upload"))?;
        let order = Tensor::from_slice(order).to(self.device);
        let n = order.size()[0];
        let mut total = 0.0;
        let mut start = 0;
        while start < n {
            let len = (batch_size as i64).min(n - start);
            let index = order.narrow(0, start, len);
            let logits = self.model.forward_t(&x.index_select(0, &index), true);
            // at::cross_entropy_loss, what F.cross_entropy calls (tch's `cross_entropy_for_logits`
            // computes its log-softmax in float32 whatever the logits' precision).
            let loss = logits.cross_entropy_loss::<Tensor>(
                &y.index_select(0, &index),
                None,
                tch::Reduction::Mean,
                -100,
                0.0,
            );
            self.optimizer.backward_step(&loss);
            total += loss.double_value(&[]) * len as f64;
            start += len;
        }
        Ok(total / n as f64)
    }

    fn logits(&mut self, count: usize, batch_size: usize) -> Result<Vec<f32>> {
        let (_, _, x) = self.data.as_ref().ok_or_else(|| BenchError::run("logits before upload"))?;
        let out = tch::no_grad(|| {
            let mut parts = Vec::new();
            let mut start = 0;
            while start < count {
                let len = batch_size.min(count - start);
                parts.push(
                    self.model.forward_t(&x.narrow(0, start as i64, len as i64), false).to(Device::Cpu),
                );
                start += len;
            }
            Tensor::cat(&parts, 0)
        });
        Vec::<f32>::try_from(out.to_kind(Kind::Float).flatten(0, -1)).map_err(err)
    }

    fn weights(&self) -> Result<Vec<(String, Vec<f32>)>> {
        let mut named: Vec<(String, Vec<f32>)> = Vec::new();
        for (name, tensor) in self.vs.variables() {
            let values = Vec::<f32>::try_from(tensor.to(Device::Cpu).to_kind(Kind::Float).flatten(0, -1))
                .map_err(err)?;
            named.push((name, values));
        }
        named.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(named)
    }

    fn sync(&self) -> Result<()> {
        if let Device::Cuda(index) = self.device {
            tch::Cuda::synchronize(index as i64);
        }
        Ok(())
    }
}
