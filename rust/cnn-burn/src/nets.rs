//! The networks on burn's modules, filled from the shared safetensors file (PyTorch names): LeNet-5
//! and the small CNN (`SmallNet`), the SE attention CNN, and ResNet-18, VGG-16 and MobileNetV2 under
//! torchvision's names.
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::Result;
use bench_core::training::{
    mobilenet_v2_blocks, vgg16_layers, vgg_padding, NetShape, TrainParams, VggConv, MOBILENET_V2_HEAD_IN,
    MOBILENET_V2_LAST, MOBILENET_V2_STEM, RESNET18_STAGES, SE_REDUCTION, VGG_BLOCK,
};
use burn::module::{Module, Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{Dropout, DropoutConfig, Linear, PaddingConfig2d};
use burn::tensor::activation::{relu, relu6, sigmoid};
use burn::tensor::module::{batch_norm, batch_norm_train};
use burn::tensor::{Device, Tensor};
use cnn_burn::burn_net::{Model, Weights};

const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

/// Batch normalisation with PyTorch's running statistics: running = (1 - m) running + m batch,
/// the variance term unbiased (n / (n - 1) times the batch variance; burn's own uses the biased one).
#[derive(Module, Debug)]
pub struct TorchBatchNorm {
    gamma: Param<Tensor<1>>,
    beta: Param<Tensor<1>>,
    running_mean: RunningState<Tensor<1>>,
    running_var: RunningState<Tensor<1>>,
}

impl TorchBatchNorm {
    fn named_tensors(&self, name: &str, out: &mut Vec<(String, Tensor<1>)>) {
        out.push((format!("{name}.weight"), self.gamma.val()));
        out.push((format!("{name}.bias"), self.beta.val()));
        out.push((format!("{name}.running_mean"), self.running_mean.value()));
        out.push((format!("{name}.running_var"), self.running_var.value()));
    }

    fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let device = input.device();
        if !device.is_autodiff() {
            let mean = self.running_mean.value().to_device(&device);
            let var = self.running_var.value().to_device(&device);
            return batch_norm(input, self.gamma.val(), self.beta.val(), mean, var, BN_EPS);
        }
        let [n, _, h, w] = input.dims();
        let count = (n * h * w) as f64;
        let result = batch_norm_train(input, self.gamma.val(), self.beta.val(), BN_EPS);
        let mean = self.running_mean.value_sync().to_device(&device);
        let var = self.running_var.value_sync().to_device(&device);
        let mean = mean.mul_scalar(1.0 - BN_MOMENTUM).add(result.mean.detach().mul_scalar(BN_MOMENTUM));
        let unbiased = result.variance.detach().mul_scalar(count / (count - 1.0).max(1.0));
        let var = var.mul_scalar(1.0 - BN_MOMENTUM).add(unbiased.mul_scalar(BN_MOMENTUM));
        self.running_mean.update(mean.detach());
        self.running_var.update(var.detach());
        result.output
    }
}

/// Every network of the task; burn's `Module` derive dispatches over the variants (one value per
/// process, so the variants' size difference costs nothing).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Net {
    Small(SmallNet),
    Residual(ResNet18),
    Attention(AttentionCnn),
    Vgg(Vgg16),
    Mobile(MobileNetV2),
}

impl Model for Net {
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Net::Small(net) => net.forward(x),
            Net::Residual(net) => net.forward(x),
            Net::Attention(net) => net.forward(x),
            Net::Vgg(net) => net.forward(x),
            Net::Mobile(net) => net.forward(x),
        }
    }

    fn named_tensors(&self) -> Vec<(String, Tensor<1>)> {
        match self {
            Net::Small(net) => net.named_tensors(),
            Net::Residual(net) => net.named_tensors(),
            Net::Attention(net) => net.named_tensors(),
            Net::Vgg(net) => net.named_tensors(),
            Net::Mobile(net) => net.named_tensors(),
        }
    }
}

/// Squeeze-and-excitation (Hu et al. 2018): x * sigmoid(fc2(ReLU(fc1(global average of x)))).
#[derive(Module, Debug)]
pub struct SqueezeExcitation {
    fc1: Linear,
    fc2: Linear,
}

impl SqueezeExcitation {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, c, _, _] = x.dims();
        let pooled = x.clone().mean_dim(3).mean_dim(2).reshape([n, c]);
        let weights = sigmoid(self.fc2.forward(relu(self.fc1.forward(pooled))));
        x * weights.reshape([n, c, 1, 1])
    }
}

