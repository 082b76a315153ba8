//! The `train_classifier` protocol: what one repetition of a training task does, for every
//! framework. Mirrors python/mlbench/training.py (read its docstring for the steps): `build`
//! (timed: construct and load the shared initial weights), `upload` (untimed), every epoch over the
//! shared permutation timed with the device synchronised, untimed test accuracy after each epoch
//! (time-to-accuracy), `evaluate` (timed logits of the test set in batches of EVAL_BATCH) and
//! `infer_bN` (timed, calibrated) for each inference batch size.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array3, Array4};
use ndarray_npy::{read_npy, write_npy};
use serde::Deserialize;

use crate::config::Job;
use crate::data;
use crate::env;
use crate::error::{BenchError, Result};
use crate::gpu;
use crate::harness::{checked_job, in_job, process_timings, run_main, Args, Phases};
use crate::measure::{cpu_time_s, peak_rss_mb, reset_peak_rss, rss_mb, PhaseTimer};
use crate::record::{GpuResources, Record, Resources, Solver, TimeToAccuracy};

/// Batch size of the timed evaluation pass, the same on every side.
pub const EVAL_BATCH: usize = 256;
/// A warm-up repetition trains one epoch of this many batches (every code path, less cost).
pub const WARMUP_BATCHES: usize = 8;

/// What a network's input looks like: images C x H x W; a `sequences` dataset (T steps of F
/// features) reaches the protocol as one-channel T x F samples (a sequence net reads `steps`,
/// `features`), so one protocol serves both layouts (Python: `NetShape`).
#[derive(Debug, Clone, Copy)]
pub struct NetShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
}

impl NetShape {
    pub fn steps(&self) -> usize {
        self.height
    }

    pub fn features(&self) -> usize {
        self.width
    }
}

/// Normalised images (N x C x H x W, row-major float32), or sequences as N x 1 x T x F, and their
/// labels.
pub struct Images {
    pub x: Vec<f32>,
    pub y: Vec<i64>,
    pub n: usize,
    /// [N, C, H, W]
    pub dims: [usize; 4],
}

/// The hyperparameters every training algorithm of the task spec has (`configs/tasks/cnn.yaml`);
/// the architecture switches only some have.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    pub epochs: u32,
    pub batch_size: usize,
    pub optimizer: String,
    pub learning_rate: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub target_accuracy: f64,
    pub pretrained: bool,
    pub weights_file: String,
    #[serde(default)]
    pub use_batch_norm: bool,
    #[serde(default)]
    pub use_residual: bool,
    #[serde(default)]
    pub dropout_rate: f64,
    /// ResNet-18's stem: `cifar` (3x3 stride 1, no max-pool) or `imagenet` (7x7 stride 2 + max-pool).
    #[serde(default)]
    pub stem: String,
    /// The recurrent nets' (configs/tasks/rnn.yaml): units per layer and direction, stacked layers,
    /// both directions.
    #[serde(default)]
    pub hidden_size: usize,
    #[serde(default)]
    pub num_layers: usize,
    #[serde(default)]
    pub bidirectional: bool,
    /// CUDA kernel switches of libtorch (PyTorch and tch): cuDNN's autotuner, TF32 for float32.
    #[serde(default)]
    pub cudnn_benchmark: bool,
    #[serde(default)]
    pub tf32: bool,
}

/// Squeeze-and-excitation's reduction: hidden units = channels / SE_REDUCTION (attention_cnn).
pub const SE_REDUCTION: usize = 8;

/// ResNet-18's stages: (output channels, stride of the first block); two BasicBlocks each.
pub const RESNET18_STAGES: [(usize, usize); 4] = [(64, 1), (128, 2), (256, 2), (512, 2)];

/// VGG configuration D: output channels of each 3x3 convolution, 0 for a 2x2 max-pool (torchvision's
/// `cfgs["D"]` with "M" as 0).
pub const VGG16_LAYERS: [usize; 18] =
    [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];

