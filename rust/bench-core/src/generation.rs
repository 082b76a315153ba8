//! The `generate` protocol: a language model's generation with a KV cache (greedy, or sampled by
//! crate::sampling), and its perplexity of a held-out sequence, from a prompts set. Mirrors python/mlbench/generation.py
//! (which says what each phase, count and artifact is) and reads the set as python/mlbench/prompts.py
//! writes it: a model folder's files (config.json, model.safetensors, perhaps tokenizer.json) beside
//! `prompts.npy` (int64, n_prompts x prompt_length) and `heldout.npy` (int64).
//!
//! The model is loaded once per process (the `load` timing, with the set). Each repetition: the
//! batch's generation (`prefill`, each decode step, their sum `decode`, `generate`, and the
//! decode steps' p50/p90/p99 by numpy's linear interpolation), then `score` (the held-out NLLs).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{s, Array1, Array2};
use ndarray_npy::{read_npy, ReadNpyExt};
use serde::Deserialize;

use crate::config::Job;
use crate::data;
use crate::error::{BenchError, Result};
use crate::harness::{run_main, Args};
use crate::measure::{cpu_time_s, reset_peak_rss, rss_mb, PhaseTimer};
use crate::models::{run_model_process, ModelProcess};
use crate::gpu;
use crate::record::{Record, Resources, Solver};
use crate::sampling::Sampler;

pub const PERCENTILES: [u32; 3] = [50, 90, 99];

/// A prompts set as the protocol reads it.
pub struct Prompts {
    /// The model folder (the dataset's own).
    pub folder: PathBuf,
    pub prompts: Array2<i64>,
    pub heldout: Array1<i64>,
    pub n_positions: usize,
    pub vocab_size: usize,
}

/// One greedy generation: the new ids (batch x new tokens), the prefill's seconds (to the first
/// token) and each later token's seconds.
pub struct Generated {
    pub tokens: Array2<i64>,
    pub prefill_s: f64,
    pub decode_s: Vec<f64>,
}

/// A framework's loaded model.
pub trait Generator {
    /// Generation of `new_tokens` after each prompt (int64 batch x length), from a fresh cache: each
    /// next token the argmax of the last logits, or with a `sampler` (which keeps each row's tokens
    /// so far), its choice from them.
    fn generate(
        &mut self,
        prompts: &Array2<i64>,
        new_tokens: usize,
        sampler: Option<&mut Sampler>,
    ) -> Result<Generated>;
    /// Each next token's negative log-likelihood given the ones before it (length - 1), no cache.
    fn score(&mut self, sequence: &Array1<i64>) -> Result<Array1<f64>>;
}

/// Loads the set's model on the job's framework: `Err(Usage)` for a model folder it cannot read.
pub type Load = fn(&Job, &Prompts) -> Result<Box<dyn Generator>>;

/// What a generation task tells the harness about itself.
pub struct GenerationInfo {
    /// Version of each framework this binary can run, by the job's `framework` name.
    pub frameworks: &'static [(&'static str, &'static str)],
    pub load: Load,
    /// Applies the job's thread count to the framework once per process and returns what the
    /// framework then reports (recorded in `env.framework_threads`).
    pub setup: fn(&Job) -> Result<BTreeMap<String, u64>>,
    /// The solver's name for the job's framework (e.g. "GPT-2 on candle-nn, greedy, KV cache").
    pub describe: fn(&Job) -> String,
    /// The task spec (configs/tasks/<task>.yaml, `include_str!`).
    pub spec: &'static str,
}

/// A generation job's parameters: the sampling settings only for `sample` (None: greedy).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateParams {
    pub batch_size: usize,
    pub prompt_length: usize,
    pub max_new_tokens: usize,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_k: Option<usize>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub repetition_penalty: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct PromptsMeta {
    #[serde(default)]
    n_prompts: usize,
    #[serde(default)]
    prompt_length: usize,
    #[serde(default)]
    n_positions: usize,
    #[serde(default)]
    vocab_size: usize,
}

fn read_meta(name: &str, datasets_dir: &Path) -> Result<PromptsMeta> {
    data::meta_of_layout(name, datasets_dir, "prompts", "a language model's prompts set").map_err(|e| match e
    {
        BenchError::Usage(message) => BenchError::usage(format!("dataset: {message}")),
        other => other,
    })
}