/// [conv3x3 BN ReLU SE maxpool2] x 2 (32, 64 channels), global average pool, linear.
#[derive(Module, Debug)]
pub struct AttentionCnn {
    convs: Vec<Conv2d>,
    bns: Vec<TorchBatchNorm>,
    ses: Vec<SqueezeExcitation>,
    fc: Linear,
}

impl AttentionCnn {
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = x;
        for ((conv, bn), se) in self.convs.iter().zip(&self.bns).zip(&self.ses) {
            x = pool(se.forward(relu(bn.forward(conv.forward(x)))));
        }
        self.fc.forward(x.mean_dim(3).mean_dim(2).flatten::<2>(1, 3))
    }

    fn named_tensors(&self) -> Vec<(String, Tensor<1>)> {
        let mut out = Vec::new();
        for (i, ((conv, bn), se)) in self.convs.iter().zip(&self.bns).zip(&self.ses).enumerate() {
            let k = i + 1;
            conv_tensors(&format!("conv{k}"), conv, &mut out);
            bn.named_tensors(&format!("bn{k}"), &mut out);
            linear_tensors(&format!("se{k}.fc1"), &se.fc1, &mut out);
            linear_tensors(&format!("se{k}.fc2"), &se.fc2, &mut out);
        }
        linear_tensors("fc", &self.fc, &mut out);
        out
    }
}

/// A convolution's weight (PyTorch's layout already) and its bias, if it has one.
fn conv_tensors(name: &str, conv: &Conv2d, out: &mut Vec<(String, Tensor<1>)>) {
    out.push((format!("{name}.weight"), conv.weight.val().flatten::<1>(0, 3)));
    if let Some(bias) = &conv.bias {
        out.push((format!("{name}.bias"), bias.val()));
    }
}

/// A Linear's weight in PyTorch's [out, in] layout and its bias.
fn linear_tensors(name: &str, linear: &Linear, out: &mut Vec<(String, Tensor<1>)>) {
    out.push((format!("{name}.weight"), linear.weight.val().transpose().flatten::<1>(0, 1)));
    if let Some(bias) = &linear.bias {
        out.push((format!("{name}.bias"), bias.val()));
    }
}

/// A bias-free convolution followed by batch norm (ResNet's unit).
#[derive(Module, Debug)]
pub struct ConvBn {
    conv: Conv2d,
    bn: TorchBatchNorm,
}

impl ConvBn {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.forward(self.conv.forward(x))
    }

    fn named_tensors(&self, conv: &str, bn: &str, out: &mut Vec<(String, Tensor<1>)>) {
        conv_tensors(conv, &self.conv, out);
        self.bn.named_tensors(bn, out);
    }
}

/// torchvision's BasicBlock: conv3x3-BN-ReLU-conv3x3-BN, plus the input (or its 1x1 projection).
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: ConvBn,
    conv2: ConvBn,
    downsample: Option<ConvBn>,
}

impl BasicBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.conv2.forward(relu(self.conv1.forward(x.clone())));
        let shortcut = match &self.downsample {
            Some(down) => down.forward(x),
            None => x,
        };
        relu(y + shortcut)
    }
}

/// ResNet-18 under torchvision's names (`layer2.0.downsample.0.weight`, `fc.bias`).
#[derive(Module, Debug)]
pub struct ResNet18 {
    stem: ConvBn,
    max_pool: bool,
    blocks: Vec<BasicBlock>,
    fc: Linear,
}

impl ResNet18 {
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = relu(self.stem.forward(x));
        if self.max_pool {
            x = MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init()
                .forward(x);
        }
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.fc.forward(x.mean_dim(3).mean_dim(2).flatten::<2>(1, 3))
    }

    fn named_tensors(&self) -> Vec<(String, Tensor<1>)> {
        let mut out = Vec::new();
        self.stem.named_tensors("conv1", "bn1", &mut out);
        for (i, block) in self.blocks.iter().enumerate() {
            let name = format!("layer{}.{}", i / 2 + 1, i % 2);
            block.conv1.named_tensors(&format!("{name}.conv1"), &format!("{name}.bn1"), &mut out);
            block.conv2.named_tensors(&format!("{name}.conv2"), &format!("{name}.bn2"), &mut out);
            if let Some(down) = &block.downsample {
                down.named_tensors(
                    &format!("{name}.downsample.0"),
                    &format!("{name}.downsample.1"),
                    &mut out,
                );
            }
        }
        linear_tensors("fc", &self.fc, &mut out);
        out
    }
}

