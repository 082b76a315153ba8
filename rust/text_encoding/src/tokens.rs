//! The set's tokenizer.json, read with the `tokenizers` crate (the library Python's `tokenizers`
//! wraps): checked against the model's vocabulary, its own padding replaced by padding to the set's
//! length, as python/mlbench/texts.py's `tokenizer_of` does.
use bench_core::encoding::Texts;
use bench_core::error::{BenchError, Result};
use ndarray::Array2;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer};

/// The set's tokenizer.json, if it has one, with its own padding replaced by padding to `length`
/// (the same pad token), checked against the model's vocabulary size.
pub fn tokenizer(data: &Texts, length: usize) -> Result<Option<Tokenizer>> {
    let path = data.folder.join("tokenizer.json");
    if !path.is_file() {
        return Ok(None);
    }
    let mut tokenizer = Tokenizer::from_file(&path)
        .map_err(|e| BenchError::usage(format!("{}: cannot read the tokenizer: {e}", path.display())))?;
    let size = tokenizer.get_vocab_size(true);
    if size != data.vocab_size {
        return Err(BenchError::usage(format!(
            "{}: a vocabulary of {size} tokens does not match the model's vocab_size {}",
            path.display(),
            data.vocab_size
        )));
    }
    let pad_id = tokenizer.get_padding().map_or(0, |p| p.pad_id);
    let pad_token = tokenizer.get_padding().map_or_else(|| "[PAD]".to_string(), |p| p.pad_token.clone());
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::Fixed(length),
        pad_id,
        pad_token,
        ..Default::default()
    }));
    Ok(Some(tokenizer))
}

pub fn check_tokenizer(data: &Texts) -> Result<()> {
    tokenizer(data, data.ids.ncols()).map(|_| ())
}

pub fn tokenize(data: &Texts, sentences: &[String], length: usize) -> Result<(Array2<i64>, Array2<i64>)> {
    let tokenizer = tokenizer(data, length)?.ok_or_else(|| {
        BenchError::usage(format!("{}: the set has sentences but no tokenizer.json", data.folder.display()))
    })?;
    let encodings = tokenizer
        .encode_batch(sentences.to_vec(), true)
        .map_err(|e| BenchError::run(format!("tokenize: {e}")))?;
    let width = encodings.first().map_or(0, |e| e.get_ids().len());
    let array = |pick: fn(&tokenizers::Encoding) -> &[u32]| {
        let values: Vec<i64> = encodings.iter().flat_map(|e| pick(e).iter().map(|&v| i64::from(v))).collect();
        Array2::from_shape_vec((encodings.len(), width), values)
            .map_err(|e| BenchError::run(format!("tokenize: sentences of different lengths: {e}")))
    };
    Ok((array(|e| e.get_ids())?, array(|e| e.get_attention_mask())?))
}
