//! The `encode` protocol: a BERT-family encoder with one task head (or none: sentence embeddings)
//! on a batch of token ids from a texts set. Mirrors python/mlbench/encoding.py (which says what each
//! phase, count and output is) and reads the set as python/mlbench/texts.py writes it: a model
//! folder's files (config.json, model.safetensors, heads.safetensors, perhaps tokenizer.json and
//! sentences.txt) beside `ids.npy` and `mask.npy` (int64, n_sequences x sequence_length).
//!
//! The model is loaded once per process (the `load` timing, with the set). Each repetition: on a set
//! with sentences, `tokenize` (the batch's sentences, checked against the set's rows), then
//! `forward` (the batch's ids and mask through the encoder and the head); each a calibrated sample of
//! k calls, k found in the first warm-up.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{s, Array2, ArrayD};
use ndarray_npy::read_npy;
use serde::Deserialize;

use crate::config::Job;
use crate::data;
use crate::error::{BenchError, Result};
use crate::harness::{run_main, Args, Phases};
use crate::measure::{cpu_time_s, reset_peak_rss, rss_mb, PhaseTimer};
use crate::models::{run_model_process, ModelProcess};
use crate::gpu;
use crate::record::{Record, Resources, Solver};

/// A texts set as the protocol reads it.
pub struct Texts {
    /// The model folder (the dataset's own).
    pub folder: PathBuf,
    /// The encoder's family: bert, distilbert, roberta or albert.
    pub family: String,
    pub ids: Array2<i64>,
    pub mask: Array2<i64>,
    pub pad_token_id: i64,
    pub vocab_size: usize,
    pub max_positions: usize,
    /// Each head's label count.
    pub labels: BTreeMap<String, usize>,
    /// The sentences behind the rows (sentences.txt), for a set that has them.
    pub sentences: Option<Vec<String>>,
}

/// A framework's loaded encoder with the job's head.
pub trait Encoder {
    /// The head's outputs (float32) for ids and mask (int64, batch x length): `classification`
    /// batch x labels, `token_classification` batch x length x labels, `question_answering` batch x
    /// length x 2 (start, end), `embedding` batch x 2 (CLS, mean) x hidden.
    fn forward(&mut self, ids: &Array2<i64>, mask: &Array2<i64>) -> Result<ArrayD<f32>>;
}

/// Loads the set's encoder with the job's head: `Err(Usage)` for a model folder it cannot read.
pub type Load = fn(&Job, &Texts) -> Result<Box<dyn Encoder>>;
/// The ids and mask (int64, sentences x `length`) of sentences, with the set's tokenizer.json padded
/// to `length`.
pub type Tokenize = fn(&Texts, &[String], usize) -> Result<(Array2<i64>, Array2<i64>)>;

/// What an encoding task tells the harness about itself.
pub struct EncodingInfo {
    /// Version of each framework this binary can run, by the job's `framework` name.
    pub frameworks: &'static [(&'static str, &'static str)],
    pub load: Load,
    pub tokenize: Tokenize,
    /// Applies the job's thread count to the framework once per process and returns what the
    /// framework then reports (recorded in `env.framework_threads`).
    pub setup: fn(&Job) -> Result<BTreeMap<String, u64>>,
    /// The solver's name for the job and set (e.g. "candle-transformers BertModel, classification head").
    pub describe: fn(&Job, &Texts) -> String,
    /// The task spec (configs/tasks/<task>.yaml, `include_str!`).
    pub spec: &'static str,
}

/// An encoding job's parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodeParams {
    pub batch_size: usize,
    pub sequence_length: usize,
}

#[derive(Debug, Deserialize)]
struct TextsMeta {
    #[serde(default)]
    family: String,
    #[serde(default)]
    n_sequences: usize,
    #[serde(default)]
    sequence_length: usize,
    #[serde(default)]
    max_positions: usize,
    #[serde(default)]
    vocab_size: usize,
    #[serde(default)]
    pad_token_id: i64,
    #[serde(default)]
    labels: BTreeMap<String, usize>,
}