/// One VGG layer: a 3x3 convolution [with batch norm] and ReLU, or (None) a 2x2 max-pool; `index`
/// is the convolution's in torchvision's `features` (its batch norm's is the next).
#[derive(Module, Debug)]
pub struct VggLayer {
    index: usize,
    conv: Conv2d,
    bn: Option<TorchBatchNorm>,
}

/// VGG-16 (configuration D) under torchvision's names (`features.{i}`, `classifier.{0,3,6}`):
/// zero-padding to a multiple of 32, 13 convolutions [with batch norm] and five max-pools, then
/// 512-512-classes with ReLU and dropout.
#[derive(Module, Debug)]
pub struct Vgg16 {
    pad: usize,
    layers: Vec<Option<VggLayer>>,
    classifier: Vec<Linear>,
    dropout: Dropout,
}

impl Vgg16 {
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let p = self.pad;
        let mut x = x.pad((p, p, p, p), 0.0f32);
        for layer in &self.layers {
            x = match layer {
                None => pool(x),
                Some(VggLayer { conv, bn: None, .. }) => relu(conv.forward(x)),
                Some(VggLayer { conv, bn: Some(bn), .. }) => relu(bn.forward(conv.forward(x))),
            };
        }
        let x = self.dropout.forward(relu(self.classifier[0].forward(x.flatten::<2>(1, 3))));
        let x = self.dropout.forward(relu(self.classifier[1].forward(x)));
        self.classifier[2].forward(x)
    }

    fn named_tensors(&self) -> Vec<(String, Tensor<1>)> {
        let mut out = Vec::new();
        for VggLayer { index, conv, bn } in self.layers.iter().flatten() {
            conv_tensors(&format!("features.{index}"), conv, &mut out);
            if let Some(bn) = bn {
                bn.named_tensors(&format!("features.{}", index + 1), &mut out);
            }
        }
        for (linear, i) in self.classifier.iter().zip([0, 3, 6]) {
            linear_tensors(&format!("classifier.{i}"), linear, &mut out);
        }
        out
    }
}

/// torchvision's Conv2dNormActivation: a bias-free convolution and batch norm (`ConvBn`), then
/// ReLU6 where `relu6`; a depthwise convolution has groups = channels.
#[derive(Module, Debug)]
pub struct ConvBnAct {
    unit: ConvBn,
    relu6: bool,
}

impl ConvBnAct {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.unit.forward(x);
        if self.relu6 {
            relu6(y)
        } else {
            y
        }
    }
}

/// One inverted residual block: [1x1 expand,] 3x3 depthwise, 1x1 linear projection (+ input).
#[derive(Module, Debug)]
pub struct InvertedResidual {
    units: Vec<ConvBnAct>,
    residual: bool,
}

/// MobileNetV2 under torchvision's names: `features.0` the stem, `features.{1..17}.conv` the inverted
/// residual blocks, `features.18` the head, `classifier.1` the linear layer after dropout.
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    stem: ConvBnAct,
    blocks: Vec<InvertedResidual>,
    head: ConvBnAct,
    dropout: Dropout,
    fc: Linear,
}

impl MobileNetV2 {
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward(x);
        for block in &self.blocks {
            let y = block.units.iter().fold(x.clone(), |y, unit| unit.forward(y));
            x = if block.residual { x + y } else { y };
        }
        let x = self.head.forward(x).mean_dim(3).mean_dim(2).flatten::<2>(1, 3);
        self.fc.forward(self.dropout.forward(x))
    }

    fn named_tensors(&self) -> Vec<(String, Tensor<1>)> {
        let mut out = Vec::new();
        self.stem.unit.named_tensors("features.0.0", "features.0.1", &mut out);
        for (i, block) in self.blocks.iter().enumerate() {
            let conv = format!("features.{}.conv", i + 1);
            let (last, act) = block.units.split_last().expect("a block has units");
            for (j, unit) in act.iter().enumerate() {
                unit.unit.named_tensors(&format!("{conv}.{j}.0"), &format!("{conv}.{j}.1"), &mut out);
            }
            let j = act.len();
            last.unit.named_tensors(&format!("{conv}.{j}"), &format!("{conv}.{}", j + 1), &mut out);
        }
        let head = format!("features.{}", self.blocks.len() + 1);
        self.head.unit.named_tensors(&format!("{head}.0"), &format!("{head}.1"), &mut out);
        linear_tensors("classifier.1", &self.fc, &mut out);
        out
    }
}

