//! The task side of the contract: `<task> --config JOB.yaml --out RECORDS.jsonl`.
//! Mirrors python/mlbench/harness.py: the same loop, phases and record fields.
use std::path::PathBuf;

use clap::Parser;
use ndarray::{Array1, Array2};
use ndarray_npy::write_npy;

use crate::config::Job;
use crate::data;
use crate::env::{self, Env};
use crate::error::{BenchError, Result};
use crate::measure::{cpu_time_s, peak_rss_mb, reset_peak_rss, PhaseTimer};
use crate::record::{Record, Resources, Solver};

#[derive(Debug, Parser)]
#[command(about = "Run one mlbench job and append its records.")]
pub struct Args {
    /// Job file (YAML) written by `mlbench run`.
    #[arg(long)]
    pub config: PathBuf,
    /// JSON Lines file to append records to.
    #[arg(long)]
    pub out: PathBuf,
}

/// A fitted-or-not fit/predict model; the harness times `fit` and `predict`.
pub trait Supervised {
    fn fit(&mut self, x: &Array2<f64>, y: &Array1<f64>) -> Result<()>;
    fn predict(&self, x: &Array2<f64>) -> Result<Array1<f64>>;
    fn solver(&self) -> Solver;
}

/// Builds a model for a job and the seed of one repetition; `Err(Usage)` for unknown
/// algorithms or bad hyperparameters.
pub type Builder = fn(&Job, u64) -> Result<Box<dyn Supervised>>;

/// What a task tells the harness about itself.
pub struct TaskInfo {
    pub framework_version: &'static str,
    pub libraries: &'static [(&'static str, &'static str)],
    pub build: Builder,
}

/// Entry point of a fit/predict task: exit 2 with one line on bad input, 1 on a failed run.
pub fn main_supervised(info: TaskInfo) -> ! {
    let args = Args::parse();
    let code = match run_supervised(&args, &info) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    };
    std::process::exit(code)
}

pub fn run_supervised(args: &Args, info: &TaskInfo) -> Result<()> {
    let job = Job::load(&args.config)?;
    let in_job = |err: BenchError| match err {
        BenchError::Usage(message) => BenchError::usage(format!("{}: {message}", args.config.display())),
        other => other,
    };
    (info.build)(&job, job.seed).map_err(in_job)?; // unknown algorithm or bad parameters: before any work
    let digest = data::verify(&job.dataset, &job.datasets_dir).map_err(in_job)?;
    let env = env::capture(info.libraries);
    for repetition in 0..job.n_records() {
        let record = measure_repetition(&job, info, repetition, &digest, &env)?;
        record.append_to(&args.out)?;
    }
    Ok(())
}

fn measure_repetition(
    job: &Job,
    info: &TaskInfo,
    repetition: u32,
    digest: &str,
    env: &Env,
) -> Result<Record> {
    let mut record = Record::new(job, repetition, info.framework_version, digest, env);
    reset_peak_rss();
    let cpu_start = cpu_time_s();
    let mut timer = PhaseTimer::default();
    let split = timer.phase("load", || data::load_split(&job.dataset, &job.datasets_dir))?;
    let mut model = (info.build)(job, record.seed)?;
    timer.phase("fit", || model.fit(&split.x_train, &split.y_train))?;
    let predictions = timer.phase("predict", || model.predict(&split.x_test))?;
    let cpu = cpu_time_s() - cpu_start;
    let path = predictions_path(job, repetition)?;
    write_npy(&path, &predictions).map_err(|e| BenchError::run(format!("{}: {e}", path.display())))?;
    let predict_s = timer.timings_s["predict"].max(1e-12);
    record.throughput.insert("predict_samples_per_s".into(), split.x_test.nrows() as f64 / predict_s);
    record.timings_s = timer.timings_s;
    record.predictions = Some(path.display().to_string());
    record.solver = Some(model.solver());
    record.resources = Resources { peak_rss_mb: peak_rss_mb(), cpu_time_s: Some(cpu) };
    Ok(record)
}

fn predictions_path(job: &Job, repetition: u32) -> Result<PathBuf> {
    std::fs::create_dir_all(&job.predictions_dir)
        .map_err(|e| BenchError::run(format!("{}: {e}", job.predictions_dir.display())))?;
    Ok(job.predictions_dir.join(format!("{}-{}-{repetition}.npy", job.job_id, job.language)))
}