/// What a job's schema cannot see: the set has the prompts it asks, and they fit the model.
fn check_params(params: &GenerateParams, meta: &PromptsMeta) -> Result<()> {
    let (batch, length, new) = (params.batch_size, params.prompt_length, params.max_new_tokens);
    let problem = if batch > meta.n_prompts {
        Some(format!("batch_size: {batch} is above the {} prompts of the set", meta.n_prompts))
    } else if length > meta.prompt_length {
        Some(format!("prompt_length: {length} is above the set's prompts of {} tokens", meta.prompt_length))
    } else if length + new > meta.n_positions {
        Some(format!(
            "max_new_tokens: {length} prompt tokens and {new} new ones exceed the model's {} positions",
            meta.n_positions
        ))
    } else {
        None
    };
    problem.map_or(Ok(()), |message| Err(BenchError::usage(format!("hyperparameters: {message}"))))
}

fn npy<T: ReadNpyExt>(path: &Path) -> Result<T> {
    read_npy(path).map_err(|e| BenchError::usage(format!("{}: cannot read .npy: {e}", path.display())))
}

/// Read a prompts set (call `data::verify` once per process first).
pub fn load_prompts(name: &str, datasets_dir: &Path) -> Result<Prompts> {
    let meta = read_meta(name, datasets_dir)?;
    let folder = datasets_dir.join(name);
    Ok(Prompts {
        prompts: npy(&folder.join("prompts.npy"))?,
        heldout: npy(&folder.join("heldout.npy"))?,
        folder,
        n_positions: meta.n_positions,
        vocab_size: meta.vocab_size,
    })
}

#[derive(Debug, Deserialize)]
struct ModelConfig {
    vocab_size: usize,
    n_positions: usize,
}

/// The set's model folder fits its token ids: config.json's vocabulary and positions are the set's
/// (meta.json), every id lies in the vocabulary, the held-out sequence fits the positions.
pub fn check_set(data: &Prompts) -> Result<()> {
    let config: ModelConfig = data::read_model_config(&data.folder, "vocab_size and n_positions")?;
    let path = data.folder.join("config.json");
    if (config.vocab_size, config.n_positions) != (data.vocab_size, data.n_positions) {
        return Err(BenchError::usage(format!(
            "{}: vocab_size {} and n_positions {} do not match the set's meta.json ({} and {})",
            path.display(),
            config.vocab_size,
            config.n_positions,
            data.vocab_size,
            data.n_positions
        )));
    }
    let outside = |id: &&i64| **id < 0 || **id as usize >= config.vocab_size;
    if let Some(id) = data.prompts.iter().chain(data.heldout.iter()).find(outside) {
        return Err(BenchError::usage(format!(
            "{}: token id {id} is outside the vocabulary of {}",
            data.folder.display(),
            config.vocab_size
        )));
    }
    if data.heldout.len() < 2 || data.heldout.len() > config.n_positions {
        return Err(BenchError::usage(format!(
            "{}: a held-out sequence of {} tokens (the model scores 2 to {})",
            data.folder.join("heldout.npy").display(),
            data.heldout.len(),
            config.n_positions
        )));
    }
    Ok(())
}

/// Entry point of a generation task: exit 2 with one line on bad input, 1 on a failed run.
pub fn main_generation(info: GenerationInfo) -> ! {
    run_main(|args, startup| run(args, &info, startup))
}

fn run(args: &Args, info: &GenerationInfo, startup: Option<f64>) -> Result<()> {
    let check = |job: &Job, params: &GenerateParams| {
        check_params(params, &read_meta(&job.dataset, &job.datasets_dir)?)
    };
    let load = |job: &Job| {
        let data = load_prompts(&job.dataset, &job.datasets_dir)?;
        check_set(&data)?;
        let model = (info.load)(job, &data)?;
        Ok((data, model))
    };
    let mut measure = |job: &Job,
                       data: &Prompts,
                       model: &mut (dyn Generator + 'static),
                       params: &GenerateParams,
                       repetition: u32,
                       record: &mut Record| {
        measure_repetition(job, info, data, model, params, repetition, record)
    };
    run_model_process(
        args,
        startup,
        ModelProcess {
            frameworks: info.frameworks,
            spec: info.spec,
            setup: info.setup,
            check: &check,
            load: &load,
            measure: &mut measure,
        },
    )
}

/// One decode step's seconds at each of PERCENTILES, as numpy's default (linear) percentile.
pub fn percentiles(decode_s: &[f64]) -> BTreeMap<String, f64> {
    let mut sorted = decode_s.to_vec();
    sorted.sort_by(f64::total_cmp);
    PERCENTILES
        .iter()
        .map(|&q| {
            let value = match sorted.len() {
                0 => f64::NAN,
                n => {
                    let position = f64::from(q) / 100.0 * (n - 1) as f64;
                    let (low, high) = (position.floor() as usize, position.ceil() as usize);
                    sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64)
                }
            };
            (format!("decode_p{q}"), value)
        })
        .collect()
}

