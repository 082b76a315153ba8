//! The `rollouts` loop's agents (bench-core's policy.rs) on the two learners: the protocol's rollout
//! (row-major vectors) becomes tch or candle tensors, as PyTorch's agent turns numpy rows into torch
//! tensors (python/tasks/rl/a2c.py `TorchAgent`).
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
use bench_core::policy::{ActorCriticAgent, ActorCriticParams, Rollout};
use tch::Tensor;

use crate::candle_learner::{self, candle_error};
use crate::learner::{Learner, LearnerParams};

fn learner_params(params: &ActorCriticParams) -> LearnerParams {
    LearnerParams {
        learning_rate: params.learning_rate,
        vf_coef: params.vf_coef,
        ent_coef: params.ent_coef,
        max_grad_norm: params.max_grad_norm,
        rms_alpha: params.rms_alpha,
        rms_eps: params.rms_eps,
        hidden: params.hidden(),
    }
}

struct TchAgent(Learner);

impl ActorCriticAgent for TchAgent {
    fn act(&mut self, observation: &[f32]) -> Result<(Vec<f32>, f32)> {
        self.0.act(observation)
    }

    fn values(&mut self, observations: &[f32], rows: usize) -> Result<Vec<f32>> {
        self.0.values(observations, rows)
    }

    fn update(&mut self, rollout: &Rollout) -> Result<f64> {
        let (n, d) = (rollout.steps as i64, rollout.observations as i64);
        Ok(self.0.update(
            &Tensor::from_slice(&rollout.obs).view([n, d]),
            &Tensor::from_slice(&rollout.actions),
            &Tensor::from_slice(&rollout.returns),
            &Tensor::from_slice(&rollout.advantages),
        ))
    }
}

struct CandleAgent(candle_learner::Learner);

impl ActorCriticAgent for CandleAgent {
    fn act(&mut self, observation: &[f32]) -> Result<(Vec<f32>, f32)> {
        self.0.act(observation)
    }

    fn values(&mut self, observations: &[f32], rows: usize) -> Result<Vec<f32>> {
        self.0.values(observations, rows)
    }

    fn update(&mut self, rollout: &Rollout) -> Result<f64> {
        use candle_core::{Device, Tensor};
        let (n, d) = (rollout.steps, rollout.observations);
        let (obs, actions, returns, advantages) = (|| {
            Ok::<_, candle_core::Error>((
                Tensor::from_slice(&rollout.obs, (n, d), &Device::Cpu)?,
                Tensor::from_slice(&rollout.actions, n, &Device::Cpu)?,
                Tensor::from_slice(&rollout.returns, n, &Device::Cpu)?,
                Tensor::from_slice(&rollout.advantages, n, &Device::Cpu)?,
            ))
        })()
        .map_err(candle_error)?;
        self.0.update(&obs, &actions, &returns, &advantages)
    }
}

/// The job's framework's agent from the shared initial weights, on the job's threads.
pub fn build(
    job: &Job,
    params: &ActorCriticParams,
    observations: usize,
    actions: usize,
    weights: &Path,
) -> Result<Box<dyn ActorCriticAgent>> {
    let learner = learner_params(params);
    let fixtures = |err: BenchError| match err {
        BenchError::Usage(message) => BenchError::usage(format!("fixtures_dir: {message}")),
        other => other,
    };
    match job.framework.as_str() {
        "tch" => {
            tch::set_num_threads(job.threads as i32);
            let learner =
                Learner::new(observations as i64, actions as i64, learner, weights).map_err(fixtures)?;
            Ok(Box::new(TchAgent(learner)))
        }
        "candle" => {
            // candle's CPU kernels size their pools from RAYON_NUM_THREADS; a task started by hand obeys too.
            std::env::set_var("RAYON_NUM_THREADS", job.threads.to_string());
            let learner =
                candle_learner::Learner::new(observations, actions, learner, weights).map_err(fixtures)?;
            Ok(Box::new(CandleAgent(learner)))
        }
        other => Err(BenchError::usage(format!("framework: {other:?} is not in this binary"))),
    }
}

/// The solver's name (the record's `solver.name`).
pub fn describe(job: &Job) -> String {
    let (n_steps, lambda) =
        job.params::<ActorCriticParams>().map(|p| (p.n_steps, p.gae_lambda)).unwrap_or((5, 1.0));
    format!("A2C ({}, RMSprop, {n_steps}-step rollouts, GAE lambda {lambda})", job.framework)
}