/// One entry of VGG-16's `features` under torchvision's indices: a 3x3 convolution (its index; its
/// batch norm's is the next when the net has them) from `c_in` to `c_out` channels, then ReLU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VggConv {
    pub index: usize,
    pub c_in: usize,
    pub c_out: usize,
}

/// VGG-16's `features` in order: a convolution, or `None` for a 2x2 max-pool (torchvision's
/// `make_layers`: each convolution takes its index, its batch norm the next, its ReLU the next).
pub fn vgg16_layers(channels: usize, use_batch_norm: bool) -> Vec<Option<VggConv>> {
    let (mut out, mut index, mut c_in) = (Vec::new(), 0, channels);
    for &c_out in &VGG16_LAYERS {
        if c_out == 0 {
            out.push(None);
            index += 1;
        } else {
            out.push(Some(VggConv { index, c_in, c_out }));
            index += if use_batch_norm { 3 } else { 2 };
            c_in = c_out;
        }
    }
    out
}

/// VGG-16's five pools need sides divisible by this; smaller inputs are zero-padded to it.
pub const VGG_BLOCK: usize = 32;

/// Zero rows (and columns) VGG-16 adds on each side so that the (square) images' side becomes a
/// multiple of VGG_BLOCK (28 -> 2, 16 -> 8); an odd total cannot be split equally (Python: `vgg_padding`).
pub fn vgg_padding(shape: &NetShape) -> Result<usize> {
    let side = shape.height;
    if shape.width != side {
        return Err(BenchError::usage(format!("vgg16: needs square images, not {side}x{}", shape.width)));
    }
    let total = (VGG_BLOCK - side % VGG_BLOCK) % VGG_BLOCK;
    if total % 2 == 1 {
        return Err(BenchError::usage(format!(
            "vgg16: images of side {side} cannot be padded equally on both sides to a multiple of {VGG_BLOCK}"
        )));
    }
    Ok(total / 2)
}

/// MobileNetV2's inverted residual stages (expansion t, channels c, blocks n, first stride s) with
/// CIFAR strides (Python: `MOBILENET_V2_STAGES`); the stem is a stride-1 3x3 convolution to 32
/// channels, the head a 1x1 convolution to MOBILENET_V2_LAST channels.
pub const MOBILENET_V2_STAGES: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];
pub const MOBILENET_V2_STEM: usize = 32;
/// The channels of MobileNetV2's last inverted residual stage, which its 1x1 head takes.
pub const MOBILENET_V2_HEAD_IN: usize = MOBILENET_V2_STAGES[MOBILENET_V2_STAGES.len() - 1].1;
pub const MOBILENET_V2_LAST: usize = 1280;

/// One inverted residual block of MobileNetV2 as torchvision numbers it: `features.{index}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvertedResidual {
    pub index: usize,
    pub c_in: usize,
    pub hidden: usize,
    pub c_out: usize,
    pub stride: usize,
    pub expand: bool,
}

impl InvertedResidual {
    /// The shortcut adds the input when the block keeps its shape.
    pub fn residual(&self) -> bool {
        self.stride == 1 && self.c_in == self.c_out
    }
}

/// MobileNetV2's blocks in order (features.1 .. features.17); the head is `features.{len + 1}`.
pub fn mobilenet_v2_blocks() -> Vec<InvertedResidual> {
    let mut blocks = Vec::new();
    let mut c_in = MOBILENET_V2_STEM;
    for &(t, c, n, s) in &MOBILENET_V2_STAGES {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let index = blocks.len() + 1;
            blocks.push(InvertedResidual { index, c_in, hidden: c_in * t, c_out: c, stride, expand: t != 1 });
            c_in = c;
        }
    }
    blocks
}

/// The recurrent cells of configs/tasks/rnn.yaml and the blocks PyTorch stacks in each weight matrix,
/// in its order: `rnn` 1 (tanh), `lstm` 4 (input, forget, cell, output), `gru` 3 (reset, update, new).
pub const RECURRENT_CELLS: [(&str, usize); 3] = [("rnn", 1), ("lstm", 4), ("gru", 3)];

