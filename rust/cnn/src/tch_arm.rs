//! The tch arm's networks, under PyTorch's variable names (cnn::tch_net trains them).
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::Result;
use bench_core::training::{vgg16_layers, NetShape, Network, TrainParams, VggConv};
use cnn::tch_net::train_net;
use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

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
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
) -> (nn::Conv2D, nn::BatchNorm) {
    grouped_conv_bn(p / name, p / bn, [c_in, c_out], k, stride, 1)
}

/// A bias-free convolution in `groups` groups (padding k / 2) and batch norm: ResNet's and
/// MobileNetV2's unit (groups = channels: depthwise).
fn grouped_conv_bn(
    conv: nn::Path,
    bn: nn::Path,
    [c_in, c_out]: [usize; 2],
    k: usize,
    stride: usize,
    groups: usize,
) -> (nn::Conv2D, nn::BatchNorm) {
    let [c_in, c_out, k, stride, groups] = [c_in, c_out, k, stride, groups].map(|v| v as i64);
    let cfg = nn::ConvConfig { stride, padding: k / 2, groups, bias: false, ..Default::default() };
    (nn::conv2d(conv, c_in, c_out, k, cfg), batch_norm(bn, c_out))
}

/// torchvision's BasicBlock: conv3x3-BN-ReLU-conv3x3-BN, plus the input (or its 1x1 projection).
#[derive(Debug)]
struct BasicBlock {
    conv1: (nn::Conv2D, nn::BatchNorm),
    conv2: (nn::Conv2D, nn::BatchNorm),
    downsample: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl BasicBlock {
    fn new(p: nn::Path, c_in: usize, c_out: usize, stride: usize) -> Self {
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
        let stem = conv_bn(&p, "conv1", "bn1", shape.channels, 64, k, stride);
        let mut blocks = Vec::new();
        let mut c_in = 64;
        for (i, &(c_out, stride)) in bench_core::training::RESNET18_STAGES.iter().enumerate() {
            let layer = &p / format!("layer{}", i + 1);
            blocks.push(BasicBlock::new(&layer / "0", c_in, c_out, stride));
            blocks.push(BasicBlock::new(&layer / "1", c_out, c_out, 1));
            c_in = c_out;
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
            xs.mean_dim([2i64, 3].as_slice(), false, None::<Kind>).apply(&self.fc1).relu().apply(&self.fc2);
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
        x.mean_dim([2i64, 3].as_slice(), false, None::<Kind>).apply(&self.fc)
    }
}

/// VGG-16 (configuration D) under torchvision's names (`features.{i}`, `classifier.{0,3,6}`):
/// zero-padding to a multiple of 32, 13 convolutions [with batch norm] and five max-pools, then
/// 512-512-classes with ReLU and dropout.
#[derive(Debug)]
struct Vgg16 {
    pad: i64,
    layers: Vec<Option<(nn::Conv2D, Option<nn::BatchNorm>)>>, // None: a 2x2 max-pool
    classifier: [nn::Linear; 3],
    dropout: f64,
}

impl Vgg16 {
    fn new(p: nn::Path, shape: &NetShape, params: &TrainParams, pad: usize) -> Self {
        let features = &p / "features";
        let cfg = nn::ConvConfig { padding: 1, ..Default::default() };
        let layers = vgg16_layers(shape.channels, params.use_batch_norm)
            .into_iter()
            .map(|layer| {
                layer.map(|VggConv { index, c_in, c_out }| {
                    let conv = nn::conv2d(&features / index, c_in as i64, c_out as i64, 3, cfg);
                    let bn = params.use_batch_norm.then(|| batch_norm(&features / (index + 1), c_out as i64));
                    (conv, bn)
                })
            })
            .collect();
        let side = ((shape.height + 2 * pad) / bench_core::training::VGG_BLOCK) as i64;
        let classifier = &p / "classifier";
        let linear =
            |i: i64, d_in: i64, d_out: i64| nn::linear(&classifier / i, d_in, d_out, Default::default());
        Vgg16 {
            pad: pad as i64,
            layers,
            classifier: [
                linear(0, 512 * side * side, 512),
                linear(3, 512, 512),
                linear(6, 512, shape.classes as i64),
            ],
            dropout: params.dropout_rate,
        }
    }
}

impl ModuleT for Vgg16 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.constant_pad_nd([self.pad, self.pad, self.pad, self.pad]);
        for layer in &self.layers {
            x = match layer {
                None => x.max_pool2d_default(2),
                Some((conv, None)) => x.apply(conv).relu(),
                Some((conv, Some(bn))) => x.apply(conv).apply_t(bn, train).relu(),
            };
        }
        let [fc1, fc2, fc3] = &self.classifier;
        let x = x.flatten(1, -1).apply(fc1).relu().dropout(self.dropout, train);
        x.apply(fc2).relu().dropout(self.dropout, train).apply(fc3)
    }
}

