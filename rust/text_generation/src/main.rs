//! GPT-2 greedy generation with a KV cache on candle (gpt2.rs), the Rust twin of
//! python/tasks/llm/text_generation.py, on the same files: a model folder (config.json and
//! model.safetensors under transformers' names) and pre-tokenised prompts (int64 .npy, batch x
//! prompt length). `text_generation --config JOB.yaml --out RECORDS.jsonl` is the
//! `text_generation` task's Rust side (the `generate` protocol of bench_core::generation, on a
//! prompts set); the commands below are the parity test's (tests/test_text_generation.py).
//!
//! `text_generation generate` writes `ids.npy` (int64, batch x new tokens: the greedy tokens; the
//! first from the prefill, each later one from one decode step on the cache) and `timings.json`
//! (`prefill_s`, the seconds to the first token, and `decode_s`, each later token's seconds).
//! `text_generation logits` writes the prompts' logits without a cache (`logits.npy`, float32).
//! `text_generation tokenize` reads texts (one per line) with the model folder's tokenizer.json and
//! writes `ids.npy` (int64, every text's ids in order) and `lengths.npy` (int64, ids per text). A
//! tokenizer.json in the model folder must have the model's vocabulary size (every command checks).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use bench_core::generation::{Generated, GenerationInfo, Generator, Prompts};
use bench_core::sampling::Sampler;
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use clap::{Parser, Subcommand};
use ndarray::{Array1, Array2};
use text_generation::gpt2;
use text_generation::model::{read_config, read_tokenizer};

#[path = "../../candle_device.rs"]
mod candle_device;
use candle_device::candle_device;