fn measure_repetition(
    job: &Job,
    info: &GenerationInfo,
    data: &Prompts,
    model: &mut dyn Generator,
    params: &GenerateParams,
    repetition: u32,
    record: &mut Record,
) -> Result<()> {
    reset_peak_rss();
    let rss_start = rss_mb();
    let cpu_start = cpu_time_s();
    let batch = data.prompts.slice(s![..params.batch_size, ..params.prompt_length]).to_owned();
    let mut sampler = Sampler::of(params, job.seed + u64::from(repetition), &batch);
    let mut timer = PhaseTimer::default();
    let (outputs, gpu) = gpu::sampled(gpu::reader_for(&job.device), gpu::SAMPLE_INTERVAL, || {
        let generated = model.generate(&batch, params.max_new_tokens, sampler.as_mut())?;
        let nll = timer.calls("score", 1, None, || Ok(()), |_| model.score(&data.heldout))?;
        Ok::<_, BenchError>((generated, nll))
    });
    let (generated, nll) = outputs?;
    let cpu = cpu_time_s() - cpu_start;
    let expected = (params.batch_size, params.max_new_tokens);
    if generated.tokens.dim() != expected || generated.decode_s.len() != expected.1 - 1 {
        return Err(BenchError::run(format!(
            "generated tokens {:?} and {} decode steps, expected {expected:?} and {}",
            generated.tokens.dim(),
            generated.decode_s.len(),
            expected.1 - 1
        )));
    }
    if nll.len() + 1 != data.heldout.len() {
        return Err(BenchError::run(format!(
            "{} held-out NLLs for a sequence of {}",
            nll.len(),
            data.heldout.len()
        )));
    }
    let decode: f64 = generated.decode_s.iter().sum();
    let mut timings = BTreeMap::from([
        ("prefill".to_string(), generated.prefill_s),
        ("decode".to_string(), decode),
        ("generate".to_string(), generated.prefill_s + decode),
    ]);
    timings.extend(percentiles(&generated.decode_s));
    timings.extend(timer.timings_s);
    record.inner_loops = timings.keys().map(|phase| (phase.clone(), 1)).collect();
    record.timings_s = timings;
    record.page_faults = timer.page_faults;
    let (batch, new) = (params.batch_size as u64, params.max_new_tokens as u64);
    record.set_counts(BTreeMap::from([
        ("prefill".to_string(), batch * params.prompt_length as u64),
        ("decode".to_string(), batch * (new - 1)),
        ("generate".to_string(), batch * new),
        ("score".to_string(), data.heldout.len() as u64 - 1),
    ]));
    record.save_artifact(job, "tokens", &generated.tokens)?;
    record.save_artifact(job, "decode_steps", &Array1::from(generated.decode_s))?;
    record.save_artifact(job, "nll", &nll)?;
    record.solver = Some(Solver {
        name: (info.describe)(job),
        stopping_rule: format!("fixed: {} new tokens ({})", params.max_new_tokens, job.algorithm),
        n_iter: Some(new),
    });
    record.resources = Resources::with_gpu(cpu, rss_start, gpu);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_as_numpy() {
        // numpy.percentile([4, 1, 3, 2], [50, 90, 99]) = 2.5, 3.7, 3.97
        let got = percentiles(&[4.0, 1.0, 3.0, 2.0]);
        for (key, want) in [("decode_p50", 2.5), ("decode_p90", 3.7), ("decode_p99", 3.97)] {
            assert!((got[key] - want).abs() < 1e-12, "{key}: {} against {want}", got[key]);
        }
        assert!(percentiles(&[]).values().all(|v| v.is_nan()));
    }
}
