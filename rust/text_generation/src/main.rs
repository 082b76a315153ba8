//! GPT-2 greedy generation with a KV cache on candle (gpt2.rs), the Rust twin of
//! python/tasks/llm/text_generation.py, on the same files: a model folder (config.json and
//! model.safetensors under transformers' names) and pre-tokenised prompts (int64 .npy, batch x
//! prompt length). The LLM benchmark protocol is not built yet; these commands are the parity
//! test's (tests/test_text_generation.py).
//!
//! `text_generation generate` writes `ids.npy` (int64, batch x new tokens: the greedy tokens; the
//! first from the prefill, each later one from one decode step on the cache) and `timings.json`
//! (`prefill_s`, the seconds to the first token, and `decode_s`, each later token's seconds).
//! `text_generation logits` writes the prompts' logits without a cache (`logits.npy`, float32).
//! `text_generation tokenize` reads texts (one per line) with the model folder's tokenizer.json and
//! writes `ids.npy` (int64, every text's ids in order) and `lengths.npy` (int64, ids per text). A
//! tokenizer.json in the model folder must have the model's vocabulary size (every command checks).
use std::path::{Path, PathBuf};
use std::time::Instant;

use bench_core::error::{BenchError, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use clap::{Parser, Subcommand};

mod gpt2;

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

/// The model folder's config.json, checked.
fn read_config(model_dir: &Path) -> Result<gpt2::Config> {
    let config_path = model_dir.join("config.json");
    let config: gpt2::Config = std::fs::read_to_string(&config_path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        .map_err(|e| BenchError::usage(format!("{}: {e}", config_path.display())))?;
    if config.n_head == 0 || !config.n_embd.is_multiple_of(config.n_head) {
        return Err(BenchError::usage(format!(
            "{}: n_embd {} is not a multiple of n_head {}",
            config_path.display(),
            config.n_embd,
            config.n_head
        )));
    }
    Ok(config)
}

/// The model folder's tokenizer.json, if it has one, with the model's vocabulary size.
fn read_tokenizer(model_dir: &Path, config: &gpt2::Config) -> Result<Option<tokenizers::Tokenizer>> {
    let path = model_dir.join("tokenizer.json");
    if !path.is_file() {
        return Ok(None);
    }
    let tokenizer = tokenizers::Tokenizer::from_file(&path)
        .map_err(|e| BenchError::usage(format!("{}: cannot read the tokenizer: {e}", path.display())))?;
    let size = tokenizer.get_vocab_size(true);
    if size != config.vocab_size {
        return Err(BenchError::usage(format!(
            "{}: a vocabulary of {size} tokens does not match the model's vocab_size {}",
            path.display(),
            config.vocab_size
        )));
    }
    Ok(Some(tokenizer))
}

fn load(model_dir: &Path) -> Result<gpt2::Gpt2> {
    let config = read_config(model_dir)?;
    read_tokenizer(model_dir, &config)?; // a tokenizer beside the model must fit it
    let weights = model_dir.join("model.safetensors");
    // SAFETY: the weights file is only read, and not changed while mapped.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &Device::Cpu) }
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

fn generate(model_dir: &Path, prompts_path: &Path, new_tokens: usize, out: &Path) -> Result<()> {
    if new_tokens == 0 {
        return Err(BenchError::usage("--new-tokens: must be at least 1"));
    }
    let mut model = load(model_dir)?;
    let ids = prompts(prompts_path, &model.config, new_tokens)?;
    let (tokens, prefill_s, decode_s) = (|| {
        let mut tokens = Vec::with_capacity(new_tokens);
        let start = Instant::now();
        let mut token = gpt2::next_tokens(&model.forward(&ids)?)?;
        tokens.push(token.clone());
        let prefill_s = start.elapsed().as_secs_f64();
        let mut decode_s = Vec::with_capacity(new_tokens - 1);
        for _ in 1..new_tokens {
            let start = Instant::now();
            token = gpt2::next_tokens(&model.forward(&token.unsqueeze(1)?)?)?;
            tokens.push(token.clone());
            decode_s.push(start.elapsed().as_secs_f64());
        }
        Ok::<_, candle_core::Error>((Tensor::stack(&tokens, 1)?.to_dtype(DType::I64)?, prefill_s, decode_s))
    })()
    .map_err(candle_error)?;
    std::fs::create_dir_all(out).map_err(|e| BenchError::usage(format!("--out: {}: {e}", out.display())))?;
    tokens.write_npy(out.join("ids.npy")).map_err(candle_error)?;
    let timings = serde_json::json!({"prefill_s": prefill_s, "decode_s": decode_s});
    std::fs::write(out.join("timings.json"), timings.to_string())
        .map_err(|e| BenchError::run(format!("{}: {e}", out.display())))
}

fn logits(model_dir: &Path, prompts_path: &Path, out: &Path) -> Result<()> {
    let mut model = load(model_dir)?;
    let ids = prompts(prompts_path, &model.config, 0)?;
    let logits = model.forward(&ids).map_err(candle_error)?;
    std::fs::create_dir_all(out).map_err(|e| BenchError::usage(format!("--out: {}: {e}", out.display())))?;
    logits.write_npy(out.join("logits.npy")).map_err(candle_error)
}

fn main() {
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
