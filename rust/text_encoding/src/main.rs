//! A BERT-family encoder with one seeded task head on candle, the Rust twin of
//! python/tasks/llm/text_encoding.py, on the same files: a texts set's config.json,
//! model.safetensors (the encoder) and heads.safetensors (each head's weights, prefixed by the head),
//! under transformers' names. `text_encoding --config JOB.yaml --out RECORDS.jsonl` is the
//! `text_encoding` task's Rust side (the `encode` protocol of bench_core::encoding).
//!
//! Encoders (heads.rs has the heads): candle-transformers' BertModel (BERT and MiniLM),
//! DistilBertModel (its mask marks padding, the inverse of transformers': converted here) and
//! XLMRobertaModel (RoBERTa's architecture: positions counted from the pad id), and ALBERT, which
//! candle-transformers 0.11 lacks, written on candle-nn (albert.rs).
mod albert;
#[path = "../../candle_device.rs"]
mod candle_device;
mod heads;

use std::collections::BTreeMap;
use std::path::Path;

use bench_core::config::Job;
use bench_core::encoding::{Encoder, EncodingInfo, Texts};
use bench_core::error::{BenchError, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{bert, distilbert, xlm_roberta};
use ndarray::{Array2, ArrayD, IxDyn};
use text_encoding::tokens::{check_tokenizer, tokenize};

use crate::candle_device::candle_device;
use crate::heads::Head;

fn candle_error(e: candle_core::Error) -> BenchError {
    BenchError::run(e.to_string())
}

/// The encoder of a family, as candle-transformers has it.
enum Body {
    Bert(bert::BertModel),
    DistilBert(distilbert::DistilBertModel),
    Roberta(xlm_roberta::XLMRobertaModel),
    Albert(albert::Albert),
}

impl Body {
    /// The last hidden states (rows x length x hidden) of ids and mask (u32, 1 for a real token).
    fn forward(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Body::Bert(model) => model.forward(ids, &ids.zeros_like()?, Some(mask)),
            // candle's DistilBERT masks where its mask is 1 (padding): transformers' mask inverted.
            Body::DistilBert(model) => {
                let padding = mask.eq(0u32)?.unsqueeze(1)?.unsqueeze(1)?;
                model.forward(ids, &padding)
            }
            Body::Roberta(model) => model.forward(ids, mask, &ids.zeros_like()?, None, None, None),
            Body::Albert(model) => model.forward(ids, mask),
        }
    }
}

struct CandleEncoder {
    body: Body,
    head: Head,
    device: Device,
}

/// config.json, with what transformers 5 no longer writes filled in for candle's structs.
fn read_config<T: serde::de::DeserializeOwned>(folder: &Path) -> Result<T> {
    let path = folder.join("config.json");
    let mut value: serde_json::Value = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        .map_err(|e| BenchError::usage(format!("{}: {e}", path.display())))?;
    if let Some(fields) = value.as_object_mut() {
        fields.entry("position_embedding_type").or_insert_with(|| "absolute".into());
    }
    serde_json::from_value(value).map_err(|e| BenchError::usage(format!("{}: {e}", path.display())))
}

/// A safetensors file mapped for candle, its tensors loaded onto `device`.
fn weights(path: &Path, device: &Device) -> Result<VarBuilder<'static>> {
    // SAFETY: the weights file is only read, and not changed while mapped.
    unsafe { VarBuilder::from_mmaped_safetensors(&[path], DType::F32, device) }
        .map_err(|e| BenchError::usage(format!("{}: {e}", path.display())))
}

fn load(job: &Job, data: &Texts) -> Result<Box<dyn Encoder>> {
    check_tokenizer(data)?;
    let model_file = data.folder.join("model.safetensors");
    let device = candle_device(job)?;
    let encoder = weights(&model_file, &device)?;
    let in_file = |e: candle_core::Error| BenchError::usage(format!("{}: {e}", model_file.display()));
    let (body, hidden) = match data.family.as_str() {
        "bert" => {
            let config: bert::Config = read_config(&data.folder)?;
            (
                Body::Bert(bert::BertModel::load(encoder.clone(), &config).map_err(in_file)?),
                config.hidden_size,
            )
        }
        "distilbert" => {
            let config: distilbert::Config = read_config(&data.folder)?;
            let model = distilbert::DistilBertModel::load(encoder.clone(), &config).map_err(in_file)?;
            (Body::DistilBert(model), config.dim)
        }
        "roberta" => {
            let config: xlm_roberta::Config = read_config(&data.folder)?;
            let model = xlm_roberta::XLMRobertaModel::new(&config, encoder.clone()).map_err(in_file)?;
            (Body::Roberta(model), config.hidden_size)
        }
        "albert" => {
            let config: albert::Config = read_config(&data.folder)?;
            (
                Body::Albert(albert::Albert::load(encoder.clone(), &config).map_err(in_file)?),
                config.hidden_size,
            )
        }
        other => {
            return Err(BenchError::usage(format!("family: candle has no {other} encoder in this task")));
        }
    };
    let head = Head::load(&job.algorithm, &data.family, hidden, &data.labels, &encoder, &data.folder)?;
    Ok(Box::new(CandleEncoder { body, head, device }))
}

impl Encoder for CandleEncoder {
    fn forward(&mut self, ids: &Array2<i64>, mask: &Array2<i64>) -> Result<ArrayD<f32>> {
        let as_u32 = |a: &Array2<i64>| {
            Tensor::from_vec(a.iter().map(|&v| v as u32).collect::<Vec<_>>(), a.dim(), &self.device)
        };
        let outputs = (|| {
            let (ids, mask) = (as_u32(ids)?, as_u32(mask)?);
            let hidden = self.body.forward(&ids, &mask)?;
            self.head.forward(&hidden, &mask)
        })()
        .map_err(candle_error)?;
        let shape = outputs.dims().to_vec();
        let values = outputs.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(candle_error)?;
        ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|e| BenchError::run(format!("outputs: {e}")))
    }
}

/// The job's threads for candle's CPU kernels (they size their pool from RAYON_NUM_THREADS), and a
/// device candle can use.
fn setup(job: &Job) -> Result<BTreeMap<String, u64>> {
    candle_device(job)?;
    std::env::set_var("RAYON_NUM_THREADS", job.threads.to_string());
    Ok(BTreeMap::from([("candle".to_string(), candle_core::utils::get_num_threads() as u64)]))
}

fn describe(job: &Job, data: &Texts) -> String {
    let body = match data.family.as_str() {
        "distilbert" => "DistilBertModel",
        "roberta" => "XLMRobertaModel",
        "albert" => "ALBERT on candle-nn (albert.rs)",
        _ => "BertModel",
    };
    format!("candle-transformers {body}, {} head on candle-nn, float32", job.algorithm)
}

/// The `text_encoding` task's Rust side.
const TASK: EncodingInfo = EncodingInfo {
    frameworks: &[("candle", env!("MLBENCH_VERSION_CANDLE_CORE"))],
    load,
    tokenize,
    setup,
    describe,
    spec: include_str!("../../../configs/tasks/text_encoding.yaml"),
};

fn main() {
    bench_core::encoding::main_encoding(TASK);
}