fn read_meta(name: &str, datasets_dir: &Path) -> Result<TextsMeta> {
    data::meta_of_layout(name, datasets_dir, "texts", "an encoder's texts set").map_err(|e| match e {
        BenchError::Usage(message) => BenchError::usage(format!("dataset: {message}")),
        other => other,
    })
}

/// What a job's schema cannot see: the set has the rows and tokens it asks.
fn check_params(params: &EncodeParams, meta: &TextsMeta) -> Result<()> {
    let (batch, length) = (params.batch_size, params.sequence_length);
    let problem = if batch > meta.n_sequences {
        Some(format!("batch_size: {batch} is above the {} sequences of the set", meta.n_sequences))
    } else if length > meta.sequence_length {
        Some(format!(
            "sequence_length: {length} is above the set's sequences of {} tokens",
            meta.sequence_length
        ))
    } else if length > meta.max_positions {
        Some(format!("sequence_length: {length} is above the model's {} positions", meta.max_positions))
    } else {
        None
    };
    problem.map_or(Ok(()), |message| Err(BenchError::usage(format!("hyperparameters: {message}"))))
}

/// Read a texts set (call `data::verify` once per process first).
pub fn load_texts(name: &str, datasets_dir: &Path) -> Result<Texts> {
    let meta = read_meta(name, datasets_dir)?;
    let folder = datasets_dir.join(name);
    let npy = |file: &str| {
        let path = folder.join(file);
        read_npy(&path).map_err(|e| BenchError::usage(format!("{}: cannot read .npy: {e}", path.display())))
    };
    Ok(Texts {
        ids: npy("ids.npy")?,
        mask: npy("mask.npy")?,
        folder: folder.clone(),
        family: meta.family,
        pad_token_id: meta.pad_token_id,
        vocab_size: meta.vocab_size,
        max_positions: meta.max_positions,
        labels: meta.labels,
        sentences: read_sentences(&folder)?,
    })
}

#[derive(Debug, Deserialize)]
struct ModelConfig {
    vocab_size: usize,
}

/// The set's model folder fits its token ids: config.json's vocabulary is the set's (meta.json),
/// every id lies in it, the mask is 0/1 with a real first token in every row. (A tokenizer.json is
/// checked by the task, which reads it.)
pub fn check_set(data: &Texts) -> Result<()> {
    let config: ModelConfig = data::read_model_config(&data.folder, "vocab_size")?;
    let path = data.folder.join("config.json");
    if config.vocab_size != data.vocab_size {
        return Err(BenchError::usage(format!(
            "{}: vocab_size {} does not match the set's meta.json ({})",
            path.display(),
            config.vocab_size,
            data.vocab_size
        )));
    }
    if data.ids.dim() != data.mask.dim() {
        return Err(BenchError::usage(format!(
            "{}: shape {:?} does not match the ids' {:?}",
            data.folder.join("mask.npy").display(),
            data.mask.dim(),
            data.ids.dim()
        )));
    }
    if let Some(id) = data.ids.iter().find(|&&id| id < 0 || id as usize >= config.vocab_size) {
        return Err(BenchError::usage(format!(
            "{}: token id {id} is outside the vocabulary of {}",
            data.folder.join("ids.npy").display(),
            config.vocab_size
        )));
    }
    let first_real = data.mask.ncols() == 0 || data.mask.column(0).iter().all(|&m| m == 1);
    if data.mask.iter().any(|&m| m != 0 && m != 1) || !first_real {
        return Err(BenchError::usage(format!(
            "{}: not 0/1 with a real first token in every row",
            data.folder.join("mask.npy").display()
        )));
    }
    Ok(())
}

/// The set's sentences, one per row of ids.npy, for a set that has them (None: a synthetic set).
fn read_sentences(folder: &Path) -> Result<Option<Vec<String>>> {
    let path = folder.join("sentences.txt");
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| BenchError::usage(format!("{}: {e}", path.display())))?;
    Ok(Some(text.lines().map(str::to_string).collect()))
}

