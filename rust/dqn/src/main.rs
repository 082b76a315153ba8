//! DQN's Rust twins of python/tasks/rl/dqn.py on tch and candle. `dqn --config JOB.yaml --out
//! RECORDS.jsonl` is the `dqn` task's Rust side (the harness contract: bench-core's `train_agent`
//! protocol, agent.rs). `dqn update` applies DQN updates on tch or candle (`--framework`) from
//! shared initial weights and batches, for the update parity test against PyTorch
//! (tests/test_dqn_update.py): it reads `--weights` (safetensors, PyTorch's names) and the batches
//! `batch-K-{obs,actions,rewards,next_obs,dones}.npy` of `--batches` for K = 0, 1, ...; refreshes
//! the target network every `--target-update-freq` updates; writes `weights.safetensors` (the
//! online network after the last update) and `losses.npy` into `--out`. `dqn epsilon` writes an
//! exploration schedule's values, for the schedule parity test.
mod agent;
mod candle_learner;
mod candle_rainbow;
mod learner;
mod rainbow;

use std::path::{Path, PathBuf};

use bench_core::agents::AgentInfo;
use bench_core::error::{BenchError, Result};
use bench_core::exploration;
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
        /// tch (libtorch) or candle.
        #[arg(long, default_value = "tch")]
        framework: String,
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
    /// Write an exploration schedule's values (float64 .npy): multiplicative, before each of
    /// `--advances` advances and after the last; linear, at steps 0..=total_steps.
    Epsilon {
        /// multiplicative or linear.
        #[arg(long)]
        schedule: String,
        #[arg(long)]
        start: f64,
        #[arg(long)]
        end: f64,
        #[arg(long, default_value_t = 0.995)]
        decay: f64,
        #[arg(long, default_value_t = 1000)]
        advances: usize,
        #[arg(long, default_value_t = 0.1)]
        fraction: f64,
        #[arg(long, default_value_t = 1000)]
        total_steps: u64,
        #[arg(long)]
        out: PathBuf,
    },
}

fn schedule(command: &Command) -> Result<()> {
    let Command::Epsilon { schedule, start, end, decay, advances, fraction, total_steps, out } = command
    else {
        unreachable!("called for `dqn epsilon` only")
    };
    let values: Vec<f64> = match schedule.as_str() {
        "multiplicative" => {
            let mut epsilon = exploration::MultiplicativeEpsilon::new(*start, *end, *decay);
            let mut values = vec![epsilon.value];
            for _ in 0..*advances {
                epsilon.advance();
                values.push(epsilon.value);
            }
            values
        }
        "linear" => {
            if *total_steps == 0 || *fraction <= 0.0 {
                return Err(BenchError::usage("--total-steps and --fraction: must be positive"));
            }
            (0..=*total_steps)
                .map(|step| exploration::linear_epsilon(*start, *end, *fraction, step, *total_steps))
                .collect()
        }
        other => {
            return Err(BenchError::usage(format!("--schedule: {other:?} (known: multiplicative, linear)")))
        }
    };
    Tensor::from_slice(&values).write_npy(out).map_err(learner::tch_error)
}

fn read(path: &Path) -> Result<Tensor> {
    Tensor::read_npy(path)
        .map_err(|e| BenchError::usage(format!("{}: cannot read .npy: {e}", path.display())))
}

fn read_candle(path: &Path) -> Result<candle_core::Tensor> {
    candle_core::Tensor::read_npy(path)
        .map_err(|e| BenchError::usage(format!("{}: cannot read .npy: {e}", path.display())))
}

/// The path of field `name` of batch k.
fn batch_file(folder: &Path, k: usize, name: &str) -> PathBuf {
    folder.join(format!("batch-{k}-{name}.npy"))
}

fn tch_batch(folder: &Path, k: usize) -> Result<Batch> {
    let file = |name: &str| batch_file(folder, k, name);
    Ok(Batch {
        obs: read(&file("obs"))?.to_kind(Kind::Float),
        actions: read(&file("actions"))?.to_kind(Kind::Int64),
        rewards: read(&file("rewards"))?.to_kind(Kind::Float),
        next_obs: read(&file("next_obs"))?.to_kind(Kind::Float),
        dones: read(&file("dones"))?.to_kind(Kind::Float),
    })
}