/// Stacked gate blocks of a recurrent cell's weights (RECURRENT_CELLS); 0 for anything else.
pub fn recurrent_gates(cell: &str) -> usize {
    RECURRENT_CELLS.iter().find(|(name, _)| *name == cell).map_or(0, |(_, gates)| *gates)
}

/// The recurrent layers PyTorch's names number (`_l{layer}`, `_reverse` for the backward direction),
/// in its order: every direction of layer 0, then of layer 1, ...: (name suffix, input size).
pub fn recurrent_layers(params: &TrainParams, features: usize) -> Vec<(String, usize)> {
    let directions = if params.bidirectional { 2 } else { 1 };
    let mut out = Vec::new();
    for layer in 0..params.num_layers {
        let inputs = if layer == 0 { features } else { directions * params.hidden_size };
        for direction in 0..directions {
            let reverse = if direction == 1 { "_reverse" } else { "" };
            out.push((format!("_l{layer}{reverse}"), inputs));
        }
    }
    out
}

/// A framework's network, holding its data on the job's device after `upload`.
pub trait Network {
    fn upload(&mut self, train: &Images, test: &Images) -> Result<()>;
    /// One epoch in train mode over `order`; the mean training loss per sample.
    fn train_epoch(&mut self, order: &[i64], batch_size: usize) -> Result<f64>;
    /// Eval-mode logits (count x classes, row-major, on the host) of the first `count` test images.
    fn logits(&mut self, count: usize, batch_size: usize) -> Result<Vec<f32>>;
    fn sync(&self) -> Result<()>;
    /// The framework's own peak device memory since build, in MiB (None on a CPU or where the
    /// framework reports none).
    fn peak_memory_mb(&self) -> Option<f64> {
        None
    }
    /// Every floating-point tensor the network holds, by PyTorch name, in PyTorch's layout (for the
    /// parity test's per-tensor checksums of the loaded weights).
    fn weights(&self) -> Result<Vec<(String, Vec<f32>)>>;
}

/// sha256 of each tensor's float32 little-endian bytes, by name (Python: training.weights_sha256).
pub fn weights_sha256(named: Vec<(String, Vec<f32>)>) -> BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    named
        .into_iter()
        .map(|(name, values)| {
            let mut hasher = Sha256::new();
            for v in values {
                hasher.update(v.to_le_bytes());
            }
            (name, format!("{:x}", hasher.finalize()))
        })
        .collect()
}

/// Builds a network of the job's algorithm from the shared initial weights (safetensors, PyTorch
/// names). `Err(Unsupported)` for what the framework lacks.
pub type NetBuilder = fn(&Job, &TrainParams, &NetShape, &Path) -> Result<Box<dyn Network>>;

/// Applies a job's kernel switches and returns the settings the library then reports.
pub type KernelSwitches = fn(&Job, &TrainParams) -> Result<BTreeMap<String, String>>;

pub struct TrainingInfo {
    pub frameworks: &'static [(&'static str, &'static str)],
    pub build: NetBuilder,
    /// Applies the job's threads (and checks its device) once per process; returns the thread
    /// count each library then reports.
    pub setup: fn(&Job) -> Result<BTreeMap<String, u64>>,
    /// Applies the job's kernel switches (`cudnn_benchmark`, `tf32`) once per process and returns
    /// the settings the library then reports (`env.kernels`); None for a framework without them (the
    /// task spec records such a framework `unsupported` when a switch is on).
    pub kernels: Option<KernelSwitches>,
    pub spec: &'static str,
}

pub fn main_training(info: TrainingInfo) -> ! {
    run_main(|args, startup| run(args, &info, startup))
}

#[derive(Debug, Deserialize)]
struct ImageMeta {
    layout: Option<String>,
    shape: Option<Vec<usize>>,
    n_classes: Option<usize>,
    normalise: Option<Normalise>,
}

#[derive(Debug, Deserialize)]
struct Normalise {
    mean: Vec<f32>,
    std: Vec<f32>,
}

