//! The model folder both GPT-2 arms read (config.json, model.safetensors and perhaps tokenizer.json,
//! transformers' names), checked the same way by each.
use std::path::Path;

use bench_core::error::{BenchError, Result};

use crate::gpt2;

/// The model folder's config.json, checked.
pub fn read_config(model_dir: &Path) -> Result<gpt2::Config> {
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
pub fn read_tokenizer(model_dir: &Path, config: &gpt2::Config) -> Result<Option<tokenizers::Tokenizer>> {
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
