//! The `train_agent` protocol's agents (bench-core's agents.rs) on the two learners: the protocol's
//! batches (row-major vectors) become tch or candle tensors, as PyTorch's agent turns numpy rows
//! into torch tensors (python/tasks/rl/dqn.py `TorchAgent`).
use std::path::Path;

use bench_core::agents::{Agent, AgentParams, Batch};
use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use tch::Tensor;

use crate::candle_learner::{self, candle_error};
use crate::learner::{Learner, LearnerParams};

/// The learner's settings of a job's algorithm: `ddqn` double targets, `dueling_dqn` the dueling
/// network with double targets (python/tasks/rl/dqn.py `ALGORITHMS`).
fn learner_params(job: &Job, params: &AgentParams) -> Result<LearnerParams> {
    let (double, dueling) = match job.algorithm.as_str() {
        "dqn" => (false, false),
        "ddqn" => (true, false),
        "dueling_dqn" => (true, true),
        "prioritized_dqn" => (true, false), // the replay is the protocol's (agents.rs)
        other => return Err(BenchError::usage(format!("algorithm: {other:?} is not implemented in Rust"))),
    };
    Ok(LearnerParams {
        gamma: params.gamma,
        learning_rate: params.learning_rate,
        double,
        dueling,
        max_grad_norm: params.max_grad_norm,
        hidden: params.hidden(),
    })
}

struct TchAgent(Learner);

impl Agent for TchAgent {
    fn greedy(&mut self, observation: &[f32]) -> Result<usize> {
        self.0.greedy(observation)
    }

    fn update(&mut self, batch: &Batch) -> Result<(f64, Vec<f32>)> {
        let (n, d) = (batch.size as i64, batch.observations as i64);
        let tensors = crate::learner::Batch {
            obs: Tensor::from_slice(&batch.obs).view([n, d]),
            actions: Tensor::from_slice(&batch.actions),
            rewards: Tensor::from_slice(&batch.rewards),
            next_obs: Tensor::from_slice(&batch.next_obs).view([n, d]),
            dones: Tensor::from_slice(&batch.dones),
        };
        if batch.weights.is_empty() {
            return Ok((self.0.update(&tensors), Vec::new()));
        }
        self.0.update_weighted(&tensors, &Tensor::from_slice(&batch.weights))
    }

    fn sync_target(&mut self) -> Result<()> {
        self.0.sync_target()
    }
}

struct CandleAgent(candle_learner::Learner);

impl Agent for CandleAgent {
    fn greedy(&mut self, observation: &[f32]) -> Result<usize> {
        self.0.greedy(observation)
    }

    fn update(&mut self, batch: &Batch) -> Result<(f64, Vec<f32>)> {
        use candle_core::{Device, Tensor};
        let (n, d) = (batch.size, batch.observations);
        let tensors = (|| {
            Ok::<_, candle_core::Error>(candle_learner::Batch {
                obs: Tensor::from_slice(&batch.obs, (n, d), &Device::Cpu)?,
                actions: Tensor::from_slice(&batch.actions, n, &Device::Cpu)?,
                rewards: Tensor::from_slice(&batch.rewards, n, &Device::Cpu)?,
                next_obs: Tensor::from_slice(&batch.next_obs, (n, d), &Device::Cpu)?,
                dones: Tensor::from_slice(&batch.dones, n, &Device::Cpu)?,
            })
        })()
        .map_err(candle_error)?;
        if batch.weights.is_empty() {
            return Ok((self.0.update(&tensors)?, Vec::new()));
        }
        let weights = Tensor::from_slice(&batch.weights, n, &Device::Cpu).map_err(candle_error)?;
        self.0.update_weighted(&tensors, &weights)
    }

    fn sync_target(&mut self) -> Result<()> {
        self.0.sync_target()
    }
}

/// The job's framework's agent from the shared initial weights, on the job's threads.
pub fn build(
    job: &Job,
    params: &AgentParams,
    observations: usize,
    actions: usize,
    weights: &Path,
) -> Result<Box<dyn Agent>> {
    let learner = learner_params(job, params)?;
    rl_twins::on_framework(
        job,
        || {
            let learner = Learner::new(observations as i64, actions as i64, learner.clone(), weights)?;
            Ok(Box::new(TchAgent(learner)) as Box<dyn Agent>)
        },
        || {
            let learner = candle_learner::Learner::new(observations, actions, learner.clone(), weights)?;
            Ok(Box::new(CandleAgent(learner)) as Box<dyn Agent>)
        },
    )
}

/// The solver's name (the record's `solver.name`).
pub fn describe(job: &Job) -> String {
    let name = match job.algorithm.as_str() {
        "ddqn" => "double DQN",
        "dueling_dqn" => "dueling double DQN",
        "prioritized_dqn" => "prioritized double DQN",
        _ => "DQN",
    };
    format!("{name} ({}, Adam, Huber loss, hard target sync)", job.framework)
}