/// The dataset's shape and how its samples are read: images normalised by meta.json's rule, or
/// sequences as stored (`None`).
fn read_meta(job: &Job) -> Result<(NetShape, Option<Normalise>)> {
    let path = job.datasets_dir.join(&job.dataset).join("meta.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| BenchError::usage(format!("{}: cannot read: {e}", path.display())))?;
    let meta: ImageMeta = serde_json::from_str(&text)
        .map_err(|e| BenchError::usage(format!("{}: corrupt meta.json: {e}", path.display())))?;
    match (meta.layout.as_deref(), meta.shape.as_deref(), meta.n_classes, meta.normalise) {
        (Some("images"), Some(&[channels, height, width]), Some(classes), Some(norm))
            if norm.mean.len() == channels && norm.std.len() == channels =>
        {
            Ok((NetShape { channels, height, width, classes }, Some(norm)))
        }
        (Some("sequences"), Some(&[steps, features]), Some(classes), _) => {
            Ok((NetShape { channels: 1, height: steps, width: features, classes }, None))
        }
        _ => Err(BenchError::usage(format!(
            "dataset: {:?} is not a dataset of a training task (images or sequences)",
            job.dataset
        ))),
    }
}

fn npy<T: ndarray_npy::ReadNpyExt>(path: &Path) -> Result<T> {
    read_npy(path).map_err(|e| BenchError::usage(format!("{}: cannot read .npy: {e}", path.display())))
}

/// A split of the dataset as the protocol sees it (`NetShape`): images normalised, sequences as stored.
fn load_samples(job: &Job, split: &str, shape: &NetShape, norm: Option<&Normalise>) -> Result<Images> {
    match norm {
        Some(norm) => load_images(job, split, shape, norm),
        None => load_sequences(job, split, shape),
    }
}

/// float32 sequences (N x T x F) as stored, viewed as N x 1 x T x F.
fn load_sequences(job: &Job, split: &str, shape: &NetShape) -> Result<Images> {
    let folder = job.datasets_dir.join(&job.dataset);
    let x: Array3<f32> = npy(&folder.join(format!("X_{split}.npy")))?;
    let y: Array1<i64> = npy(&folder.join(format!("y_{split}.npy")))?;
    let n = x.shape()[0];
    if x.shape() != [n, shape.steps(), shape.features()] || y.len() != n {
        return Err(BenchError::usage(format!(
            "{}: sequences of shape {:?} and {} labels, meta.json says {:?}",
            folder.display(),
            x.shape(),
            y.len(),
            [shape.steps(), shape.features()]
        )));
    }
    let x = x.as_standard_layout().iter().copied().collect();
    Ok(Images { x, y: y.to_vec(), n, dims: [n, 1, shape.steps(), shape.features()] })
}

/// The rule of meta.json, in float32, in the order Python computes it: (p / 255 - mean) / std.
fn load_images(job: &Job, split: &str, shape: &NetShape, norm: &Normalise) -> Result<Images> {
    let folder = job.datasets_dir.join(&job.dataset);
    let pixels: Array4<u8> = npy(&folder.join(format!("X_{split}.npy")))?;
    let y: Array1<i64> = npy(&folder.join(format!("y_{split}.npy")))?;
    let n = pixels.shape()[0];
    let plane = shape.height * shape.width;
    let x = pixels
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let c = (i / plane) % shape.channels;
            (p as f32 / 255.0f32 - norm.mean[c]) / norm.std[c]
        })
        .collect();
    let dims = [n, shape.channels, shape.height, shape.width];
    if pixels.shape() != dims || y.len() != n {
        return Err(BenchError::usage(format!(
            "{}: images of shape {:?} and {} labels, meta.json says {:?}",
            folder.display(),
            pixels.shape(),
            y.len(),
            &dims[1..]
        )));
    }
    Ok(Images { x, y: y.to_vec(), n, dims })
}

/// What a training job may compute in: the task spec's float32 for every benchmark; float64 for the
/// parity tests, where every framework doing the same arithmetic must agree to float64 rounding
/// (Python: `PRECISIONS`). Each arm computes in the job's precision; what leaves it is float32.
pub const PRECISIONS: [&str; 2] = ["float32", "float64"];

