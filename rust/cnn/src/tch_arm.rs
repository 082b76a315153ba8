//! The tch arm: the same libtorch kernels PyTorch calls, through Rust bindings. Variable names are
//! PyTorch's (`conv1.weight`, `bn1.running_var`), so the shared safetensors file loads as it is.
use std::collections::BTreeMap;
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use bench_core::training::{Images, NetShape, Network, TrainParams};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

fn err(e: tch::TchError) -> BenchError {
    BenchError::run(format!("tch: {e}"))
}

pub fn setup(job: &Job) -> Result<BTreeMap<String, u64>> {
    if job.device == "cuda" && !tch::Cuda::is_available() {
        return Err(BenchError::usage("device: cuda: no CUDA device visible to libtorch (tch)"));
    }
    tch::set_num_threads(job.threads as i32);
    Ok(BTreeMap::from([("libtorch".to_string(), tch::get_num_threads() as u64)]))
}

fn device(job: &Job) -> Device {
    if job.device == "cuda" {
        Device::Cuda(0)
    } else {
        Device::Cpu
    }
}

#[derive(Debug)]
struct LeNet {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc1: nn::Linear,
    fc2: nn::Linear,
    fc3: nn::Linear,
}

impl LeNet {
    fn new(p: nn::Path, shape: &NetShape) -> Self {
        let pad = if shape.height == 28 { 2 } else { 0 };
        let side = ((shape.height as i64 + 2 * pad - 4) / 2 - 4) / 2;
        let c = shape.channels as i64;
        LeNet {
            conv1: nn::conv2d(&p / "conv1", c, 6, 5, nn::ConvConfig { padding: pad, ..Default::default() }),
            conv2: nn::conv2d(&p / "conv2", 6, 16, 5, Default::default()),
            fc1: nn::linear(&p / "fc1", 16 * side * side, 120, Default::default()),
            fc2: nn::linear(&p / "fc2", 120, 84, Default::default()),
            fc3: nn::linear(&p / "fc3", 84, shape.classes as i64, Default::default()),
        }
    }
}

impl ModuleT for LeNet {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let xs = xs.apply(&self.conv1).relu().max_pool2d_default(2);
        let xs = xs.apply(&self.conv2).relu().max_pool2d_default(2).flatten(1, -1);
        xs.apply(&self.fc1).relu().apply(&self.fc2).relu().apply(&self.fc3)
    }
}

#[derive(Debug)]
struct SimpleCnn {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    conv3: nn::Conv2D,
    bns: Option<[nn::BatchNorm; 3]>,
    residual: bool,
    dropout: f64,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl SimpleCnn {
    fn new(p: nn::Path, shape: &NetShape, params: &TrainParams) -> Self {
        let same = nn::ConvConfig { padding: 1, ..Default::default() };
        let bn = |name: &str| {
            nn::batch_norm2d(
                &p / name,
                16,
                nn::BatchNormConfig { eps: BN_EPS, momentum: BN_MOMENTUM, ..Default::default() },
            )
        };
        let flat = 16 * (shape.height / 4) * (shape.width / 4);
        SimpleCnn {
            conv1: nn::conv2d(&p / "conv1", shape.channels as i64, 16, 3, same),
            conv2: nn::conv2d(&p / "conv2", 16, 16, 3, same),
            conv3: nn::conv2d(&p / "conv3", 16, 16, 3, same),
            bns: params.use_batch_norm.then(|| [bn("bn1"), bn("bn2"), bn("bn3")]),
            residual: params.use_residual,
            dropout: params.dropout_rate,
            fc1: nn::linear(&p / "fc1", flat as i64, 64, Default::default()),
            fc2: nn::linear(&p / "fc2", 64, shape.classes as i64, Default::default()),
        }
    }

    fn norm(&self, i: usize, xs: Tensor, train: bool) -> Tensor {
        match &self.bns {
            Some(bns) => xs.apply_t(&bns[i], train),
            None => xs,
        }
    }
}

impl ModuleT for SimpleCnn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let x = self.norm(0, xs.apply(&self.conv1), train).relu().max_pool2d_default(2);
        let y = self.norm(1, x.apply(&self.conv2), train).relu();
        let y = self.norm(2, y.apply(&self.conv3), train);
        let y = if self.residual { y + &x } else { y };
        let y = y.relu().max_pool2d_default(2).flatten(1, -1).dropout(self.dropout, train);
        y.apply(&self.fc1).relu().dropout(self.dropout, train).apply(&self.fc2)
    }
}

struct TchNet {
    vs: nn::VarStore,
    model: Box<dyn ModuleT>,
    optimizer: nn::Optimizer,
    device: Device,
    data: Option<(Tensor, Tensor, Tensor)>,
}

pub fn build(job: &Job, params: &TrainParams, shape: &NetShape, weights: &Path) -> Result<Box<dyn Network>> {
    let device = device(job);
    let mut vs = nn::VarStore::new(device);
    let model: Box<dyn ModuleT> = match job.algorithm.as_str() {
        "lenet" => Box::new(LeNet::new(vs.root(), shape)),
        _ => Box::new(SimpleCnn::new(vs.root(), shape, params)),
    };
    vs.load(weights).map_err(|e| BenchError::usage(format!("{}: {e}", weights.display())))?;
    let optimizer = match params.optimizer.as_str() {
        "sgd" => {
            nn::Sgd { momentum: params.momentum, dampening: 0.0, wd: params.weight_decay, nesterov: false }
                .build(&vs, params.learning_rate)
        }
        _ => nn::AdamW { beta1: 0.9, beta2: 0.999, wd: params.weight_decay, eps: 1e-8, amsgrad: false }
            .build(&vs, params.learning_rate),
    }
    .map_err(err)?;
    Ok(Box::new(TchNet { vs, model, optimizer, device, data: None }))
}

fn images(images: &Images, device: Device) -> Tensor {
    let dims: Vec<i64> = images.dims.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(&images.x).view(dims.as_slice()).to(device)
}

impl Network for TchNet {
    fn upload(&mut self, train: &Images, test: &Images) -> Result<()> {
        let labels = Tensor::from_slice(&train.y).to(self.device);
        self.data = Some((images(train, self.device), labels, images(test, self.device)));
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
            let loss = logits.cross_entropy_for_logits(&y.index_select(0, &index));
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
