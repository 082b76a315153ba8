//! BERT-family encoders with the task heads on tch (libtorch), the text_encoding task's second Rust
//! arm (`text_encoding-tch --config JOB.yaml --out RECORDS.jsonl`, the `encode` protocol of
//! bench_core::encoding): the models of tch_bert.rs, written with the libtorch ops transformers
//! calls, on the same texts set as the candle arm (rust/text_encoding), its tokenizer read the same
//! way. Its own binary, so that only this arm loads libtorch.
use std::collections::BTreeMap;

use bench_core::config::Job;
use bench_core::encoding::{Encoder, EncodingInfo, Texts};
use bench_core::error::{BenchError, Result};
use ndarray::{Array2, ArrayD, IxDyn};
use text_encoding::tokens::{check_tokenizer, tokenize};

mod tch_bert;
#[path = "../../tch_device.rs"]
mod tch_device;

use crate::tch_bert::{Config, Head, Weights};
use crate::tch_device::device;

struct TchEncoder {
    encoder: tch_bert::Encoder,
    head: Head,
    device: tch::Device,
}

fn tensor(a: &Array2<i64>, device: tch::Device) -> tch::Tensor {
    tch::Tensor::from_slice(&a.iter().copied().collect::<Vec<_>>())
        .view([a.nrows() as i64, a.ncols() as i64])
        .to_device(device)
}

impl Encoder for TchEncoder {
    fn forward(&mut self, ids: &Array2<i64>, mask: &Array2<i64>) -> Result<ArrayD<f32>> {
        let _guard = tch::no_grad_guard();
        let mask = tensor(mask, self.device);
        let outputs = self.head.forward(&self.encoder.forward(&tensor(ids, self.device), &mask), &mask);
        let shape: Vec<usize> = outputs.size().iter().map(|&d| d as usize).collect();
        // the copy to the host waits for the device, so the clock read after it is synchronised
        let host = outputs.flatten(0, -1).to_kind(tch::Kind::Float).to_device(tch::Device::Cpu);
        let values = Vec::<f32>::try_from(host).map_err(|e| BenchError::run(e.to_string()))?;
        ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|e| BenchError::run(format!("outputs: {e}")))
    }
}

fn load(job: &Job, data: &Texts) -> Result<Box<dyn Encoder>> {
    check_tokenizer(data)?;
    let path = data.folder.join("config.json");
    let config: Config = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        .map_err(|e| BenchError::usage(format!("{}: {e}", path.display())))?;
    let device = device(job)?;
    let mut weights = Weights::read(&data.folder.join("model.safetensors"), device)?;
    let encoder = tch_bert::Encoder::load(&data.family, &config, &mut weights)?;
    let mut heads = Weights::read(&data.folder.join("heads.safetensors"), device)?;
    let head =
        Head::load(&job.algorithm, &data.family, config.hidden_size, &data.labels, &mut weights, &mut heads)?;
    Ok(Box::new(TchEncoder { encoder, head, device }))
}

/// The job's threads for libtorch's intra-op pool, and a device libtorch can use.
fn setup(job: &Job) -> Result<BTreeMap<String, u64>> {
    device(job)?;
    tch::set_num_threads(job.threads as i32);
    Ok(BTreeMap::from([("libtorch".to_string(), tch::get_num_threads() as u64)]))
}

fn describe(job: &Job, data: &Texts) -> String {
    format!(
        "{} on tch (libtorch ops as transformers calls them: linear, sdpa), {} head",
        data.family, job.algorithm
    )
}

/// The `text_encoding` task's tch side.
const TASK: EncodingInfo = EncodingInfo {
    frameworks: &[("tch", env!("MLBENCH_VERSION_TCH"))],
    load,
    tokenize,
    setup,
    describe,
    spec: include_str!("../../../configs/tasks/text_encoding.yaml"),
};

fn main() {
    bench_core::encoding::main_encoding(TASK);
}