/// Whether the job computes in float64 (else float32).
pub fn float64(job: &Job) -> bool {
    job.precision == "float64"
}

pub fn init_path(job: &Job, seed: u64) -> PathBuf {
    job.fixtures_dir.join(format!("init-{seed}.safetensors"))
}

pub fn order_path(job: &Job, seed: u64) -> PathBuf {
    job.fixtures_dir.join(format!("order-{seed}.npy"))
}

fn run(args: &Args, info: &TrainingInfo, startup: Option<f64>) -> Result<()> {
    let (job, version, _) = checked_job(args, info.frameworks, &[info.spec])?;
    let in_job = in_job(&args.config);
    let params: TrainParams = job.params().map_err(in_job)?;
    if !PRECISIONS.contains(&job.precision.as_str()) {
        return Err(in_job(BenchError::usage(format!(
            "precision: {:?}: a training job computes in {}",
            job.precision,
            PRECISIONS.join(" or ")
        ))));
    }
    let digest = data::verify(&job.dataset, &job.datasets_dir).map_err(in_job)?;
    let (shape, norm) = read_meta(&job).map_err(in_job)?;
    let threads = (info.setup)(&job).map_err(in_job)?;
    let mut env = env::capture(info.frameworks);
    env.framework_threads = threads;
    if let Some(kernels) = info.kernels {
        env.kernels = kernels(&job, &params).map_err(in_job)?;
    }
    let process = args.process;
    if let Some(reason) = crate::spec::unsupported_reason(info.spec, &job)? {
        return Record::unsupported(&job, process, version, &digest, &env, reason).append_to(&args.out);
    }
    if params.pretrained && params.weights_file.is_empty() {
        let reason = "pretrained: true needs weights_file (a safetensors file with PyTorch names): no \
                      pretrained checkpoint for this network can be had offline";
        return Record::unsupported(&job, process, version, &digest, &env, reason.into())
            .append_to(&args.out);
    }
    let mut load_timer = PhaseTimer::default();
    let (train, test) = load_timer.calls(
        "load",
        1,
        None,
        || Ok(()),
        |_| {
            Ok::<_, BenchError>((
                load_samples(&job, "train", &shape, norm.as_ref())?,
                load_samples(&job, "test", &shape, norm.as_ref())?,
            ))
        },
    )?;
    if params.batch_size > train.n {
        return Err(in_job(BenchError::usage(format!(
            "hyperparameters.batch_size: {} is above the training set of {} ({} samples)",
            params.batch_size, job.dataset, train.n
        ))));
    }
    if job.fixtures_dir.as_os_str().is_empty() {
        return Err(in_job(BenchError::usage(
            "fixtures_dir: a training job needs the folder of its shared initial weights",
        )));
    }
    // Unsupported architectures (and missing weights) show up before any work.
    match (info.build)(&job, &params, &shape, &init_path(&job, job.seed)) {
        Err(BenchError::Unsupported(reason)) => {
            return Record::unsupported(&job, process, version, &digest, &env, reason).append_to(&args.out)
        }
        Err(err) => return Err(in_job(err)),
        Ok(_) => {}
    }
    let context = Context { job: &job, info, params: &params, shape, train: &train, test: &test };
    if let Some(folder) = &args.parity {
        return parity(&context, folder);
    }
    let process_timings = process_timings(startup, &load_timer);
    let mut loops = BTreeMap::new();
    for repetition in 0..job.n_records() {
        let mut record = Record::new(&job, process, repetition, version, &digest, &env);
        let calibrate = repetition == 0 && job.warmup > 0;
        measure_repetition(&context, &mut record, &mut loops, calibrate)?;
        record.process_timings_s = process_timings.clone();
        record.append_to(&args.out)?;
    }
    Ok(())
}

struct Context<'a> {
    job: &'a Job,
    info: &'a TrainingInfo,
    params: &'a TrainParams,
    shape: NetShape,
    train: &'a Images,
    test: &'a Images,
}

/// Steps of the parity check's optimizer comparison (the second one uses the momentum buffers).
pub const PARITY_STEPS: usize = 2;
/// Test images whose logits the parity check compares.
pub const PARITY_IMAGES: usize = 64;