#[derive(Module, Debug)]
pub struct SmallNet {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Option<Conv2d>,
    bns: Vec<TorchBatchNorm>,
    fc1: Linear,
    fc2: Linear,
    fc3: Option<Linear>,
    dropout: Dropout,
    residual: bool,
}

fn pool(x: Tensor<4>) -> Tensor<4> {
    MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init().forward(x)
}

impl SmallNet {
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match (&self.conv3, &self.fc3) {
            (None, Some(fc3)) => {
                // LeNet-5
                let x = pool(relu(self.conv1.forward(x)));
                let x = pool(relu(self.conv2.forward(x))).flatten::<2>(1, 3);
                fc3.forward(relu(self.fc2.forward(relu(self.fc1.forward(x)))))
            }
            (Some(conv3), _) => {
                let x = pool(relu(self.norm(0, self.conv1.forward(x))));
                let y = self.norm(2, conv3.forward(relu(self.norm(1, self.conv2.forward(x.clone())))));
                let y = if self.residual { y + x } else { y };
                let y = self.dropout.forward(pool(relu(y)).flatten::<2>(1, 3));
                self.fc2.forward(self.dropout.forward(relu(self.fc1.forward(y))))
            }
            (None, None) => unreachable!("built by `load`"),
        }
    }

    /// Every tensor by PyTorch name and in PyTorch's layout (Linear weights transposed back), flattened.
    fn named_tensors(&self) -> Vec<(String, Tensor<1>)> {
        let mut out = Vec::new();
        let convs =
            [("conv1", Some(&self.conv1)), ("conv2", Some(&self.conv2)), ("conv3", self.conv3.as_ref())];
        for (name, conv) in convs {
            if let Some(conv) = conv {
                conv_tensors(name, conv, &mut out);
            }
        }
        let linears = [("fc1", Some(&self.fc1)), ("fc2", Some(&self.fc2)), ("fc3", self.fc3.as_ref())];
        for (name, linear) in linears {
            if let Some(linear) = linear {
                linear_tensors(name, linear, &mut out);
            }
        }
        for (i, bn) in self.bns.iter().enumerate() {
            bn.named_tensors(&format!("bn{}", i + 1), &mut out);
        }
        out
    }

    fn norm(&self, i: usize, x: Tensor<4>) -> Tensor<4> {
        match self.bns.get(i) {
            Some(bn) => bn.forward(x),
            None => x,
        }
    }
}

/// The CNN layers read from the shared initial weights.
trait CnnWeights {
    fn conv(&self, name: &str, config: Conv2dConfig) -> Result<Conv2d>;
    fn conv_bn(
        &self,
        conv: &str,
        bn: &str,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
    ) -> Result<ConvBn>;
    fn grouped_conv_bn(
        &self,
        conv: &str,
        bn: &str,
        channels: [usize; 2],
        k: usize,
        stride: usize,
        groups: usize,
    ) -> Result<ConvBn>;
    fn batch_norm(&self, name: &str, features: usize) -> Result<TorchBatchNorm>;
}

impl CnnWeights for Weights<'_> {
    fn conv(&self, name: &str, config: Conv2dConfig) -> Result<Conv2d> {
        let [c_in, c_out] = config.channels;
        let [k1, k2] = config.kernel_size;
        let mut conv = config.init(self.device);
        conv.weight = Param::from_tensor(self.get(&format!("{name}.weight"), [c_out, c_in, k1, k2])?);
        conv.bias = Some(Param::from_tensor(self.get(&format!("{name}.bias"), [c_out])?));
        Ok(conv)
    }

    fn conv_bn(
        &self,
        conv: &str,
        bn: &str,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
    ) -> Result<ConvBn> {
        self.grouped_conv_bn(conv, bn, [c_in, c_out], k, stride, 1)
    }

    /// A bias-free convolution in `groups` groups (weight [out, in / groups, k, k]) and batch norm.
    fn grouped_conv_bn(
        &self,
        conv: &str,
        bn: &str,
        [c_in, c_out]: [usize; 2],
        k: usize,
        stride: usize,
        groups: usize,
    ) -> Result<ConvBn> {
        let pad = k / 2;
        let config = Conv2dConfig::new([c_in, c_out], [k, k])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_groups(groups)
            .with_bias(false);
        let mut layer = config.init(self.device);
        let shape = [c_out, c_in / groups, k, k];
        layer.weight = Param::from_tensor(self.get(&format!("{conv}.weight"), shape)?);
        Ok(ConvBn { conv: layer, bn: self.batch_norm(bn, c_out)? })
    }

    fn batch_norm(&self, name: &str, features: usize) -> Result<TorchBatchNorm> {
        Ok(TorchBatchNorm {
            gamma: Param::from_tensor(self.get(&format!("{name}.weight"), [features])?),
            beta: Param::from_tensor(self.get(&format!("{name}.bias"), [features])?),
            running_mean: RunningState::new(self.get(&format!("{name}.running_mean"), [features])?),
            running_var: RunningState::new(self.get(&format!("{name}.running_var"), [features])?),
        })
    }
}

