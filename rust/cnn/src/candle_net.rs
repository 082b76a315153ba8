//! The candle half of the `train_classifier` protocol every deep-learning task shares: the network
//! (any `ModuleT`) over the shared initial weights, its optimizer and data on the job's device and
//! precision (`CandleNet`), thread setup. The shared safetensors file fills a VarMap under PyTorch's
//! names before the layers are built, so every layer (and BatchNorm's running statistics) starts
//! from it. candle has no SGD with momentum: `SgdMomentum` implements PyTorch's rule on candle
//! tensors (tested against torch.optim.SGD by the parity tests).
use std::collections::BTreeMap;
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use bench_core::training::{Images, Network, TrainParams};
use candle_core::{DType, Device, ModuleT, Tensor, Var};
use candle_nn::{Optimizer, VarBuilder, VarMap};

pub fn err(e: candle_core::Error) -> BenchError {
    BenchError::run(format!("candle: {e}"))
}

pub fn setup(job: &Job) -> Result<BTreeMap<String, u64>> {
    if job.device == "cuda" && !candle_core::utils::cuda_is_available() {
        return Err(BenchError::usage(
            "device: cuda: candle was built without its `cuda` feature (build with HW=gpu) or sees no GPU",
        ));
    }
    // candle's CPU kernels size their pools from RAYON_NUM_THREADS; a task started by hand obeys too.
    std::env::set_var("RAYON_NUM_THREADS", job.threads.to_string());
    let _ = rayon::ThreadPoolBuilder::new().num_threads(job.threads as usize).build_global();
    Ok(BTreeMap::from([
        ("candle".to_string(), candle_core::utils::get_num_threads() as u64),
        ("rayon".to_string(), rayon::current_num_threads() as u64),
    ]))
}

pub fn device(job: &Job) -> Result<Device> {
    if job.device == "cuda" {
        // A `cuda` build on a machine whose driver is missing or a stub (a build machine): exit 2.
        Device::new_cuda(0).map_err(|e| {
            BenchError::usage(format!(
                "device: cuda: candle sees no usable GPU: {}",
                e.to_string().lines().next().unwrap_or_default()
            ))
        })
    } else {
        Ok(Device::Cpu)
    }
}

/// Dropout in train mode (candle's own RNG), the identity otherwise.
pub fn dropout(xs: Tensor, rate: f32, train: bool) -> candle_core::Result<Tensor> {
    if train && rate > 0.0 {
        candle_nn::ops::dropout(&xs, rate)
    } else {
        Ok(xs)
    }
}

/// PyTorch's SGD: g = grad + wd * p; buf = g on the first step, else momentum * buf + g; p -= lr * buf.
/// The buffer is detached: candle's gradients of variables carry the backward graph (it detaches
/// only the inner nodes'), so a buffer built from them would chain every step's graph to the next
/// (memory grew ~450 MB a step on ResNet-18 at batch 64, and the time with it).
struct SgdMomentum {
    vars: Vec<Var>,
    buffers: Vec<Option<Tensor>>,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
}

impl SgdMomentum {
    fn step(&mut self, grads: &candle_core::backprop::GradStore) -> candle_core::Result<()> {
        for (var, buffer) in self.vars.iter().zip(self.buffers.iter_mut()) {
            let Some(grad) = grads.get(var.as_tensor()) else { continue };
            let g = if self.weight_decay != 0.0 {
                (grad + (var.as_detached_tensor() * self.weight_decay)?)?
            } else {
                grad.clone()
            };
            let b = match buffer.take() {
                Some(b) if self.momentum != 0.0 => ((b * self.momentum)? + g)?,
                _ => g,
            }
            .detach();
            var.set(&(var.as_tensor() - (&b * self.lr)?)?)?;
            *buffer = Some(b);
        }
        Ok(())
    }
}

enum Optim {
    Sgd(SgdMomentum),
    AdamW(candle_nn::AdamW),
}

struct CandleNet {
    varmap: VarMap,
    model: Box<dyn ModuleT>,
    optimizer: Optim,
    device: Device,
    dtype: DType, // the job's precision
    data: Option<(Tensor, Tensor, Tensor)>,
}

/// A network of the job built by `model` from a VarBuilder over the shared initial weights (PyTorch's
/// names, in the job's precision), with the job's optimizer over every tensor but running statistics.
pub fn train_net(
    job: &Job,
    params: &TrainParams,
    weights: &Path,
    model: impl FnOnce(&VarBuilder) -> candle_core::Result<Box<dyn ModuleT>>,
) -> Result<Box<dyn Network>> {
    let device = device(job)?;
    let dtype = if bench_core::training::float64(job) { DType::F64 } else { DType::F32 };
    let tensors = candle_core::safetensors::load(weights, &device)
        .map_err(|e| BenchError::usage(format!("{}: {e}", weights.display())))?;
    let varmap = VarMap::new();
    let mut trainable = Vec::new();
    {
        let mut data = varmap.data().lock().map_err(|_| BenchError::run("candle: poisoned VarMap"))?;
        let mut names: Vec<_> = tensors.keys().cloned().collect();
        names.sort();
        for name in names {
            let var = Var::from_tensor(&tensors[&name].to_dtype(dtype).map_err(err)?).map_err(err)?;
            if !name.contains("running_") {
                trainable.push(var.clone());
            }
            data.insert(name, var);
        }
    }
    let vb = VarBuilder::from_varmap(&varmap, dtype, &device);
    let model = model(&vb).map_err(err)?;
    if varmap.all_vars().len() != tensors.len() {
        return Err(BenchError::usage(format!(
            "{}: does not fit {}: {} tensors for {} variables",
            weights.display(),
            job.algorithm,
            tensors.len(),
            varmap.all_vars().len()
        )));
    }
    let optimizer = match params.optimizer.as_str() {
        "sgd" => Optim::Sgd(SgdMomentum {
            buffers: vec![None; trainable.len()],
            vars: trainable,
            lr: params.learning_rate,
            momentum: params.momentum,
            weight_decay: params.weight_decay,
        }),
        _ => Optim::AdamW(
            candle_nn::AdamW::new(
                trainable,
                candle_nn::ParamsAdamW {
                    lr: params.learning_rate,
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                    weight_decay: params.weight_decay,
                },
            )
            .map_err(err)?,
        ),
    };
    Ok(Box::new(CandleNet { varmap, model, optimizer, device, dtype, data: None }))
}