/// The parity tests' view of one side (mirrors python/mlbench/training.py `parity`): eval-mode
/// logits of the first PARITY_IMAGES test images from the initial weights (`init_logits.npy`),
/// after PARITY_STEPS optimizer steps on the first batches of epoch 0 (`step_logits.npy`, with
/// `step_loss.npy`), and, from fresh weights, after one full epoch (`epoch_loss.npy`,
/// `epoch_logits.npy`); and the sha256 of every tensor the network loaded (`weights_sha256.json`).
fn parity(context: &Context, folder: &Path) -> Result<()> {
    let Context { job, info, params, shape, train, test } = *context;
    std::fs::create_dir_all(folder).map_err(|e| BenchError::run(format!("{}: {e}", folder.display())))?;
    let order: Array2<i64> = npy(&order_path(job, job.seed))?;
    let first = order.row(0).to_vec();
    let count = PARITY_IMAGES.min(test.n);
    let logits = |values: Vec<f32>| {
        Array2::from_shape_vec((count, shape.classes), values).map_err(|e| BenchError::run(e.to_string()))
    };
    let mut net = (info.build)(job, params, &shape, &init_path(job, job.seed))?;
    let digests = serde_json::to_string_pretty(&weights_sha256(net.weights()?))
        .map_err(|e| BenchError::run(e.to_string()))?;
    std::fs::write(folder.join("weights_sha256.json"), digests)
        .map_err(|e| BenchError::run(format!("{}: {e}", folder.display())))?;
    net.upload(train, test)?;
    write(&folder.join("init_logits.npy"), &logits(net.logits(count, count)?)?)?;
    let steps = (PARITY_STEPS * params.batch_size).min(train.n);
    let loss = net.train_epoch(&first[..steps], params.batch_size)?;
    write(&folder.join("step_loss.npy"), &Array1::from(vec![loss]))?;
    write(&folder.join("step_logits.npy"), &logits(net.logits(count, count)?)?)?;
    let step_weights = folder.join("step_weights");
    std::fs::create_dir_all(&step_weights)
        .map_err(|e| BenchError::run(format!("{}: {e}", step_weights.display())))?;
    for (name, values) in net.weights()? {
        write(&step_weights.join(format!("{name}.npy")), &Array1::from(values))?;
    }
    if float64(job) {
        return Ok(()); // float64 checks the arithmetic of the steps; the epoch is float32's
    }
    let mut net = (info.build)(job, params, &shape, &init_path(job, job.seed))?;
    net.upload(train, test)?;
    let loss = net.train_epoch(&first, params.batch_size)?;
    write(&folder.join("epoch_loss.npy"), &Array1::from(vec![loss]))?;
    write(&folder.join("epoch_logits.npy"), &logits(net.logits(count, count)?)?)?;
    Ok(())
}

fn accuracy(logits: &[f32], y: &[i64], classes: usize) -> f64 {
    let correct = logits.chunks(classes).zip(y).filter(|(row, &label)| argmax(row) as i64 == label).count();
    correct as f64 / y.len() as f64
}

/// The first index of the largest value (NumPy's argmax rule).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

