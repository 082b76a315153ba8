//! The candle arm's networks: pure-Rust kernels (cnn::candle_net trains them).
//!
//! Max-pooling: candle 0.11's `max_pool2d` backward multiplies each window's gradient by
//! (number of maxima) / (kernel area) instead of dividing it among the maxima, so a unique maximum
//! of a 2x2 window gets a quarter of its gradient (candle-core backprop.rs, `Op::MaxPool2D`; the
//! test below pins it). Training through it is not the same work as PyTorch's, so this arm pools
//! with reshape + argmax + gather: the same forward values, and PyTorch's gradient (all of it to
//! the window's first maximum, also on ties).
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::Result;
use bench_core::training::{vgg16_layers, NetShape, Network, TrainParams, VggConv};
use candle_core::{ModuleT, Tensor};
use candle_nn::{BatchNorm, Conv2d, Linear, VarBuilder};
use cnn::candle_net::{dropout, train_net};

const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

/// The first maximum of each window (windows on the last dimension, in PyTorch's scan order), with
/// the whole gradient going to it, as PyTorch's max-pooling does; `max` would send the gradient to
/// every tied element (ties are common where VGG's zero padding makes constant regions).
fn first_max(windows: &Tensor) -> candle_core::Result<Tensor> {
    let last = windows.rank() - 1;
    windows.gather(&windows.argmax_keepdim(last)?, last)?.squeeze(last)
}

/// 2x2 max-pooling, stride 2 (even sides), whose gradient goes to each window's first maximum.
fn max_pool2(xs: &Tensor) -> candle_core::Result<Tensor> {
    let (n, c, h, w) = xs.dims4()?;
    let windows = xs.reshape((n, c, h / 2, 2, w / 2, 2))?.permute((0, 1, 2, 4, 3, 5))?;
    first_max(&windows.reshape((n, c, h / 2, w / 2, 4))?)
}

struct LeNet {
    conv1: Conv2d,
    conv2: Conv2d,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl LeNet {
    fn new(vb: &VarBuilder, shape: &NetShape) -> candle_core::Result<Self> {
        let pad = if shape.height == 28 { 2 } else { 0 };
        let side = ((shape.height + 2 * pad - 4) / 2 - 4) / 2;
        let cfg = |padding| candle_nn::Conv2dConfig { padding, ..Default::default() };
        Ok(LeNet {
            conv1: candle_nn::conv2d(shape.channels, 6, 5, cfg(pad), vb.pp("conv1"))?,
            conv2: candle_nn::conv2d(6, 16, 5, cfg(0), vb.pp("conv2"))?,
            fc1: candle_nn::linear(16 * side * side, 120, vb.pp("fc1"))?,
            fc2: candle_nn::linear(120, 84, vb.pp("fc2"))?,
            fc3: candle_nn::linear(84, shape.classes, vb.pp("fc3"))?,
        })
    }
}

impl ModuleT for LeNet {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> candle_core::Result<Tensor> {
        let xs = max_pool2(&xs.apply(&self.conv1)?.relu()?)?;
        let xs = max_pool2(&xs.apply(&self.conv2)?.relu()?)?.flatten_from(1)?;
        xs.apply(&self.fc1)?.relu()?.apply(&self.fc2)?.relu()?.apply(&self.fc3)
    }
}

struct SimpleCnn {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    bns: Option<[BatchNorm; 3]>,
    residual: bool,
    dropout: f32,
    fc1: Linear,
    fc2: Linear,
}

impl SimpleCnn {
    fn new(vb: &VarBuilder, shape: &NetShape, params: &TrainParams) -> candle_core::Result<Self> {
        let same = candle_nn::Conv2dConfig { padding: 1, ..Default::default() };
        let bn = |name: &str| batch_norm(16, vb.pp(name));
        let bns = if params.use_batch_norm { Some([bn("bn1")?, bn("bn2")?, bn("bn3")?]) } else { None };
        Ok(SimpleCnn {
            conv1: candle_nn::conv2d(shape.channels, 16, 3, same, vb.pp("conv1"))?,
            conv2: candle_nn::conv2d(16, 16, 3, same, vb.pp("conv2"))?,
            conv3: candle_nn::conv2d(16, 16, 3, same, vb.pp("conv3"))?,
            bns,
            residual: params.use_residual,
            dropout: params.dropout_rate as f32,
            fc1: candle_nn::linear(16 * (shape.height / 4) * (shape.width / 4), 64, vb.pp("fc1"))?,
            fc2: candle_nn::linear(64, shape.classes, vb.pp("fc2"))?,
        })
    }

