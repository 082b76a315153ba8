//! The on-policy loop's agents (bench-core's policy.rs) on the two learners: the protocol's episode
//! (row-major vectors) becomes tch or candle tensors, as PyTorch's agent turns numpy rows into torch
//! tensors (python/tasks/rl/reinforce.py `TorchAgent`).
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::{BenchError, Result};
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
    let standardised = job.params::<PolicyParams>().map(|p| p.normalize_returns).unwrap_or(true);
    format!(
        "REINFORCE ({}, Adam, returns-to-go{}, no baseline)",
        job.framework,
        if standardised { ", standardised" } else { "" }
    )
}