fn candle_batch(folder: &Path, k: usize) -> Result<candle_learner::Batch> {
    use candle_core::DType;
    let file = |name: &str| batch_file(folder, k, name);
    let cast = |t: candle_core::Tensor, dtype| t.to_dtype(dtype).map_err(candle_learner::candle_error);
    Ok(candle_learner::Batch {
        obs: cast(read_candle(&file("obs"))?, DType::F32)?,
        actions: cast(read_candle(&file("actions"))?, DType::I64)?,
        rewards: cast(read_candle(&file("rewards"))?, DType::F32)?,
        next_obs: cast(read_candle(&file("next_obs"))?, DType::F32)?,
        dones: cast(read_candle(&file("dones"))?, DType::F32)?,
    })
}

/// The learner of the chosen framework.
enum Arm {
    Tch(Learner),
    Candle(candle_learner::Learner),
}

impl Arm {
    fn update(&mut self, folder: &Path, k: usize) -> Result<f64> {
        match self {
            Arm::Tch(learner) => Ok(learner.update(&tch_batch(folder, k)?)),
            Arm::Candle(learner) => learner.update(&candle_batch(folder, k)?),
        }
    }

    fn sync_target(&mut self) -> Result<()> {
        match self {
            Arm::Tch(learner) => learner.sync_target(),
            Arm::Candle(learner) => learner.sync_target(),
        }
    }

    fn save(&self, path: &Path) -> Result<()> {
        match self {
            Arm::Tch(learner) => learner.save(path),
            Arm::Candle(learner) => learner.save(path),
        }
    }
}

fn update(command: &Command) -> Result<()> {
    let Command::Update {
        framework,
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
    } = command
    else {
        unreachable!("called for `dqn update` only")
    };
    if *target_update_freq == 0 {
        return Err(BenchError::usage("--target-update-freq: must be at least 1"));
    }
    if !batch_file(batches, 0, "obs").is_file() {
        return Err(BenchError::usage(format!("--batches: no batch-0-obs.npy in {}", batches.display())));
    }
    let params = LearnerParams {
        gamma: *gamma,
        learning_rate: *learning_rate,
        double: *double,
        dueling: *dueling,
        max_grad_norm: *max_grad_norm,
        hidden: hidden.clone(),
    };
    let mut arm = match framework.as_str() {
        "tch" => {
            tch::set_num_threads(1);
            Arm::Tch(Learner::new(*observations, *actions, params, weights)?)
        }
        "candle" => {
            // candle's CPU kernels size their pools from RAYON_NUM_THREADS: one thread, as tch's.
            std::env::set_var("RAYON_NUM_THREADS", "1");
            Arm::Candle(candle_learner::Learner::new(
                *observations as usize,
                *actions as usize,
                params,
                weights,
            )?)
        }
        other => return Err(BenchError::usage(format!("--framework: {other:?} (known: tch, candle)"))),
    };
    let mut losses = Vec::new();
    while batch_file(batches, losses.len(), "obs").is_file() {
        losses.push(arm.update(batches, losses.len())?);
        if losses.len() % target_update_freq == 0 {
            arm.sync_target()?;
        }
    }
    std::fs::create_dir_all(out).map_err(|e| BenchError::usage(format!("--out: {}: {e}", out.display())))?;
    arm.save(&out.join("weights.safetensors"))?;
    Tensor::from_slice(&losses).write_npy(out.join("losses.npy")).map_err(learner::tch_error)
}

/// The Rust side of the `dqn` task (against PyTorch) and of `dqn_library` (against stable-baselines3).
const TASK: AgentInfo = AgentInfo {
    frameworks: &[("tch", env!("MLBENCH_VERSION_TCH")), ("candle", env!("MLBENCH_VERSION_CANDLE_CORE"))],
    build: agent::build,
    make_env: |name| rl_envs::make(name).map(|env| Box::new(env) as Box<dyn bench_core::agents::Environment>),
    describe: agent::describe,
    specs: &[
        include_str!("../../../configs/tasks/dqn.yaml"),
        include_str!("../../../configs/tasks/dqn_library.yaml"),
        include_str!("../../../configs/tasks/dqn_torchrl.yaml"),
    ],
};

fn main() {
    if !matches!(std::env::args().nth(1).as_deref(), Some("update" | "epsilon")) {
        bench_core::agents::main_agent(TASK);
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Update { .. } => update(&cli.command),
        Command::Epsilon { .. } => schedule(&cli.command),
    };
    if let Err(err) = result {
        eprintln!("error: {}", bench_core::error::one_line(&err.to_string()));
        std::process::exit(err.exit_code());
    }
}