pub fn load(job: &Job, params: &TrainParams, shape: &NetShape, path: &Path, device: &Device) -> Result<Net> {
    let bytes = Weights::read(path)?;
    let w = Weights::new(job, &bytes, path, device)?;
    let conv = |c_in, c_out, k, pad| {
        Conv2dConfig::new([c_in, c_out], [k, k]).with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
    };
    match job.algorithm.as_str() {
        "resnet18" => return resnet18(&w, params, shape).map(Net::Residual),
        "vgg16" => return vgg16(&w, params, shape).map(Net::Vgg),
        "mobilenet" => return mobilenet(&w, params, shape).map(Net::Mobile),
        _ => {}
    }
    if job.algorithm == "attention_cnn" {
        let (mut convs, mut bns, mut ses) = (Vec::new(), Vec::new(), Vec::new());
        let mut c_in = shape.channels;
        for (i, c_out) in [32usize, 64].into_iter().enumerate() {
            let k = i + 1;
            convs.push(w.conv(&format!("conv{k}"), conv(c_in, c_out, 3, 1))?);
            bns.push(w.batch_norm(&format!("bn{k}"), c_out)?);
            let hidden = c_out / SE_REDUCTION;
            ses.push(SqueezeExcitation {
                fc1: w.linear(&format!("se{k}.fc1"), c_out, hidden)?,
                fc2: w.linear(&format!("se{k}.fc2"), hidden, c_out)?,
            });
            c_in = c_out;
        }
        return Ok(Net::Attention(AttentionCnn { convs, bns, ses, fc: w.linear("fc", 64, shape.classes)? }));
    }
    if job.algorithm == "lenet" {
        let pad = if shape.height == 28 { 2 } else { 0 };
        let side = ((shape.height + 2 * pad - 4) / 2 - 4) / 2;
        return Ok(Net::Small(SmallNet {
            conv1: w.conv("conv1", conv(shape.channels, 6, 5, pad))?,
            conv2: w.conv("conv2", conv(6, 16, 5, 0))?,
            conv3: None,
            bns: Vec::new(),
            fc1: w.linear("fc1", 16 * side * side, 120)?,
            fc2: w.linear("fc2", 120, 84)?,
            fc3: Some(w.linear("fc3", 84, shape.classes)?),
            dropout: DropoutConfig::new(0.0).init(),
            residual: false,
        }));
    }
    let bns = if params.use_batch_norm {
        vec![w.batch_norm("bn1", 16)?, w.batch_norm("bn2", 16)?, w.batch_norm("bn3", 16)?]
    } else {
        Vec::new()
    };
    Ok(Net::Small(SmallNet {
        conv1: w.conv("conv1", conv(shape.channels, 16, 3, 1))?,
        conv2: w.conv("conv2", conv(16, 16, 3, 1))?,
        conv3: Some(w.conv("conv3", conv(16, 16, 3, 1))?),
        bns,
        fc1: w.linear("fc1", 16 * (shape.height / 4) * (shape.width / 4), 64)?,
        fc2: w.linear("fc2", 64, shape.classes)?,
        fc3: None,
        dropout: DropoutConfig::new(params.dropout_rate).init(),
        residual: params.use_residual,
    }))
}