    fn norm(&self, i: usize, xs: Tensor, train: bool) -> candle_core::Result<Tensor> {
        match &self.bns {
            Some(bns) => xs.apply_t(&bns[i], train),
            None => Ok(xs),
        }
    }

    fn drop(&self, xs: Tensor, train: bool) -> candle_core::Result<Tensor> {
        dropout(xs, self.dropout, train)
    }
}

impl ModuleT for SimpleCnn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let x = max_pool2(&self.norm(0, xs.apply(&self.conv1)?, train)?.relu()?)?;
        let y = self.norm(1, x.apply(&self.conv2)?, train)?.relu()?;
        let y = self.norm(2, y.apply(&self.conv3)?, train)?;
        let y = if self.residual { (y + &x)? } else { y };
        let y = self.drop(max_pool2(&y.relu()?)?.flatten_from(1)?, train)?;
        self.drop(y.apply(&self.fc1)?.relu()?, train)?.apply(&self.fc2)
    }
}

/// 3x3 max-pooling, stride 2, padding 1 (ResNet's ImageNet stem) on non-negative inputs (after a
/// ReLU, so zero padding is PyTorch's -inf padding: a padded zero that wins a window ties with real
/// zeros, whose gradient the ReLU drops): the first maximum of nine strided views, in PyTorch's scan
/// order. Not candle's `max_pool2d` (see the module's note).
fn max_pool3_s2_p1(xs: &Tensor) -> candle_core::Result<Tensor> {
    let (n, c, h, w) = xs.dims4()?;
    let (oh, ow) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
    let padded = xs.pad_with_zeros(2, 1, 2)?.pad_with_zeros(3, 1, 2)?;
    let mut views = Vec::with_capacity(9);
    for dy in 0..3 {
        let rows =
            padded.narrow(2, dy, 2 * oh)?.reshape((n, c, oh, 2, w + 3))?.narrow(3, 0, 1)?.squeeze(3)?;
        for dx in 0..3 {
            views.push(rows.narrow(3, dx, 2 * ow)?.reshape((n, c, oh, ow, 2))?.narrow(4, 0, 1)?.squeeze(4)?);
        }
    }
    first_max(&Tensor::stack(&views, 4)?)
}

fn batch_norm(channels: usize, vb: VarBuilder) -> candle_core::Result<BatchNorm> {
    let cfg =
        candle_nn::BatchNormConfig { eps: BN_EPS, remove_mean: true, affine: true, momentum: BN_MOMENTUM };
    candle_nn::batch_norm(channels, cfg, vb)
}

fn conv_bn(
    vb: &VarBuilder,
    name: &str,
    bn: &str,
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
) -> candle_core::Result<(Conv2d, BatchNorm)> {
    grouped_conv_bn(vb.pp(name), vb.pp(bn), [c_in, c_out], k, stride, 1)
}

/// A bias-free convolution in `groups` groups (padding k / 2) and batch norm: ResNet's and
/// MobileNetV2's unit (groups = channels: depthwise).
fn grouped_conv_bn(
    conv: VarBuilder,
    bn: VarBuilder,
    [c_in, c_out]: [usize; 2],
    k: usize,
    stride: usize,
    groups: usize,
) -> candle_core::Result<(Conv2d, BatchNorm)> {
    let cfg = candle_nn::Conv2dConfig { padding: k / 2, stride, groups, ..Default::default() };
    Ok((candle_nn::conv2d_no_bias(c_in, c_out, k, cfg, conv)?, batch_norm(c_out, bn)?))
}

fn apply_conv_bn(xs: &Tensor, (conv, bn): &(Conv2d, BatchNorm), train: bool) -> candle_core::Result<Tensor> {
    xs.apply(conv)?.apply_t(bn, train)
}

/// torchvision's BasicBlock: conv3x3-BN-ReLU-conv3x3-BN, plus the input (or its 1x1 projection).
struct BasicBlock {
    conv1: (Conv2d, BatchNorm),
    conv2: (Conv2d, BatchNorm),
    downsample: Option<(Conv2d, BatchNorm)>,
}

impl BasicBlock {
    fn new(vb: VarBuilder, c_in: usize, c_out: usize, stride: usize) -> candle_core::Result<Self> {
        let downsample = if stride != 1 || c_in != c_out {
            Some(conv_bn(&vb.pp("downsample"), "0", "1", c_in, c_out, 1, stride)?)
        } else {
            None
        };
        Ok(BasicBlock {
            conv1: conv_bn(&vb, "conv1", "bn1", c_in, c_out, 3, stride)?,
            conv2: conv_bn(&vb, "conv2", "bn2", c_out, c_out, 3, 1)?,
            downsample,
        })
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let y = apply_conv_bn(&apply_conv_bn(xs, &self.conv1, train)?.relu()?, &self.conv2, train)?;
        let shortcut = match &self.downsample {
            Some(down) => apply_conv_bn(xs, down, train)?,
            None => xs.clone(),
        };
        (y + shortcut)?.relu()
    }
}

