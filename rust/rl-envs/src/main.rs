//! The ported environments' program. `rl-envs --config JOB.yaml --out RECORDS.jsonl` is the
//! `env_steps` task's Rust side (the harness contract; steps.rs). `rl-envs replay` steps a ported
//! environment through a shared action sequence, for the parity test against gymnasium
//! (tests/test_rl_envs.py). Episode k starts from row k of the start
//! states; a new episode begins after a step that terminated or reached the time limit.
//! Writes `states.npy` (steps x state_dim, float64: the internal state after each step),
//! `observations.npy` (float32), `rewards.npy`, `terminated.npy` and `truncated.npy`.
mod steps;

use std::path::{Path, PathBuf};

use bench_core::error::{BenchError, Result};
use clap::{Parser, Subcommand};
use ndarray::{Array1, Array2};
use ndarray_npy::{read_npy, write_npy};

#[derive(Debug, Parser)]
#[command(about = "Ported classic-control environments (gymnasium 1.4), step-exact.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay an action sequence from given start states and write the trajectory.
    Replay {
        /// CartPole-v1 or Acrobot-v1.
        #[arg(long)]
        env: String,
        /// Start states, one row per episode (float64 .npy, episodes x state_dim).
        #[arg(long)]
        starts: PathBuf,
        /// Actions, one per step (int64 .npy).
        #[arg(long)]
        actions: PathBuf,
        /// Folder to write the trajectory into.
        #[arg(long)]
        out: PathBuf,
    },
}

fn read<T: ndarray_npy::ReadableElement, D: ndarray::Dimension>(path: &Path) -> Result<ndarray::Array<T, D>> {
    read_npy(path).map_err(|e| BenchError::usage(format!("{}: cannot read .npy: {e}", path.display())))
}

fn replay(env_name: &str, starts: &Path, actions: &Path, out: &Path) -> Result<()> {
    let mut env = rl_envs::make(env_name).ok_or_else(|| {
        BenchError::usage(format!(
            "--env: unknown environment {env_name:?} (known: {})",
            rl_envs::NAMES.join(", ")
        ))
    })?;
    let starts: Array2<f64> = read(starts)?;
    let actions: Array1<i64> = read(actions)?;
    if starts.ncols() != env.state_dim() {
        return Err(BenchError::usage(format!(
            "--starts: the start states have {} columns, {} has a state of {}",
            starts.ncols(),
            env.id(),
            env.state_dim()
        )));
    }
    if let Some(bad) = actions.iter().find(|&&a| a < 0 || a as usize >= env.n_actions()) {
        return Err(BenchError::usage(format!(
            "--actions: action {bad} is outside 0..{} of {}",
            env.n_actions() - 1,
            env.id()
        )));
    }
    let n = actions.len();
    let dim = env.state_dim();
    let (mut states, mut observations) = (Array2::<f64>::zeros((n, dim)), Vec::with_capacity(n));
    let (mut rewards, mut terminated, mut truncated) = (Vec::new(), Vec::new(), Vec::new());
    if starts.nrows() == 0 {
        return Err(BenchError::usage("--starts: no start states"));
    }
    let mut episode = 0;
    env.reset_to(&starts.row(0).to_vec());
    for (t, &action) in actions.iter().enumerate() {
        let step = env.step(action as usize);
        states.row_mut(t).assign(&ndarray::ArrayView1::from(env.state()));
        observations.push(step.observation);
        rewards.push(step.reward);
        terminated.push(i64::from(step.terminated));
        truncated.push(i64::from(step.truncated));
        if (step.terminated || step.truncated) && t + 1 < n {
            episode += 1;
            if episode >= starts.nrows() {
                return Err(BenchError::usage(format!(
                    "--starts: {} start states run out at step {} (episode {})",
                    starts.nrows(),
                    t + 1,
                    episode + 1
                )));
            }
            env.reset_to(&starts.row(episode).to_vec());
        }
    }
    std::fs::create_dir_all(out).map_err(|e| BenchError::usage(format!("--out: {}: {e}", out.display())))?;
    let obs_dim = observations.first().map_or(0, Vec::len);
    let observations = Array2::from_shape_vec((n, obs_dim), observations.concat())
        .map_err(|e| BenchError::run(format!("observations: {e}")))?;
    let write = |name: &str, result: std::result::Result<(), ndarray_npy::WriteNpyError>| {
        result.map_err(|e| BenchError::run(format!("{}: {e}", out.join(name).display())))
    };
    write("states.npy", write_npy(out.join("states.npy"), &states))?;
    write("observations.npy", write_npy(out.join("observations.npy"), &observations))?;
    write("rewards.npy", write_npy(out.join("rewards.npy"), &Array1::from(rewards)))?;
    write("terminated.npy", write_npy(out.join("terminated.npy"), &Array1::from(terminated)))?;
    write("truncated.npy", write_npy(out.join("truncated.npy"), &Array1::from(truncated)))
}

/// The `env_steps` task's Rust side.
const TASK: bench_core::stepping::SteppingInfo = bench_core::stepping::SteppingInfo {
    frameworks: &[("rl-envs", env!("CARGO_PKG_VERSION"))],
    start: steps::start,
    describe: steps::describe,
    spec: include_str!("../../../configs/tasks/env_steps.yaml"),
};

fn main() {
    if std::env::args().nth(1).as_deref() != Some("replay") {
        bench_core::stepping::main_stepping(TASK);
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Replay { env, starts, actions, out } => replay(env, starts, actions, out),
    };
    if let Err(err) = result {
        eprintln!("error: {}", bench_core::error::one_line(&err.to_string()));
        std::process::exit(err.exit_code());
    }
}
