//! The on-policy loop's agents (bench-core's policy.rs) on the two learners: the protocol's episode
//! (row-major vectors) becomes tch or candle tensors, as PyTorch's agent turns numpy rows into torch
//! tensors (python/tasks/rl/reinforce.py `TorchAgent`).
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::Result;
use bench_core::policy::{Episode, PolicyAgent, PolicyParams};
use tch::Tensor;

use crate::candle_learner::{self, candle_error};
use crate::learner::{Learner, LearnerParams};

fn learner_params(params: &PolicyParams) -> LearnerParams {
    LearnerParams {
        learning_rate: params.learning_rate,
        max_grad_norm: params.max_grad_norm,
        hidden: params.hidden(),
    }
}

struct TchAgent(Learner);

impl PolicyAgent for TchAgent {
    fn probabilities(&mut self, observation: &[f32]) -> Result<Vec<f32>> {
        self.0.probabilities(observation)
    }

    fn update(&mut self, episode: &Episode) -> Result<f64> {
        let (n, d) = (episode.steps as i64, episode.observations as i64);
        Ok(self.0.update(
            &Tensor::from_slice(&episode.obs).view([n, d]),
            &Tensor::from_slice(&episode.actions),
            &Tensor::from_slice(&episode.weights),
        ))
    }
}

struct CandleAgent(candle_learner::Learner);

impl PolicyAgent for CandleAgent {
    fn probabilities(&mut self, observation: &[f32]) -> Result<Vec<f32>> {
        self.0.probabilities(observation)
    }

    fn update(&mut self, episode: &Episode) -> Result<f64> {
        use candle_core::{Device, Tensor};
        let (n, d) = (episode.steps, episode.observations);
        let (obs, actions, weights) = (|| {
            Ok::<_, candle_core::Error>((
                Tensor::from_slice(&episode.obs, (n, d), &Device::Cpu)?,
                Tensor::from_slice(&episode.actions, n, &Device::Cpu)?,
                Tensor::from_slice(&episode.weights, n, &Device::Cpu)?,
            ))
        })()
        .map_err(candle_error)?;
        self.0.update(&obs, &actions, &weights)
    }
}

/// The job's framework's agent from the shared initial weights, on the job's threads.
pub fn build(
    job: &Job,
    params: &PolicyParams,
    observations: usize,
    actions: usize,
    weights: &Path,
) -> Result<Box<dyn PolicyAgent>> {
    let learner = learner_params(params);
    rl_twins::on_framework(
        job,
        || {
            let learner = Learner::new(observations as i64, actions as i64, learner.clone(), weights)?;
            Ok(Box::new(TchAgent(learner)) as Box<dyn PolicyAgent>)
        },
        || {
            let learner = candle_learner::Learner::new(observations, actions, learner.clone(), weights)?;
            Ok(Box::new(CandleAgent(learner)) as Box<dyn PolicyAgent>)
        },
    )
}

/// The solver's name (the record's `solver.name`).
pub fn describe(job: &Job) -> String {
    let standardised = job.params::<PolicyParams>().map(|p| p.normalize_returns).unwrap_or(true);
    format!(
        "REINFORCE ({}, Adam, returns-to-go{}, no baseline)",
        job.framework,
        if standardised { ", standardised" } else { "" }
    )
}