/// ResNet-18 under torchvision's names (`layer2.0.downsample.0.weight`, `fc.bias`).
struct ResNet18 {
    stem: (Conv2d, BatchNorm),
    max_pool: bool,
    blocks: Vec<BasicBlock>,
    fc: Linear,
}

impl ResNet18 {
    fn new(vb: &VarBuilder, shape: &NetShape, params: &TrainParams) -> candle_core::Result<Self> {
        let imagenet = params.stem == "imagenet";
        let (k, stride) = if imagenet { (7, 2) } else { (3, 1) };
        let stem = conv_bn(vb, "conv1", "bn1", shape.channels, 64, k, stride)?;
        let mut blocks = Vec::new();
        let mut c_in = 64;
        for (i, &(c_out, stride)) in bench_core::training::RESNET18_STAGES.iter().enumerate() {
            let layer = vb.pp(format!("layer{}", i + 1));
            blocks.push(BasicBlock::new(layer.pp("0"), c_in, c_out, stride)?);
            blocks.push(BasicBlock::new(layer.pp("1"), c_out, c_out, 1)?);
            c_in = c_out;
        }
        let fc = candle_nn::linear(512, shape.classes, vb.pp("fc"))?;
        Ok(ResNet18 { stem, max_pool: imagenet, blocks, fc })
    }
}

impl ModuleT for ResNet18 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let mut x = apply_conv_bn(xs, &self.stem, train)?.relu()?;
        if self.max_pool {
            x = max_pool3_s2_p1(&x)?;
        }
        for block in &self.blocks {
            x = block.forward_t(&x, train)?;
        }
        x.mean(3)?.mean(2)?.apply(&self.fc)
    }
}

/// Squeeze-and-excitation (Hu et al. 2018): x * sigmoid(fc2(ReLU(fc1(global average of x)))).
struct SqueezeExcitation {
    fc1: Linear,
    fc2: Linear,
}

impl SqueezeExcitation {
    fn new(vb: VarBuilder, channels: usize) -> candle_core::Result<Self> {
        let hidden = channels / bench_core::training::SE_REDUCTION;
        Ok(SqueezeExcitation {
            fc1: candle_nn::linear(channels, hidden, vb.pp("fc1"))?,
            fc2: candle_nn::linear(hidden, channels, vb.pp("fc2"))?,
        })
    }

    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let (n, c, _, _) = xs.dims4()?;
        let weights = xs.mean(3)?.mean(2)?.apply(&self.fc1)?.relu()?.apply(&self.fc2)?;
        xs.broadcast_mul(&candle_nn::ops::sigmoid(&weights)?.reshape((n, c, 1, 1))?)
    }
}

/// [conv3x3 BN ReLU SE maxpool2] x 2 (32, 64 channels), global average pool, linear.
struct AttentionCnn {
    stages: Vec<(Conv2d, BatchNorm, SqueezeExcitation)>,
    fc: Linear,
}

impl AttentionCnn {
    fn new(vb: &VarBuilder, shape: &NetShape) -> candle_core::Result<Self> {
        let same = candle_nn::Conv2dConfig { padding: 1, ..Default::default() };
        let mut stages = Vec::new();
        let mut c_in = shape.channels;
        for (i, c_out) in [32usize, 64].into_iter().enumerate() {
            stages.push((
                candle_nn::conv2d(c_in, c_out, 3, same, vb.pp(format!("conv{}", i + 1)))?,
                batch_norm(c_out, vb.pp(format!("bn{}", i + 1)))?,
                SqueezeExcitation::new(vb.pp(format!("se{}", i + 1)), c_out)?,
            ));
            c_in = c_out;
        }
        Ok(AttentionCnn { stages, fc: candle_nn::linear(64, shape.classes, vb.pp("fc"))? })
    }
}

impl ModuleT for AttentionCnn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let mut x = xs.clone();
        for (conv, bn, se) in &self.stages {
            x = max_pool2(&se.forward(&x.apply(conv)?.apply_t(bn, train)?.relu()?)?)?;
        }
        x.mean(3)?.mean(2)?.apply(&self.fc)
    }
}