fn images(images: &Images, device: &Device, dtype: DType) -> candle_core::Result<Tensor> {
    Tensor::from_slice(&images.x, images.dims.to_vec(), device)?.to_dtype(dtype)
}

impl CandleNet {
    fn epoch(&mut self, order: &[i64], batch_size: usize) -> candle_core::Result<f64> {
        let (x, y, _) = self.data.as_ref().expect("upload comes first");
        let order: Vec<u32> = order.iter().map(|&i| i as u32).collect();
        let mut total = 0.0;
        for chunk in order.chunks(batch_size) {
            let index = Tensor::from_slice(chunk, chunk.len(), &self.device)?;
            let logits = self.model.forward_t(&x.index_select(&index, 0)?, true)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y.index_select(&index, 0)?)?;
            let grads = loss.backward()?;
            match &mut self.optimizer {
                Optim::Sgd(sgd) => sgd.step(&grads)?,
                Optim::AdamW(adamw) => adamw.step(&grads)?,
            }
            total += loss.to_dtype(DType::F64)?.to_scalar::<f64>()? * chunk.len() as f64;
        }
        Ok(total / order.len() as f64)
    }

    fn predict(&self, count: usize, batch_size: usize) -> candle_core::Result<Vec<f32>> {
        let (_, _, x) = self.data.as_ref().expect("upload comes first");
        let mut out = Vec::with_capacity(count);
        let mut start = 0;
        while start < count {
            let len = batch_size.min(count - start);
            let logits = self.model.forward_t(&x.narrow(0, start, len)?, false)?.detach();
            out.extend(logits.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?);
            start += len;
        }
        Ok(out)
    }
}

impl Network for CandleNet {
    fn upload(&mut self, train: &Images, test: &Images) -> Result<()> {
        let labels = Tensor::from_slice(&train.y, train.n, &self.device).map_err(err)?;
        self.data = Some((
            images(train, &self.device, self.dtype).map_err(err)?,
            labels,
            images(test, &self.device, self.dtype).map_err(err)?,
        ));
        Ok(())
    }

    fn train_epoch(&mut self, order: &[i64], batch_size: usize) -> Result<f64> {
        self.epoch(order, batch_size).map_err(err)
    }

    fn logits(&mut self, count: usize, batch_size: usize) -> Result<Vec<f32>> {
        self.predict(count, batch_size).map_err(err)
    }

    fn weights(&self) -> Result<Vec<(String, Vec<f32>)>> {
        let data = self.varmap.data().lock().map_err(|_| BenchError::run("candle: poisoned VarMap"))?;
        let mut named = Vec::new();
        for (name, var) in data.iter() {
            named.push((
                name.clone(),
                var.as_tensor()
                    .flatten_all()
                    .and_then(|t| t.to_dtype(DType::F32))
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(err)?,
            ));
        }
        named.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(named)
    }

    fn sync(&self) -> Result<()> {
        self.device.synchronize().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The momentum buffers hold values, not graphs: tracked ones would keep every step's graph alive
    /// (a variable's gradient from candle's backward is itself tracked, as the first assert shows).
    #[test]
    fn sgd_buffers_are_not_tracked_with_weight_decay() -> candle_core::Result<()> {
        let var = Var::from_tensor(&Tensor::new(&[1.0f32, -2.0, 3.0], &Device::Cpu)?)?;
        let mut sgd =
            SgdMomentum { vars: vec![var.clone()], buffers: vec![None], lr: 0.1, momentum: 0.9, weight_decay: 0.01 };
        for _ in 0..3 {
            let loss = var.as_tensor().sqr()?.sum_all()?;
            let grads = loss.backward()?;
            assert!(grads.get(var.as_tensor()).expect("a gradient").track_op());
            sgd.step(&grads)?;
        }
        let buffer = sgd.buffers[0].as_ref().expect("a buffer after a step");
        assert!(!buffer.track_op(), "the momentum buffer carries a graph");
        // p <- p - lr * buf with buf = momentum * buf + 2p + wd * p, checked against the recurrence
        let (mut p, mut b) = (vec![1.0f32, -2.0, 3.0], vec![0.0f32; 3]);
        for step in 0..3 {
            for i in 0..3 {
                let g = 2.0 * p[i] + 0.01 * p[i];
                b[i] = if step == 0 { g } else { 0.9 * b[i] + g };
                p[i] -= 0.1 * b[i];
            }
        }
        let got = var.as_tensor().to_vec1::<f32>()?;
        for (a, e) in got.iter().zip(&p) {
            assert!((a - e).abs() < 1e-6, "{got:?} != {p:?}");
        }
        Ok(())
    }
}
