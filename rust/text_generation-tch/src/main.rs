//! GPT-2 greedy generation on tch (libtorch), the text_generation task's second Rust arm
//! (`text_generation-tch --config JOB.yaml --out RECORDS.jsonl`, the `generate` protocol of
//! bench_core::generation): the model of tch_gpt2.rs, written with the libtorch ops transformers
//! calls, on the same model folder as the candle arm (rust/text_generation), checked the same way.
//! Its own binary, so that only this arm loads libtorch.
use std::collections::BTreeMap;
use std::time::Instant;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use bench_core::generation::{Generated, GenerationInfo, Generator, Prompts};
use bench_core::sampling::Sampler;
use ndarray::{Array1, Array2};
use text_generation::model::{read_config, read_tokenizer};

#[path = "../../tch_device.rs"]
mod tch_device;
mod tch_gpt2;

use tch_device::{device, sync};

/// The harness's model: GPT-2 written with the ops transformers calls (tch_gpt2.rs).
struct TchGenerator {
    model: tch_gpt2::TchGpt2,
    device: tch::Device,
}

fn tch_ids(ids: &[i64], shape: (usize, usize), device: tch::Device) -> tch::Tensor {
    tch::Tensor::from_slice(ids).view([shape.0 as i64, shape.1 as i64]).to_device(device)
}

fn tch_error(e: tch::TchError) -> BenchError {
    BenchError::run(e.to_string())
}

/// The next tokens (batch, int64) from the logits (batch x steps x vocabulary): the argmax of the
/// last position, or the sampler's choice from that row.
fn pick(logits: &tch::Tensor, sampler: &mut Option<&mut Sampler>) -> Result<tch::Tensor> {
    let last = logits.select(1, -1);
    let Some(sampler) = sampler else {
        return Ok(last.argmax(-1, false));
    };
    let last = last.to_kind(tch::Kind::Float).to_device(tch::Device::Cpu);
    let rows = Vec::<Vec<f32>>::try_from(last).map_err(tch_error)?;
    let chosen: Vec<i64> = sampler.choose_rows(&rows)?.into_iter().map(i64::from).collect();
    Ok(tch::Tensor::from_slice(&chosen))
}

impl Generator for TchGenerator {
    fn generate(
        &mut self,
        prompts: &Array2<i64>,
        new_tokens: usize,
        mut sampler: Option<&mut Sampler>,
    ) -> Result<Generated> {
        let _guard = tch::no_grad_guard();
        let device = self.device;
        let ids = tch_ids(&prompts.iter().copied().collect::<Vec<_>>(), prompts.dim(), device);
        let model = &mut self.model;
        model.clear_cache();
        let mut tokens = Vec::with_capacity(new_tokens);
        sync(device);
        let start = Instant::now();
        let mut token = pick(&model.forward(&ids), &mut sampler)?.to_device(device);
        tokens.push(token.shallow_clone());
        sync(device);
        let prefill_s = start.elapsed().as_secs_f64();
        let mut decode_s = Vec::with_capacity(new_tokens.saturating_sub(1));
        for _ in 1..new_tokens {
            let start = Instant::now();
            token = pick(&model.forward(&token.unsqueeze(1)), &mut sampler)?.to_device(device);
            tokens.push(token.shallow_clone());
            sync(device);
            decode_s.push(start.elapsed().as_secs_f64());
        }
        model.clear_cache();
        let values = Vec::<i64>::try_from(tch::Tensor::stack(&tokens, 1).flatten(0, -1).to_device(tch::Device::Cpu))
            .map_err(tch_error)?;
        let tokens = Array2::from_shape_vec((prompts.nrows(), new_tokens), values)
            .map_err(|e| BenchError::run(format!("generated tokens: {e}")))?;
        Ok(Generated { tokens, prefill_s, decode_s })
    }

    fn score(&mut self, sequence: &Array1<i64>) -> Result<Array1<f64>> {
        let _guard = tch::no_grad_guard();
        let n = sequence.len();
        let values = sequence.to_vec();
        self.model.clear_cache();
        let logits = self.model.forward(&tch_ids(&values, (1, n), self.device));
        self.model.clear_cache();
        let next = tch::Tensor::from_slice(&values[1..]).unsqueeze(1).to_device(self.device);
        let nll = logits
            .get(0)
            .narrow(0, 0, n as i64 - 1)
            .log_softmax(-1, tch::Kind::Float)
            .gather(1, &next, false);
        let nll = nll.squeeze_dim(1).neg().to_kind(tch::Kind::Double).to_device(tch::Device::Cpu);
        let nll = Vec::<f64>::try_from(nll).map_err(tch_error)?;
        Ok(Array1::from(nll))
    }
}

/// The prompts set's model (bench_core::generation::check_set checked the set first).
fn load_set(job: &Job, data: &Prompts) -> Result<Box<dyn Generator>> {
    let config = read_config(&data.folder)?;
    read_tokenizer(&data.folder, &config)?; // a tokenizer beside the model must fit it
    let device = device(job)?;
    let model = tch_gpt2::TchGpt2::load(&config, &data.folder.join("model.safetensors"), device)?;
    Ok(Box::new(TchGenerator { model, device }))
}

/// The job's threads for libtorch's intra-op pool, and a device libtorch can use.
fn setup(job: &Job) -> Result<BTreeMap<String, u64>> {
    device(job)?;
    tch::set_num_threads(job.threads as i32);
    Ok(BTreeMap::from([("libtorch".to_string(), tch::get_num_threads() as u64)]))
}

fn describe(job: &Job) -> String {
    let how = if job.algorithm == "sample" { "sampled (rand's WeightedIndex)" } else { "greedy" };
    format!("GPT-2 on tch (libtorch ops as transformers calls them: addmm, sdpa), {how}, KV cache")
}

/// The `text_generation` task's tch side.
const TASK: GenerationInfo = GenerationInfo {
    frameworks: &[("tch", env!("MLBENCH_VERSION_TCH"))],
    load: load_set,
    setup,
    describe,
    spec: include_str!("../../../configs/tasks/text_generation.yaml"),
};

fn main() {
    bench_core::generation::main_generation(TASK);
}
