//! A2C's learners as the protocol's agents (rust/rl-twins's agent.rs turns the rollout into
//! tch or candle tensors).
use std::path::Path;

use bench_core::config::Job;
use bench_core::error::Result;
use bench_core::policy::{ActorCriticAgent, ActorCriticParams};
use rl_twins::agent::{self, CandleLearner, CandleRollout, TchLearner, TchRollout};
use rl_twins::{candle_net, tch_net};

use crate::candle_learner;
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

impl TchLearner for Learner {
    fn net(&self) -> &tch_net::ActorCritic {
        &self.net
    }

    fn update(&mut self, rollout: &TchRollout) -> Result<f64> {
        Ok(Learner::update(self, &rollout.obs, &rollout.actions, &rollout.returns, &rollout.advantages))
    }
}

impl CandleLearner for candle_learner::Learner {
    fn net(&self) -> &candle_net::ActorCritic {
        &self.net
    }

    fn update(&mut self, rollout: &CandleRollout) -> Result<f64> {
        candle_learner::Learner::update(
            self,
            &rollout.obs,
            &rollout.actions,
            &rollout.returns,
            &rollout.advantages,
        )
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
    agent::build(
        job,
        || Learner::new(observations as i64, actions as i64, learner_params(params), weights),
        || candle_learner::Learner::new(observations, actions, learner_params(params), weights),
    )
}

/// The solver's name (the record's `solver.name`).
pub fn describe(job: &Job) -> String {
    let (n_steps, lambda) =
        job.params::<ActorCriticParams>().map(|p| (p.n_steps, p.gae_lambda)).unwrap_or((5, 1.0));
    format!("A2C ({}, RMSprop, {n_steps}-step rollouts, GAE lambda {lambda})", job.framework)
}
