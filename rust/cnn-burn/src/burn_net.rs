//! The burn half of the `train_classifier` protocol every deep-learning task shares (the CNN task's
//! binary and rust/rnn-burn): any `Model` with its optimizer and data on the job's device and
//! precision (`BurnNet`), thread setup, and the shared initial weights read under PyTorch's names.
use std::collections::BTreeMap;
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use bench_core::training::{Images, Network, TrainParams};
use burn::module::{Module, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};
use safetensors::SafeTensors;

/// A network the protocol trains: logits of a batch (N x C x H x W, sequences N x 1 x T x F) and
/// every tensor it holds by PyTorch name, in PyTorch's layout, flattened (parity).
pub trait Model: Module + 'static {
    fn forward(&self, x: Tensor<4>) -> Tensor<2>;
    fn named_tensors(&self) -> Vec<(String, Tensor<1>)>;
}

/// The job's precision as burn's float type.
pub fn dtype(job: &Job) -> FloatDType {
    if bench_core::training::float64(job) {
        FloatDType::F64
    } else {
        FloatDType::F32
    }
}

/// The job's device, its default float type the job's precision: burn's recurrent layers allocate
/// their states and output buffers in the device's default (float32 unless set), which a float64 job
/// must not mix with its float64 weights. Set once per process, before any tensor exists.
pub fn device(job: &Job) -> Device {
    #[cfg(feature = "cuda")]
    let mut device = if job.device == "cuda" { Device::cuda(0) } else { Device::flex() };
    #[cfg(not(feature = "cuda"))]
    let mut device = Device::flex();
    let _ = device.configure(dtype(job)); // AlreadyInitialized from the second build on: same dtype
    device
}

pub fn setup(job: &Job) -> Result<BTreeMap<String, u64>> {
    if job.device == "cuda" && !cfg!(feature = "cuda") {
        return Err(BenchError::usage(
            "device: cuda: burn was built without its `cuda` backend (build with HW=gpu)",
        ));
    }
    std::env::set_var("RAYON_NUM_THREADS", job.threads.to_string());
    let _ = rayon::ThreadPoolBuilder::new().num_threads(job.threads as usize).build_global();
    Ok(BTreeMap::from([("rayon".to_string(), rayon::current_num_threads() as u64)]))
}

struct BurnNet<M: Model> {
    model: Option<M>,
    optimizer: ModuleOptimizer,
    lr: f64,
    device: Device,
    dtype: FloatDType, // the job's precision
    data: Option<(Tensor<4>, Tensor<1, Int>, Tensor<4>)>,
}

/// A network of the job, loaded by `load` on the training (autodiff) device, with the job's optimizer.
pub fn train_net<M: Model + 'static>(
    job: &Job,
    params: &TrainParams,
    load: impl FnOnce(&Device) -> Result<M>,
) -> Result<Box<dyn Network>> {
    let device = device(job);
    let train_device = device.clone().autodiff();
    let model = load(&train_device)?;
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
    let dtype = dtype(job);
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
pub fn values<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    tensor
        .cast(FloatDType::F32)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| BenchError::run(format!("burn: {e:?}")))
}

impl<M: Model + 'static> Network for BurnNet<M> {
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

/// The shared initial weights (safetensors, PyTorch names, float32), read into the job's precision.
pub struct Weights<'a> {
    pub file: SafeTensors<'a>,
    pub device: &'a Device,
    pub path: &'a Path,
    pub dtype: FloatDType, // the job's precision
}

impl<'a> Weights<'a> {
    /// The file's bytes (what `new` reads the tensors from).
    pub fn read(path: &Path) -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|e| BenchError::usage(format!("{}: cannot read: {e}", path.display())))
    }

    pub fn new(job: &Job, bytes: &'a [u8], path: &'a Path, device: &'a Device) -> Result<Self> {
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| BenchError::usage(format!("{}: {e}", path.display())))?;
        Ok(Weights { file, device, path, dtype: dtype(job) })
    }

    pub fn get<const D: usize>(&self, name: &str, dims: [usize; D]) -> Result<Tensor<D>> {
        let view = self
            .file
            .tensor(name)
            .map_err(|e| BenchError::usage(format!("{}: {name}: {e}", self.path.display())))?;
        if view.shape() != dims {
            return Err(BenchError::usage(format!(
                "{}: {name} has shape {:?}, the network wants {dims:?}",
                self.path.display(),
                view.shape()
            )));
        }
        let values: Vec<f32> =
            view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok(Tensor::<D>::from_data(TensorData::new(values, dims.to_vec()), self.device).cast(self.dtype))
    }

    /// PyTorch stores [out, in]; burn's Linear [in, out].
    pub fn linear(&self, name: &str, d_in: usize, d_out: usize) -> Result<Linear> {
        let mut linear = LinearConfig::new(d_in, d_out).init(self.device);
        let weight: Tensor<2> = self.get(&format!("{name}.weight"), [d_out, d_in])?;
        linear.weight = Param::from_tensor(weight.transpose());
        linear.bias = Some(Param::from_tensor(self.get(&format!("{name}.bias"), [d_out])?));
        Ok(linear)
    }
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