/// torchvision's Conv2dNormActivation: `grouped_conv_bn` and, where `relu6`, ReLU6.
#[derive(Debug)]
struct ConvBnAct {
    unit: (nn::Conv2D, nn::BatchNorm),
    relu6: bool,
}

impl ConvBnAct {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let y = xs.apply(&self.unit.0).apply_t(&self.unit.1, train);
        if self.relu6 {
            y.relu6()
        } else {
            y
        }
    }
}

/// MobileNetV2 under torchvision's names: `features.0` the stem, `features.{1..17}.conv` the inverted
/// residual blocks ([1x1 expand,] 3x3 depthwise, 1x1 linear projection), `features.18` the head,
/// `classifier.1` the linear layer after dropout.
#[derive(Debug)]
struct MobileNetV2 {
    stem: ConvBnAct,
    blocks: Vec<(Vec<ConvBnAct>, bool)>, // the block's units, and whether its input is added
    head: ConvBnAct,
    dropout: f64,
    fc: nn::Linear,
}

impl MobileNetV2 {
    fn new(p: nn::Path, shape: &NetShape, params: &TrainParams) -> Self {
        use bench_core::training::{
            mobilenet_v2_blocks, MOBILENET_V2_HEAD_IN, MOBILENET_V2_LAST as LAST, MOBILENET_V2_STEM as STEM,
        };
        let f = &p / "features";
        // Conv2dNormActivation `{path}.0` / `{path}.1` with ReLU6; channels [in, out].
        let unit = |path: nn::Path, [c_in, c_out]: [usize; 2], k, stride: usize, groups: usize| ConvBnAct {
            unit: grouped_conv_bn(&path / 0, &path / 1, [c_in, c_out], k, stride, groups),
            relu6: true,
        };
        let stem = unit(&f / 0, [shape.channels, STEM], 3, 1, 1);
        let blocks: Vec<_> = mobilenet_v2_blocks()
            .into_iter()
            .map(|b| {
                let conv = &f / b.index / "conv";
                let mut units = Vec::new();
                if b.expand {
                    units.push(unit(&conv / 0, [b.c_in, b.hidden], 1, 1, 1));
                }
                let j = units.len();
                units.push(unit(&conv / j, [b.hidden, b.hidden], 3, b.stride, b.hidden));
                let project = grouped_conv_bn(&conv / (j + 1), &conv / (j + 2), [b.hidden, b.c_out], 1, 1, 1);
                units.push(ConvBnAct { unit: project, relu6: false });
                (units, b.residual())
            })
            .collect();
        let head = unit(&f / (blocks.len() + 1), [MOBILENET_V2_HEAD_IN, LAST], 1, 1, 1);
        let fc = nn::linear(&p / "classifier" / 1, LAST as i64, shape.classes as i64, Default::default());
        MobileNetV2 { stem, blocks, head, dropout: params.dropout_rate, fc }
    }
}

impl ModuleT for MobileNetV2 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = self.stem.forward_t(xs, train);
        for (units, residual) in &self.blocks {
            let y = units.iter().fold(x.shallow_clone(), |y, unit| unit.forward_t(&y, train));
            x = if *residual { x + y } else { y };
        }
        let x = self.head.forward_t(&x, train).adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        x.dropout(self.dropout, train).apply(&self.fc)
    }
}

pub fn build(job: &Job, params: &TrainParams, shape: &NetShape, weights: &Path) -> Result<Box<dyn Network>> {
    let pad = if job.algorithm == "vgg16" { bench_core::training::vgg_padding(shape)? } else { 0 };
    train_net(job, params, weights, |root| -> Box<dyn ModuleT> {
        match job.algorithm.as_str() {
            "lenet" => Box::new(LeNet::new(root, shape)),
            "simple_cnn" => Box::new(SimpleCnn::new(root, shape, params)),
            "resnet18" => Box::new(ResNet18::new(root, shape, params)),
            "attention_cnn" => Box::new(AttentionCnn::new(root, shape)),
            "vgg16" => Box::new(Vgg16::new(root, shape, params, pad)),
            _ => Box::new(MobileNetV2::new(root, shape, params)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// The float64 parity run relies on set_kind reaching the layers' own handles.
    #[test]
    fn set_kind_reaches_the_layers() {
        let mut vs = nn::VarStore::new(Device::Cpu);
        let shape = NetShape { channels: 1, height: 28, width: 28, classes: 10 };
        let net = LeNet::new(vs.root(), &shape);
        vs.set_kind(Kind::Double);
        assert_eq!(net.conv1.ws.kind(), Kind::Double);
        let x = Tensor::zeros([2, 1, 28, 28], (Kind::Double, Device::Cpu));
        assert_eq!(net.forward_t(&x, false).kind(), Kind::Double);
    }
}