fn resnet18(w: &Weights, params: &TrainParams, shape: &NetShape) -> Result<ResNet18> {
    let imagenet = params.stem == "imagenet";
    let (k, stride) = if imagenet { (7, 2) } else { (3, 1) };
    let stem = w.conv_bn("conv1", "bn1", shape.channels, 64, k, stride)?;
    let mut blocks = Vec::new();
    let mut c_in = 64;
    for (i, &(c_out, stride)) in RESNET18_STAGES.iter().enumerate() {
        for j in 0..2 {
            let name = format!("layer{}.{j}", i + 1);
            let (block_in, block_stride) = if j == 0 { (c_in, stride) } else { (c_out, 1) };
            let downsample = if block_stride != 1 || block_in != c_out {
                let (conv, bn) = (format!("{name}.downsample.0"), format!("{name}.downsample.1"));
                Some(w.conv_bn(&conv, &bn, block_in, c_out, 1, block_stride)?)
            } else {
                None
            };
            blocks.push(BasicBlock {
                conv1: w.conv_bn(
                    &format!("{name}.conv1"),
                    &format!("{name}.bn1"),
                    block_in,
                    c_out,
                    3,
                    block_stride,
                )?,
                conv2: w.conv_bn(&format!("{name}.conv2"), &format!("{name}.bn2"), c_out, c_out, 3, 1)?,
                downsample,
            });
        }
        c_in = c_out;
    }
    Ok(ResNet18 { stem, max_pool: imagenet, blocks, fc: w.linear("fc", 512, shape.classes)? })
}

fn vgg16(w: &Weights, params: &TrainParams, shape: &NetShape) -> Result<Vgg16> {
    let pad = vgg_padding(shape)?;
    let mut layers = Vec::new();
    for layer in vgg16_layers(shape.channels, params.use_batch_norm) {
        layers.push(match layer {
            None => None,
            Some(VggConv { index, c_in, c_out }) => {
                let config = Conv2dConfig::new([c_in, c_out], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
                let conv = w.conv(&format!("features.{index}"), config)?;
                let bn = if params.use_batch_norm {
                    Some(w.batch_norm(&format!("features.{}", index + 1), c_out)?)
                } else {
                    None
                };
                Some(VggLayer { index, conv, bn })
            }
        });
    }
    let side = (shape.height + 2 * pad) / VGG_BLOCK;
    let classifier = vec![
        w.linear("classifier.0", 512 * side * side, 512)?,
        w.linear("classifier.3", 512, 512)?,
        w.linear("classifier.6", 512, shape.classes)?,
    ];
    Ok(Vgg16 { pad, layers, classifier, dropout: DropoutConfig::new(params.dropout_rate).init() })
}

fn mobilenet(w: &Weights, params: &TrainParams, shape: &NetShape) -> Result<MobileNetV2> {
    let unit =
        |name: &str, channels: [usize; 2], k: usize, stride: usize, groups: usize| -> Result<ConvBnAct> {
            let unit =
                w.grouped_conv_bn(&format!("{name}.0"), &format!("{name}.1"), channels, k, stride, groups)?;
            Ok(ConvBnAct { unit, relu6: true })
        };
    let stem = unit("features.0", [shape.channels, MOBILENET_V2_STEM], 3, 1, 1)?;
    let mut blocks = Vec::new();
    for b in mobilenet_v2_blocks() {
        let conv = format!("features.{}.conv", b.index);
        let mut units = Vec::new();
        if b.expand {
            units.push(unit(&format!("{conv}.0"), [b.c_in, b.hidden], 1, 1, 1)?);
        }
        let j = units.len();
        units.push(unit(&format!("{conv}.{j}"), [b.hidden, b.hidden], 3, b.stride, b.hidden)?);
        let (project, bn) = (format!("{conv}.{}", j + 1), format!("{conv}.{}", j + 2));
        let unit = w.grouped_conv_bn(&project, &bn, [b.hidden, b.c_out], 1, 1, 1)?;
        units.push(ConvBnAct { unit, relu6: false });
        blocks.push(InvertedResidual { units, residual: b.residual() });
    }
    let head =
        unit(&format!("features.{}", blocks.len() + 1), [MOBILENET_V2_HEAD_IN, MOBILENET_V2_LAST], 1, 1, 1)?;
    Ok(MobileNetV2 {
        stem,
        blocks,
        head,
        dropout: DropoutConfig::new(params.dropout_rate).init(),
        fc: w.linear("classifier.1", MOBILENET_V2_LAST, shape.classes)?,
    })
}
