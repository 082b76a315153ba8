//! PPO's learners as the protocol's agents (rust/rl-twins's agent.rs turns the rollout and its
//! shuffles into tch or candle tensors).
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::Result;
use bench_core::policy::{Ppo, PpoParams};
use rl_twins::agent::{self, CandleLearner, CandleRollout, TchLearner, TchRollout};
use rl_twins::{candle_net, tch_net};

use crate::candle_learner;
use crate::learner::Learner;

impl TchLearner for Learner {
    fn net(&self) -> &tch_net::ActorCritic {
        &self.net
    }

    fn update(&mut self, rollout: &TchRollout) -> Result<f64> {
        Learner::update(self, rollout)
    }
}

impl CandleLearner for candle_learner::Learner {
    fn net(&self) -> &candle_net::ActorCritic {
        &self.net
    }

    fn update(&mut self, rollout: &CandleRollout) -> Result<f64> {
        candle_learner::Learner::update(self, rollout)
    }
}

/// The job's framework's agent from the shared initial weights, on the job's threads.
pub fn build(
    job: &Job,
    params: &PpoParams,
    observations: usize,
    actions: usize,
    weights: &Path,
) -> Result<Ppo> {
    agent::build(
        job,
        || Learner::new(observations as i64, actions as i64, params.clone(), weights),
        || candle_learner::Learner::new(observations, actions, params.clone(), weights),
    )
    .map(Ppo)
}

/// The solver's name (the record's `solver.name`).
pub fn describe(job: &Job) -> String {
    match job.params::<PpoParams>() {
        Ok(p) => format!(
            "PPO ({}, Adam, {}-step rollouts, {} epochs of {}-row minibatches, clip {})",
            job.framework, p.n_steps, p.n_epochs, p.batch_size, p.clip_range
        ),
        Err(_) => format!("PPO ({})", job.framework),
    }
}