fn measure_repetition(
    context: &Context,
    record: &mut Record,
    loops: &mut BTreeMap<String, u64>,
    calibrate: bool,
) -> Result<()> {
    let Context { job, shape, train, test, .. } = *context;
    let warmup = record.warmup;
    let mut warm = context.params.clone();
    let params = if warmup {
        warm.epochs = 1;
        &warm
    } else {
        context.params
    };
    reset_peak_rss();
    let rss_start = rss_mb();
    let cpu_start = cpu_time_s();
    let seed = record.seed;
    let mut order: Array2<i64> = npy(&order_path(job, seed))?;
    if order.nrows() < params.epochs as usize || order.ncols() != train.n {
        return Err(BenchError::usage(format!(
            "{}: expected {} epochs x {} indices, found {:?}",
            order_path(job, seed).display(),
            params.epochs,
            train.n,
            order.shape()
        )));
    }
    if warmup {
        let batches = (WARMUP_BATCHES * params.batch_size).min(train.n);
        order = order.slice(ndarray::s![..1, ..batches]).to_owned();
    }
    let weights = init_path(job, seed);
    let mut phases =
        Phases { timer: PhaseTimer::default(), loops, calibrate_to_s: calibrate.then_some(job.min_sample_s) };
    let reader = gpu::reader_for(&job.device);
    let (run, gpu) = gpu::sampled(reader, gpu::SAMPLE_INTERVAL, || {
        train_and_infer(context, params, &order, &weights, &mut phases)
    });
    let Run { epoch_s, losses, accuracies, reached, logits, sizes, device_peak_mb } = run?;
    let cpu = cpu_time_s() - cpu_start;
    let timer = phases.timer;
    let mut timings = timer.timings_s;
    timings.insert("train".into(), epoch_s.iter().sum());
    timings.insert("epoch_first".into(), epoch_s[0]);
    if epoch_s.len() > 1 {
        timings.insert("epoch_steady".into(), median(&epoch_s[1..]));
    }
    let mut counts = BTreeMap::from([
        ("train".to_string(), (order.ncols() as u64) * u64::from(params.epochs)),
        ("evaluate".to_string(), test.n as u64),
    ]);
    for &size in &sizes {
        counts.insert(format!("infer_b{size}"), size as u64);
    }
    let predictions: Array1<f64> =
        logits.chunks(shape.classes).map(|row| argmax(row) as f64).collect::<Vec<_>>().into();
    record.save_artifact(job, "predictions", &predictions)?;
    let logits = Array2::from_shape_vec((test.n, shape.classes), logits)
        .map_err(|e| BenchError::run(e.to_string()))?;
    record.save_artifact(job, "logits", &logits)?;
    record.save_artifact(job, "loss_curve", &Array1::from(losses.clone()))?;
    let mut inner = timer.loops;
    inner.insert("train".into(), 1);
    record.timings_s = timings;
    record.inner_loops = inner;
    record.page_faults = timer.page_faults;
    record.set_counts(counts);
    record.series = BTreeMap::from([
        ("epoch_s".to_string(), epoch_s.clone()),
        ("train_loss".to_string(), losses),
        ("test_accuracy".to_string(), accuracies),
    ]);
    record.time_to_accuracy = Some(TimeToAccuracy {
        target: params.target_accuracy,
        epochs: reached,
        seconds: reached.map(|e| epoch_s[..e as usize].iter().sum()),
    });
    record.solver = Some(Solver {
        name: format!("{} (mini-batch, shared batch order)", params.optimizer),
        stopping_rule: format!("fixed: {} epoch(s)", params.epochs),
        n_iter: Some(u64::from(params.epochs)),
    });
    record.resources = Resources {
        peak_rss_mb: peak_rss_mb(),
        cpu_time_s: Some(cpu),
        rss_start_mb: rss_start,
        gpu: Some(GpuResources { gpu_peak_mem_mb: device_peak_mb, ..gpu }),
    };
    Ok(())
}

/// What `train_and_infer` hands back to the record.
struct Run {
    epoch_s: Vec<f64>,
    losses: Vec<f64>,
    accuracies: Vec<f64>,
    reached: Option<u32>,
    logits: Vec<f32>,
    sizes: Vec<usize>,
    device_peak_mb: Option<f64>,
}