#[derive(Debug, Parser)]
#[command(about = "GPT-2 greedy generation on candle (the twin of python/tasks/llm/text_generation.py).")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Greedy decoding of `--new-tokens` tokens after each prompt, with a KV cache.
    Generate {
        #[arg(long)]
        model_dir: PathBuf,
        #[arg(long)]
        prompts: PathBuf,
        #[arg(long)]
        new_tokens: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// The token ids of texts, one per line, with the model folder's tokenizer.json.
    Tokenize {
        #[arg(long)]
        model_dir: PathBuf,
        #[arg(long)]
        texts: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// The prompts' logits, all positions, without a cache.
    Logits {
        #[arg(long)]
        model_dir: PathBuf,
        #[arg(long)]
        prompts: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

fn candle_error(e: candle_core::Error) -> BenchError {
    BenchError::run(e.to_string())
}

fn load(model_dir: &Path, device: &Device) -> Result<gpt2::Gpt2> {
    let config = read_config(model_dir)?;
    read_tokenizer(model_dir, &config)?; // a tokenizer beside the model must fit it
    let weights = model_dir.join("model.safetensors");
    // SAFETY: the weights file is only read, and not changed while mapped.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, device) }
        .map_err(|e| BenchError::usage(format!("{}: {e}", weights.display())))?;
    gpt2::Gpt2::load(config, vb).map_err(|e| BenchError::usage(format!("{}: {e}", weights.display())))
}

fn tokenize(model_dir: &Path, texts: &Path, out: &Path) -> Result<()> {
    let tokenizer = read_tokenizer(model_dir, &read_config(model_dir)?)?.ok_or_else(|| {
        BenchError::usage(format!("--model-dir: {} has no tokenizer.json", model_dir.display()))
    })?;
    let text = std::fs::read_to_string(texts)
        .map_err(|e| BenchError::usage(format!("--texts: {}: {e}", texts.display())))?;
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return Err(BenchError::usage(format!("--texts: {}: no texts", texts.display())));
    }
    let encodings =
        tokenizer.encode_batch(lines, false).map_err(|e| BenchError::run(format!("tokenize: {e}")))?;
    let ids: Vec<i64> = encodings.iter().flat_map(|e| e.get_ids().iter().map(|&id| i64::from(id))).collect();
    let lengths: Vec<i64> = encodings.iter().map(|e| e.get_ids().len() as i64).collect();
    std::fs::create_dir_all(out).map_err(|e| BenchError::usage(format!("--out: {}: {e}", out.display())))?;
    for (name, values) in [("ids", ids), ("lengths", lengths)] {
        let count = values.len();
        Tensor::from_vec(values, count, &Device::Cpu)
            .and_then(|t| t.write_npy(out.join(format!("{name}.npy"))))
            .map_err(candle_error)?;
    }
    Ok(())
}

/// The prompts (batch x length, int64) as u32 ids, checked against the model.
fn prompts(path: &Path, config: &gpt2::Config, new_tokens: usize) -> Result<Tensor> {
    let bad = |message: String| BenchError::usage(format!("--prompts: {}: {message}", path.display()));
    let ids = Tensor::read_npy(path).map_err(|e| bad(format!("cannot read .npy: {e}")))?;
    let (batch, length) =
        ids.dims2().map_err(|_| bad(format!("shape {:?} is not batch x length", ids.dims())))?;
    if batch == 0 || length == 0 {
        return Err(bad(format!("shape {:?} is empty", ids.dims())));
    }
    if length + new_tokens > config.n_positions {
        return Err(bad(format!(
            "{length} prompt tokens and {new_tokens} new ones exceed the model's {} positions",
            config.n_positions
        )));
    }
    let values =
        ids.to_dtype(DType::I64).and_then(|t| t.flatten_all()?.to_vec1::<i64>()).map_err(candle_error)?;
    if let Some(id) = values.iter().find(|&&id| id < 0 || id as usize >= config.vocab_size) {
        return Err(bad(format!("token id {id} is outside the vocabulary of {}", config.vocab_size)));
    }
    let ids: Vec<u32> = values.iter().map(|&id| id as u32).collect();
    Tensor::from_vec(ids, (batch, length), &Device::Cpu).map_err(candle_error)
}

/// The next tokens (batch, u32) from the logits (batch x steps x vocabulary): the argmax of the last
/// position, or the sampler's choice from that row.
fn pick(logits: &Tensor, sampler: &mut Option<&mut Sampler>) -> Result<Tensor> {
    let Some(sampler) = sampler else {
        return gpt2::next_tokens(logits).map_err(candle_error);
    };
    let steps = logits.dim(1).map_err(candle_error)?;
    let rows = logits
        .narrow(1, steps - 1, 1)
        .and_then(|l| l.squeeze(1)?.to_dtype(DType::F32)?.to_vec2::<f32>())
        .map_err(candle_error)?;
    let chosen = sampler.choose_rows(&rows)?;
    Tensor::new(chosen.as_slice(), logits.device()).map_err(candle_error)
}

/// Decoding from a fresh cache (greedy, or with a sampler): the new ids (batch x new tokens, i64),
/// the prefill's seconds and each later token's seconds, the device synchronised before every clock
/// read (a no-op on the CPU).
fn decode(
    model: &mut gpt2::Gpt2,
    ids: &Tensor,
    new_tokens: usize,
    mut sampler: Option<&mut Sampler>,
) -> Result<(Tensor, f64, Vec<f64>)> {
    model.clear_cache();
    let device = ids.device().clone();
    let sync = || device.synchronize().map_err(candle_error);
    let mut tokens = Vec::with_capacity(new_tokens);
    sync()?;
    let start = Instant::now();
    let mut token = pick(&model.forward(ids).map_err(candle_error)?, &mut sampler)?;
    tokens.push(token.clone());
    sync()?;
    let prefill_s = start.elapsed().as_secs_f64();
    let mut decode_s = Vec::with_capacity(new_tokens.saturating_sub(1));
    for _ in 1..new_tokens {
        let start = Instant::now();
        let logits = token.unsqueeze(1).and_then(|t| model.forward(&t)).map_err(candle_error)?;
        token = pick(&logits, &mut sampler)?;
        tokens.push(token.clone());
        sync()?;
        decode_s.push(start.elapsed().as_secs_f64());
    }
    let tokens = Tensor::stack(&tokens, 1).and_then(|t| t.to_dtype(DType::I64)).map_err(candle_error)?;
    model.clear_cache();
    Ok((tokens, prefill_s, decode_s))
}

fn generate(model_dir: &Path, prompts_path: &Path, new_tokens: usize, out: &Path) -> Result<()> {
    if new_tokens == 0 {
        return Err(BenchError::usage("--new-tokens: must be at least 1"));
    }
    let mut model = load(model_dir, &Device::Cpu)?;
    let ids = prompts(prompts_path, &model.config, new_tokens)?;
    let (tokens, prefill_s, decode_s) = decode(&mut model, &ids, new_tokens, None)?;
    std::fs::create_dir_all(out).map_err(|e| BenchError::usage(format!("--out: {}: {e}", out.display())))?;
    tokens.write_npy(out.join("ids.npy")).map_err(candle_error)?;
    let timings = serde_json::json!({"prefill_s": prefill_s, "decode_s": decode_s});
    std::fs::write(out.join("timings.json"), timings.to_string())
        .map_err(|e| BenchError::run(format!("{}: {e}", out.display())))
}

fn logits(model_dir: &Path, prompts_path: &Path, out: &Path) -> Result<()> {
    let mut model = load(model_dir, &Device::Cpu)?;
    let ids = prompts(prompts_path, &model.config, 0)?;
    let logits = model.forward(&ids).map_err(candle_error)?;
    std::fs::create_dir_all(out).map_err(|e| BenchError::usage(format!("--out: {}: {e}", out.display())))?;
    logits.write_npy(out.join("logits.npy")).map_err(candle_error)
}

/// The harness's model: GPT-2 on candle-nn, loaded from the prompts set's model folder onto the
/// job's device.
struct CandleGpt2 {
    model: gpt2::Gpt2,
    device: Device,
}

/// int64 ids (rows x length) as a u32 tensor on `device`; the set's ids were checked against the
/// vocabulary at load.
fn id_tensor(ids: &[i64], shape: (usize, usize), device: &Device) -> Result<Tensor> {
    let ids: Vec<u32> = ids.iter().map(|&id| id as u32).collect();
    Tensor::from_vec(ids, shape, device).map_err(candle_error)
}

impl Generator for CandleGpt2 {
    fn generate(
        &mut self,
        prompts: &Array2<i64>,
        new_tokens: usize,
        sampler: Option<&mut Sampler>,
    ) -> Result<Generated> {
        let ids = id_tensor(&prompts.iter().copied().collect::<Vec<_>>(), prompts.dim(), &self.device)?;
        let (tokens, prefill_s, decode_s) = decode(&mut self.model, &ids, new_tokens, sampler)?;
        let values = tokens.flatten_all().and_then(|t| t.to_vec1::<i64>()).map_err(candle_error)?;
        let tokens = Array2::from_shape_vec((prompts.nrows(), new_tokens), values)
            .map_err(|e| BenchError::run(format!("generated tokens: {e}")))?;
        Ok(Generated { tokens, prefill_s, decode_s })
    }

    fn score(&mut self, sequence: &Array1<i64>) -> Result<Array1<f64>> {
        let n = sequence.len();
        let ids = id_tensor(sequence.as_slice().unwrap_or(&sequence.to_vec()), (1, n), &self.device)?;
        self.model.clear_cache();
        let logits = self.model.forward(&ids).map_err(candle_error)?;
        self.model.clear_cache();
        let next = id_tensor(&sequence.to_vec()[1..], (n - 1, 1), &self.device)?;
        let nll = logits
            .squeeze(0)
            .and_then(|l| l.narrow(0, 0, n - 1))
            .and_then(|l| candle_nn::ops::log_softmax(&l, D::Minus1))
            .and_then(|l| l.gather(&next, 1))
            .and_then(|l| l.squeeze(1)?.neg()?.to_dtype(DType::F64)?.to_vec1::<f64>())
            .map_err(candle_error)?;
        Ok(Array1::from(nll))
    }
}

/// The prompts set's model (bench_core::generation::check_set checked the set first).
fn load_set(job: &Job, data: &Prompts) -> Result<Box<dyn Generator>> {
    let device = candle_device(job)?;
    Ok(Box::new(CandleGpt2 { model: load(&data.folder, &device)?, device }))
}

/// The job's threads for candle's CPU kernels (they size their pool from RAYON_NUM_THREADS), and a
/// device candle can use.
fn setup(job: &Job) -> Result<BTreeMap<String, u64>> {
    candle_device(job)?;
    std::env::set_var("RAYON_NUM_THREADS", job.threads.to_string());
    Ok(BTreeMap::from([("candle".to_string(), candle_core::utils::get_num_threads() as u64)]))
}

fn describe(job: &Job) -> String {
    let how = if job.algorithm == "sample" { "sampled (rand's WeightedIndex)" } else { "greedy" };
    format!("GPT-2 on candle-nn (rust/text_generation), {how}, KV cache")
}

/// The `text_generation` task's Rust side.
const TASK: GenerationInfo = GenerationInfo {
    frameworks: &[("candle", env!("MLBENCH_VERSION_CANDLE_CORE"))],
    load: load_set,
    setup,
    describe,
    spec: include_str!("../../../configs/tasks/text_generation.yaml"),
};

fn main() {
    let command = std::env::args().nth(1);
    if !matches!(command.as_deref(), Some("generate" | "logits" | "tokenize" | "help" | "--help" | "-h")) {
        bench_core::generation::main_generation(TASK);
    }
    std::env::set_var("RAYON_NUM_THREADS", "1"); // one thread, as the Python side
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Generate { model_dir, prompts, new_tokens, out } => {
            generate(model_dir, prompts, *new_tokens, out)
        }
        Command::Logits { model_dir, prompts, out } => logits(model_dir, prompts, out),
        Command::Tokenize { model_dir, texts, out } => tokenize(model_dir, texts, out),
    };
    if let Err(err) = result {
        eprintln!("error: {}", bench_core::error::one_line(&err.to_string()));
        std::process::exit(err.exit_code());
    }
}
