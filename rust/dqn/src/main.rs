//! `dqn update`: DQN updates on tch from shared initial weights and batches, for the update parity
//! test against PyTorch (tests/test_dqn_update.py). The training task (acting, replay, epsilon
//! schedule) is not built yet. Reads `--weights` (safetensors, PyTorch's names) and the batches
//! `batch-K-{obs,actions,rewards,next_obs,dones}.npy` of `--batches` for K = 0, 1, ...; refreshes
//! the target network every `--target-update-freq` updates; writes `weights.safetensors` (the
//! online network after the last update) and `losses.npy` into `--out`.
mod learner;

use std::path::{Path, PathBuf};

use bench_core::error::{BenchError, Result};
use clap::{Parser, Subcommand};
use learner::{Batch, Learner, LearnerParams};
use tch::{Kind, Tensor};

#[derive(Debug, Parser)]
#[command(about = "DQN's learner on tch (the Rust twin of python/tasks/rl/dqn.py).")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the updates of a folder of batches to shared initial weights.
    Update {
        #[arg(long)]
        weights: PathBuf,
        #[arg(long)]
        batches: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Observation size and number of actions.
        #[arg(long)]
        observations: i64,
        #[arg(long)]
        actions: i64,
        /// Hidden layer sizes, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "64,64")]
        hidden: Vec<i64>,
        #[arg(long, default_value_t = 0.99)]
        gamma: f64,
        #[arg(long, default_value_t = 1e-3)]
        learning_rate: f64,
        #[arg(long)]
        double: bool,
        #[arg(long)]
        dueling: bool,
        #[arg(long, default_value_t = 10.0)]
        max_grad_norm: f64,
        #[arg(long, default_value_t = 1)]
        target_update_freq: usize,
    },
}

fn read(path: &Path) -> Result<Tensor> {
    Tensor::read_npy(path)
        .map_err(|e| BenchError::usage(format!("{}: cannot read .npy: {e}", path.display())))
}

fn batch(folder: &Path, k: usize) -> Result<Option<Batch>> {
    let file = |name: &str| folder.join(format!("batch-{k}-{name}.npy"));
    if !file("obs").is_file() {
        return Ok(None);
    }
    Ok(Some(Batch {
        obs: read(&file("obs"))?.to_kind(Kind::Float),
        actions: read(&file("actions"))?.to_kind(Kind::Int64),
        rewards: read(&file("rewards"))?.to_kind(Kind::Float),
        next_obs: read(&file("next_obs"))?.to_kind(Kind::Float),
        dones: read(&file("dones"))?.to_kind(Kind::Float),
    }))
}

fn update(command: &Command) -> Result<()> {
    let Command::Update {
        weights,
        batches,
        out,
        observations,
        actions,
        hidden,
        gamma,
        learning_rate,
        double,
        dueling,
        max_grad_norm,
        target_update_freq,
    } = command;
    if *target_update_freq == 0 {
        return Err(BenchError::usage("--target-update-freq: must be at least 1"));
    }
    tch::set_num_threads(1);
    let params = LearnerParams {
        gamma: *gamma,
        learning_rate: *learning_rate,
        double: *double,
        dueling: *dueling,
        max_grad_norm: *max_grad_norm,
        hidden: hidden.clone(),
    };
    let mut learner = Learner::new(*observations, *actions, params, weights)?;
    let mut losses = Vec::new();
    while let Some(batch) = batch(batches, losses.len())? {
        losses.push(learner.update(&batch));
        if losses.len() % target_update_freq == 0 {
            learner.sync_target()?;
        }
    }
    if losses.is_empty() {
        return Err(BenchError::usage(format!("--batches: no batch-0-obs.npy in {}", batches.display())));
    }
    std::fs::create_dir_all(out).map_err(|e| BenchError::usage(format!("--out: {}: {e}", out.display())))?;
    learner.save(&out.join("weights.safetensors"))?;
    Tensor::from_slice(&losses).write_npy(out.join("losses.npy")).map_err(learner::tch_error)
}

fn main() {
    let cli = Cli::parse();
    if let Err(err) = update(&cli.command) {
        eprintln!("error: {}", bench_core::error::one_line(&err.to_string()));
        std::process::exit(err.exit_code());
    }
}