/// The outputs' expected shape for the head (the embedding's hidden size taken from the outputs).
fn expected_shape(head: &str, data: &Texts, params: &EncodeParams, outputs: &ArrayD<f32>) -> Vec<usize> {
    let (rows, length) = (params.batch_size, params.sequence_length);
    let labels = |name: &str| data.labels.get(name).copied().unwrap_or(0);
    match head {
        "classification" => vec![rows, labels("classification")],
        "token_classification" => vec![rows, length, labels("token_classification")],
        "question_answering" => vec![rows, length, 2],
        _ => vec![rows, 2, outputs.shape().get(2).copied().unwrap_or(0)],
    }
}

/// Entry point of an encoding task: exit 2 with one line on bad input, 1 on a failed run.
pub fn main_encoding(info: EncodingInfo) -> ! {
    run_main(|args, startup| run(args, &info, startup))
}

fn run(args: &Args, info: &EncodingInfo, startup: Option<f64>) -> Result<()> {
    let check =
        |job: &Job, params: &EncodeParams| check_params(params, &read_meta(&job.dataset, &job.datasets_dir)?);
    let load = |job: &Job| {
        let data = load_texts(&job.dataset, &job.datasets_dir)?;
        check_set(&data)?;
        let model = (info.load)(job, &data)?;
        Ok((data, model))
    };
    let mut loops = BTreeMap::new();
    let mut measure = |job: &Job,
                       data: &Texts,
                       model: &mut (dyn Encoder + 'static),
                       params: &EncodeParams,
                       repetition: u32,
                       record: &mut Record| {
        let calibrate = repetition == 0 && job.warmup > 0; // the first warm-up finds k per phase
        let mut phases = Phases {
            timer: PhaseTimer::default(),
            loops: &mut loops,
            calibrate_to_s: calibrate.then_some(job.min_sample_s),
        };
        measure_repetition(job, info, data, model, params, &mut phases, record)
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

fn measure_repetition(
    job: &Job,
    info: &EncodingInfo,
    data: &Texts,
    model: &mut dyn Encoder,
    params: &EncodeParams,
    phases: &mut Phases,
    record: &mut Record,
) -> Result<()> {
    reset_peak_rss();
    let rss_start = rss_mb();
    let cpu_start = cpu_time_s();
    let rows = params.batch_size;
    let sentences = data.sentences.as_ref().map(|all| &all[..rows.min(all.len())]);
    let (outputs, gpu) = gpu::sampled(gpu::reader_for(&job.device), gpu::SAMPLE_INTERVAL, || {
        if let Some(sentences) = sentences {
            let width = data.ids.ncols();
            let (ids, mask) =
                phases.run("tokenize", || Ok(()), |_| (info.tokenize)(data, sentences, width))?;
            let same = ids.dim() == (rows, width)
                && ids == data.ids.slice(s![..rows, ..])
                && mask == data.mask.slice(s![..rows, ..]);
            if !same {
                return Err(BenchError::usage(format!(
                    "{}: the sentences tokenise to other ids than the set's ids.npy and mask.npy",
                    data.folder.join("tokenizer.json").display()
                )));
            }
        }
        let ids = data.ids.slice(s![..rows, ..params.sequence_length]).to_owned();
        let mask = data.mask.slice(s![..rows, ..params.sequence_length]).to_owned();
        phases.run("forward", || Ok(()), |_| model.forward(&ids, &mask))
    });
    let outputs = outputs?;
    let cpu = cpu_time_s() - cpu_start;
    let expected = expected_shape(&job.algorithm, data, params, &outputs);
    if outputs.shape() != expected.as_slice() {
        return Err(BenchError::run(format!(
            "{} outputs of shape {:?}, expected {expected:?}",
            job.algorithm,
            outputs.shape()
        )));
    }
    let timer = &phases.timer;
    record.timings_s = timer.timings_s.clone();
    record.inner_loops = timer.loops.clone();
    record.page_faults = timer.page_faults.clone();
    let mut counts = BTreeMap::from([("forward".to_string(), rows as u64)]);
    if sentences.is_some() {
        counts.insert("tokenize".to_string(), rows as u64);
    }
    record.set_counts(counts);
    record.save_artifact(job, "outputs", &outputs)?;
    record.solver = Some(Solver {
        name: (info.describe)(job, data),
        stopping_rule: "one forward pass".to_string(),
        n_iter: Some(1),
    });
    record.resources = Resources::with_gpu(cpu, rss_start, gpu);
    Ok(())
}