/// VGG-16 (configuration D) under torchvision's names (`features.{i}`, `classifier.{0,3,6}`):
/// zero-padding to a multiple of 32, 13 convolutions [with batch norm] and five max-pools, then
/// 512-512-classes with ReLU and dropout.
struct Vgg16 {
    pad: usize,
    layers: Vec<Option<(Conv2d, Option<BatchNorm>)>>, // None: a 2x2 max-pool
    classifier: [Linear; 3],
    dropout: f32,
}

impl Vgg16 {
    fn new(vb: &VarBuilder, shape: &NetShape, params: &TrainParams, pad: usize) -> candle_core::Result<Self> {
        let features = vb.pp("features");
        let cfg = candle_nn::Conv2dConfig { padding: 1, ..Default::default() };
        let mut layers = Vec::new();
        for layer in vgg16_layers(shape.channels, params.use_batch_norm) {
            layers.push(match layer {
                None => None,
                Some(VggConv { index, c_in, c_out }) => {
                    let conv = candle_nn::conv2d(c_in, c_out, 3, cfg, features.pp(index))?;
                    let bn = if params.use_batch_norm {
                        Some(batch_norm(c_out, features.pp(index + 1))?)
                    } else {
                        None
                    };
                    Some((conv, bn))
                }
            });
        }
        let side = (shape.height + 2 * pad) / bench_core::training::VGG_BLOCK;
        let classifier = vb.pp("classifier");
        Ok(Vgg16 {
            pad,
            layers,
            classifier: [
                candle_nn::linear(512 * side * side, 512, classifier.pp(0))?,
                candle_nn::linear(512, 512, classifier.pp(3))?,
                candle_nn::linear(512, shape.classes, classifier.pp(6))?,
            ],
            dropout: params.dropout_rate as f32,
        })
    }
}

impl ModuleT for Vgg16 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let mut x = xs.pad_with_zeros(2, self.pad, self.pad)?.pad_with_zeros(3, self.pad, self.pad)?;
        for layer in &self.layers {
            x = match layer {
                None => max_pool2(&x)?,
                Some((conv, None)) => x.apply(conv)?.relu()?,
                Some((conv, Some(bn))) => x.apply(conv)?.apply_t(bn, train)?.relu()?,
            };
        }
        let [fc1, fc2, fc3] = &self.classifier;
        let x = dropout(x.flatten_from(1)?.apply(fc1)?.relu()?, self.dropout, train)?;
        dropout(x.apply(fc2)?.relu()?, self.dropout, train)?.apply(fc3)
    }
}

/// torchvision's Conv2dNormActivation: `grouped_conv_bn` and, where `relu6`, ReLU6 (candle runs a
/// grouped convolution as one convolution per group, concatenated).
struct ConvBnAct {
    unit: (Conv2d, BatchNorm),
    relu6: bool,
}

impl ConvBnAct {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let y = apply_conv_bn(xs, &self.unit, train)?;
        if self.relu6 {
            y.clamp(0f32, 6f32)
        } else {
            Ok(y)
        }
    }
}

/// MobileNetV2 under torchvision's names: `features.0` the stem, `features.{1..17}.conv` the inverted
/// residual blocks ([1x1 expand,] 3x3 depthwise, 1x1 linear projection), `features.18` the head,
/// `classifier.1` the linear layer after dropout.
struct MobileNetV2 {
    stem: ConvBnAct,
    blocks: Vec<(Vec<ConvBnAct>, bool)>, // the block's units, and whether its input is added
    head: ConvBnAct,
    dropout: f32,
    fc: Linear,
}

impl MobileNetV2 {
    fn new(vb: &VarBuilder, shape: &NetShape, params: &TrainParams) -> candle_core::Result<Self> {
        use bench_core::training::{
            mobilenet_v2_blocks, MOBILENET_V2_HEAD_IN, MOBILENET_V2_LAST as LAST, MOBILENET_V2_STEM as STEM,
        };
        let f = vb.pp("features");
        // Conv2dNormActivation `{path}.0` / `{path}.1` with ReLU6; channels [in, out].
        let unit = |path: VarBuilder, channels, k, stride, groups| -> candle_core::Result<ConvBnAct> {
            Ok(ConvBnAct {
                unit: grouped_conv_bn(path.pp(0), path.pp(1), channels, k, stride, groups)?,
                relu6: true,
            })
        };
        let stem = unit(f.pp(0), [shape.channels, STEM], 3, 1, 1)?;
        let mut blocks = Vec::new();
        for b in mobilenet_v2_blocks() {
            let conv = f.pp(b.index).pp("conv");
            let mut units = Vec::new();
            if b.expand {
                units.push(unit(conv.pp(0), [b.c_in, b.hidden], 1, 1, 1)?);
            }
            let j = units.len();
            units.push(unit(conv.pp(j), [b.hidden, b.hidden], 3, b.stride, b.hidden)?);
            let project = grouped_conv_bn(conv.pp(j + 1), conv.pp(j + 2), [b.hidden, b.c_out], 1, 1, 1)?;
            units.push(ConvBnAct { unit: project, relu6: false });
            blocks.push((units, b.residual()));
        }
        let head = unit(f.pp(blocks.len() + 1), [MOBILENET_V2_HEAD_IN, LAST], 1, 1, 1)?;
        let fc = candle_nn::linear(LAST, shape.classes, vb.pp("classifier").pp(1))?;
        Ok(MobileNetV2 { stem, blocks, head, dropout: params.dropout_rate as f32, fc })
    }
}