/// The protocol's steps 1-5 (module docstring): build, upload, epochs, evaluate, infer_bN.
fn train_and_infer(
    context: &Context,
    params: &TrainParams,
    order: &Array2<i64>,
    weights: &Path,
    phases: &mut Phases,
) -> Result<Run> {
    let Context { job, info, shape, train, test, .. } = *context;
    let mut net = phases.run("build", || Ok(()), |_| (info.build)(job, params, &shape, weights))?;
    net.upload(train, test)?;
    let (mut epoch_s, mut losses, mut accuracies) = (Vec::new(), Vec::new(), Vec::new());
    let mut reached: Option<u32> = None;
    for epoch in 0..params.epochs {
        let row = order.row(epoch as usize).to_vec();
        net.sync()?;
        let start = std::time::Instant::now();
        let loss = net.train_epoch(&row, params.batch_size)?;
        net.sync()?;
        epoch_s.push(start.elapsed().as_secs_f64());
        losses.push(loss);
        if epoch + 1 < params.epochs {
            accuracies.push(accuracy(&net.logits(test.n, EVAL_BATCH)?, &test.y, shape.classes));
            if reached.is_none() && *accuracies.last().unwrap() >= params.target_accuracy {
                reached = Some(epoch + 1);
            }
        }
    }
    let logits = phases.run(
        "evaluate",
        || Ok(()),
        |_| {
            let out = net.logits(test.n, EVAL_BATCH)?;
            net.sync()?;
            Ok(out)
        },
    )?;
    accuracies.push(accuracy(&logits, &test.y, shape.classes));
    if reached.is_none() && *accuracies.last().unwrap() >= params.target_accuracy {
        reached = Some(params.epochs);
    }
    let sizes: Vec<usize> = job.inference_batch_sizes.iter().copied().filter(|&b| b <= test.n).collect();
    for &size in &sizes {
        phases.run(
            &format!("infer_b{size}"),
            || Ok(()),
            |_| {
                net.logits(size, size)?;
                net.sync()
            },
        )?;
    }
    Ok(Run { epoch_s, losses, accuracies, reached, logits, sizes, device_peak_mb: net.peak_memory_mb() })
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

fn write<A: ndarray_npy::WritableElement, D: ndarray::Dimension>(
    path: &Path,
    array: &ndarray::Array<A, D>,
) -> Result<()> {
    write_npy(path, array).map_err(|e| BenchError::run(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vgg_pads_to_the_next_multiple_of_32_equally() {
        let square = |side| NetShape { channels: 1, height: side, width: side, classes: 10 };
        assert_eq!(vgg_padding(&square(28)).unwrap(), 2);
        assert_eq!(vgg_padding(&square(16)).unwrap(), 8);
        assert_eq!(vgg_padding(&square(32)).unwrap(), 0);
        assert_eq!(vgg_padding(&square(60)).unwrap(), 2);
        assert!(vgg_padding(&square(27)).unwrap_err().to_string().contains("side 27"));
        let wide = NetShape { width: 32, ..square(28) };
        assert!(vgg_padding(&wide).unwrap_err().to_string().contains("square"));
    }

    #[test]
    fn vgg16_layers_take_torchvisions_indices() {
        let with_bn = vgg16_layers(3, true);
        assert_eq!(with_bn.len(), 18);
        assert_eq!(with_bn[0], Some(VggConv { index: 0, c_in: 3, c_out: 64 }));
        assert_eq!(with_bn[1], Some(VggConv { index: 3, c_in: 64, c_out: 64 }));
        assert_eq!(with_bn[2], None); // features.6: the first max-pool
        assert_eq!(with_bn[3], Some(VggConv { index: 7, c_in: 64, c_out: 128 }));
        assert_eq!(with_bn[16], Some(VggConv { index: 40, c_in: 512, c_out: 512 })); // torchvision's last
        assert_eq!(vgg16_layers(1, false)[16], Some(VggConv { index: 28, c_in: 512, c_out: 512 }));
        assert_eq!(MOBILENET_V2_HEAD_IN, 320);
    }

    #[test]
    fn mobilenet_v2_has_torchvisions_seventeen_blocks() {
        let blocks = mobilenet_v2_blocks();
        assert_eq!(blocks.len(), 17);
        assert_eq!(
            blocks[0],
            InvertedResidual { index: 1, c_in: 32, hidden: 32, c_out: 16, stride: 1, expand: false }
        );
        assert_eq!(
            blocks[16],
            InvertedResidual { index: 17, c_in: 160, hidden: 960, c_out: 320, stride: 1, expand: true }
        );
        assert_eq!(blocks.iter().filter(|b| b.residual()).count(), 10);
    }
}
