//! The `train_agent` protocol's agents (bench-core's agents.rs) on the two learners: the protocol's
//! batches (row-major vectors) become tch or candle tensors, as PyTorch's agent turns numpy rows
//! into torch tensors (python/tasks/rl/dqn.py `TorchAgent`).
use std::path::Path;

use bench_core::agents::{Agent, AgentParams, Batch};
use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use tch::Tensor;

use crate::candle_learner::{self, candle_error};
use crate::candle_rainbow;
use crate::learner::{Learner, LearnerParams};
use crate::rainbow::{RainbowLearner, RainbowParams};

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

/// Rainbow's settings of a job (python/tasks/rl/dqn.py `rainbow_params`).
fn rainbow_params(params: &AgentParams) -> Result<RainbowParams> {
    let missing = |name: &str| BenchError::usage(format!("hyperparameters.{name}: Rainbow needs it"));
    Ok(RainbowParams {
        learning_rate: params.learning_rate,
        max_grad_norm: params.max_grad_norm,
        hidden: params.hidden(),
        atoms: params.atoms.ok_or_else(|| missing("atoms"))? as i64,
        v_min: params.v_min.ok_or_else(|| missing("v_min"))?,
        v_max: params.v_max.ok_or_else(|| missing("v_max"))?,
    })
}

/// The protocol's batch as tch tensors (`size` x `observations` observations).
fn tch_rainbow_batch(batch: &Batch) -> crate::rainbow::Batch {
    let (n, d) = (batch.size as i64, batch.observations as i64);
    crate::rainbow::Batch {
        obs: Tensor::from_slice(&batch.obs).view([n, d]),
        actions: Tensor::from_slice(&batch.actions),
        rewards: Tensor::from_slice(&batch.rewards),
        next_obs: Tensor::from_slice(&batch.next_obs).view([n, d]),
        dones: Tensor::from_slice(&batch.dones),
        discounts: Tensor::from_slice(&batch.discounts),
    }
}

struct TchRainbow(RainbowLearner);

impl Agent for TchRainbow {
    fn greedy(&mut self, observation: &[f32]) -> Result<usize> {
        self.0.greedy(observation)
    }

    fn update(&mut self, batch: &Batch) -> Result<(f64, Vec<f32>)> {
        self.0.update_weighted(&tch_rainbow_batch(batch), &Tensor::from_slice(&batch.weights))
    }

    fn sync_target(&mut self) -> Result<()> {
        self.0.sync_target()
    }

    fn reset_noise(&mut self, noise: &[f32]) -> Result<()> {
        self.0.set_noise(noise)
    }
}

struct CandleRainbow(candle_rainbow::RainbowLearner);

impl Agent for CandleRainbow {
    fn greedy(&mut self, observation: &[f32]) -> Result<usize> {
        self.0.greedy(observation)
    }

    fn update(&mut self, batch: &Batch) -> Result<(f64, Vec<f32>)> {
        use candle_core::{Device, Tensor};
        let (n, d) = (batch.size, batch.observations);
        let (tensors, weights) = (|| {
            let tensors = candle_rainbow::Batch {
                obs: Tensor::from_slice(&batch.obs, (n, d), &Device::Cpu)?,
                actions: Tensor::from_slice(&batch.actions, n, &Device::Cpu)?,
                rewards: Tensor::from_slice(&batch.rewards, n, &Device::Cpu)?,
                next_obs: Tensor::from_slice(&batch.next_obs, (n, d), &Device::Cpu)?,
                dones: Tensor::from_slice(&batch.dones, n, &Device::Cpu)?,
                discounts: Tensor::from_slice(&batch.discounts, n, &Device::Cpu)?,
            };
            Ok::<_, candle_core::Error>((tensors, Tensor::from_slice(&batch.weights, n, &Device::Cpu)?))
        })()
        .map_err(candle_error)?;
        self.0.update_weighted(&tensors, &weights)
    }

    fn sync_target(&mut self) -> Result<()> {
        self.0.sync_target()
    }

    fn reset_noise(&mut self, noise: &[f32]) -> Result<()> {
        self.0.set_noise(noise)
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
    if job.algorithm == "rainbow_dqn" {
        let rainbow = rainbow_params(params)?;
        return rl_twins::on_framework(
            job,
            || {
                let learner =
                    RainbowLearner::new(observations as i64, actions as i64, rainbow.clone(), weights)?;
                Ok(Box::new(TchRainbow(learner)) as Box<dyn Agent>)
            },
            || {
                let learner =
                    candle_rainbow::RainbowLearner::new(observations, actions, rainbow.clone(), weights)?;
                Ok(Box::new(CandleRainbow(learner)) as Box<dyn Agent>)
            },
        );
    }
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
        "rainbow_dqn" => {
            return format!(
                "Rainbow DQN ({}, Adam, distributional cross-entropy, hard target sync)",
                job.framework
            )
        }
        _ => "DQN",
    };
    format!("{name} ({}, Adam, Huber loss, hard target sync)", job.framework)
}