impl ModuleT for MobileNetV2 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let mut x = self.stem.forward_t(xs, train)?;
        for (units, residual) in &self.blocks {
            let mut y = x.clone();
            for unit in units {
                y = unit.forward_t(&y, train)?;
            }
            x = if *residual { (x + y)? } else { y };
        }
        let x = self.head.forward_t(&x, train)?.mean(3)?.mean(2)?;
        dropout(x, self.dropout, train)?.apply(&self.fc)
    }
}

pub fn build(job: &Job, params: &TrainParams, shape: &NetShape, weights: &Path) -> Result<Box<dyn Network>> {
    let pad = if job.algorithm == "vgg16" { bench_core::training::vgg_padding(shape)? } else { 0 };
    train_net(job, params, weights, |vb| {
        Ok(match job.algorithm.as_str() {
            "lenet" => Box::new(LeNet::new(vb, shape)?),
            "simple_cnn" => Box::new(SimpleCnn::new(vb, shape, params)?),
            "resnet18" => Box::new(ResNet18::new(vb, shape, params)?),
            "attention_cnn" => Box::new(AttentionCnn::new(vb, shape)?),
            "vgg16" => Box::new(Vgg16::new(vb, shape, params, pad)?),
            _ => Box::new(MobileNetV2::new(vb, shape, params)?),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn pooled_gradient(pool: impl Fn(&Tensor) -> candle_core::Result<Tensor>) -> Vec<f32> {
        let x = Var::from_slice(&[1f32, 2.0, 3.0, 4.0], (1, 1, 2, 2), &Device::Cpu).unwrap();
        let grads = pool(x.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
        grads.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    }

    /// Pins the candle bug this arm works around: when it is fixed, this fails, and the arm can go
    /// back to `max_pool2d`.
    #[test]
    fn candle_max_pool2d_gives_a_unique_maximum_a_quarter_of_its_gradient() {
        assert_eq!(pooled_gradient(|x| x.max_pool2d(2)), vec![0.0, 0.0, 0.0, 0.25]);
    }

    #[test]
    fn max_pool3_s2_p1_matches_pytorchs_values_on_non_negative_inputs() {
        // 1x1x5x5, values 0..24: windows centred on even positions, padding 1.
        let x = Tensor::arange(0f32, 25.0, &Device::Cpu).unwrap().reshape((1, 1, 5, 5)).unwrap();
        let ours: Vec<f32> = max_pool3_s2_p1(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(ours, vec![6.0, 8.0, 9.0, 16.0, 18.0, 19.0, 21.0, 23.0, 24.0]);
        let x = Tensor::arange(0f32, 16.0, &Device::Cpu).unwrap().reshape((1, 1, 4, 4)).unwrap();
        let ours: Vec<f32> = max_pool3_s2_p1(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(ours, vec![5.0, 7.0, 13.0, 15.0]);
    }

    #[test]
    fn max_pool2_gives_the_first_maximum_its_whole_gradient() {
        assert_eq!(pooled_gradient(max_pool2), vec![0.0, 0.0, 0.0, 1.0]);
        let tie = Var::from_slice(&[0.5f32, 2.0, 2.0, 2.0], (1, 1, 2, 2), &Device::Cpu).unwrap();
        let grads = max_pool2(tie.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
        let grad: Vec<f32> = grads.get(tie.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(grad, vec![0.0, 1.0, 0.0, 0.0]); // PyTorch's: the first of the tied maxima
        let x = Tensor::arange(0f32, 16.0, &Device::Cpu).unwrap().reshape((1, 1, 4, 4)).unwrap();
        let ours: Vec<f32> = max_pool2(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let theirs: Vec<f32> = x.max_pool2d(2).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(ours, theirs);
    }
}
