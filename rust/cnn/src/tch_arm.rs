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
        let bn = |name: &str| batch_norm(&p / name, 16);
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

/// Batch norm with PyTorch's eps and momentum (tch's defaults are the same convention).
fn batch_norm(p: nn::Path, channels: i64) -> nn::BatchNorm {
    nn::batch_norm2d(
        p,
        channels,
        nn::BatchNormConfig { eps: BN_EPS, momentum: BN_MOMENTUM, ..Default::default() },
    )
}

fn conv_bn(
    p: &nn::Path,
    name: &str,
    bn: &str,
    c_in: i64,
    c_out: i64,
    k: i64,
    stride: i64,
) -> (nn::Conv2D, nn::BatchNorm) {
    let cfg = nn::ConvConfig { stride, padding: k / 2, bias: false, ..Default::default() };
    (nn::conv2d(p / name, c_in, c_out, k, cfg), batch_norm(p / bn, c_out))
}

/// torchvision's BasicBlock: conv3x3-BN-ReLU-conv3x3-BN, plus the input (or its 1x1 projection).
#[derive(Debug)]
struct BasicBlock {
    conv1: (nn::Conv2D, nn::BatchNorm),
    conv2: (nn::Conv2D, nn::BatchNorm),
    downsample: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl BasicBlock {
    fn new(p: nn::Path, c_in: i64, c_out: i64, stride: i64) -> Self {
        let downsample = (stride != 1 || c_in != c_out)
            .then(|| conv_bn(&(&p / "downsample"), "0", "1", c_in, c_out, 1, stride));
        BasicBlock {
            conv1: conv_bn(&p, "conv1", "bn1", c_in, c_out, 3, stride),
            conv2: conv_bn(&p, "conv2", "bn2", c_out, c_out, 3, 1),
            downsample,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let y = xs.apply(&self.conv1.0).apply_t(&self.conv1.1, train).relu();
        let y = y.apply(&self.conv2.0).apply_t(&self.conv2.1, train);
        let shortcut = match &self.downsample {
            Some((conv, bn)) => xs.apply(conv).apply_t(bn, train),
            None => xs.shallow_clone(),
        };
        (y + shortcut).relu()
    }
}

/// ResNet-18 under torchvision's names (`layer2.0.downsample.0.weight`, `fc.bias`).
#[derive(Debug)]
struct ResNet18 {
    stem: (nn::Conv2D, nn::BatchNorm),
    max_pool: bool,
    blocks: Vec<BasicBlock>,
    fc: nn::Linear,
}

impl ResNet18 {
    fn new(p: nn::Path, shape: &NetShape, params: &TrainParams) -> Self {
        let imagenet = params.stem == "imagenet";
        let (k, stride) = if imagenet { (7, 2) } else { (3, 1) };
        let stem = conv_bn(&p, "conv1", "bn1", shape.channels as i64, 64, k, stride);
        let mut blocks = Vec::new();
        let mut c_in = 64;
        for (i, &(c_out, stride)) in bench_core::training::RESNET18_STAGES.iter().enumerate() {
            let layer = &p / format!("layer{}", i + 1);
            blocks.push(BasicBlock::new(&layer / "0", c_in, c_out as i64, stride as i64));
            blocks.push(BasicBlock::new(&layer / "1", c_out as i64, c_out as i64, 1));
            c_in = c_out as i64;
        }
        let fc = nn::linear(&p / "fc", 512, shape.classes as i64, Default::default());
        ResNet18 { stem, max_pool: imagenet, blocks, fc }
    }
}

impl ModuleT for ResNet18 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.apply(&self.stem.0).apply_t(&self.stem.1, train).relu();
        if self.max_pool {
            x = x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        for block in &self.blocks {
            x = block.forward_t(&x, train);
        }
        x.adaptive_avg_pool2d([1, 1]).flatten(1, -1).apply(&self.fc)
    }
}

/// Squeeze-and-excitation (Hu et al. 2018): x * sigmoid(fc2(ReLU(fc1(global average of x)))).
#[derive(Debug)]
struct SqueezeExcitation {
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl SqueezeExcitation {
    fn new(p: nn::Path, channels: i64) -> Self {
        let hidden = channels / bench_core::training::SE_REDUCTION as i64;
        SqueezeExcitation {
            fc1: nn::linear(&p / "fc1", channels, hidden, Default::default()),
            fc2: nn::linear(&p / "fc2", hidden, channels, Default::default()),
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let (n, c) = (xs.size()[0], xs.size()[1]);
        let weights =
            xs.mean_dim([2i64, 3].as_slice(), false, Kind::Float).apply(&self.fc1).relu().apply(&self.fc2);
        xs * weights.sigmoid().view([n, c, 1, 1])
    }
}

/// [conv3x3 BN ReLU SE maxpool2] x 2 (32, 64 channels), global average pool, linear.
#[derive(Debug)]
struct AttentionCnn {
    stages: Vec<(nn::Conv2D, nn::BatchNorm, SqueezeExcitation)>,
    fc: nn::Linear,
}

impl AttentionCnn {
    fn new(p: nn::Path, shape: &NetShape) -> Self {
        let same = nn::ConvConfig { padding: 1, ..Default::default() };
        let mut stages = Vec::new();
        let mut c_in = shape.channels as i64;
        for (i, c_out) in [32i64, 64].into_iter().enumerate() {
            stages.push((
                nn::conv2d(&p / format!("conv{}", i + 1), c_in, c_out, 3, same),
                batch_norm(&p / format!("bn{}", i + 1), c_out),
                SqueezeExcitation::new(&p / format!("se{}", i + 1), c_out),
            ));
            c_in = c_out;
        }
        AttentionCnn { stages, fc: nn::linear(&p / "fc", 64, shape.classes as i64, Default::default()) }
    }
}

impl ModuleT for AttentionCnn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for (conv, bn, se) in &self.stages {
            x = se.forward(&x.apply(conv).apply_t(bn, train).relu()).max_pool2d_default(2);
        }
        x.mean_dim([2i64, 3].as_slice(), false, Kind::Float).apply(&self.fc)
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
        "simple_cnn" => Box::new(SimpleCnn::new(vs.root(), shape, params)),
        "resnet18" => Box::new(ResNet18::new(vs.root(), shape, params)),
        "attention_cnn" => Box::new(AttentionCnn::new(vs.root(), shape)),
        other => return Err(BenchError::usage(format!("algorithm: {other}: not a network of this task"))),
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
