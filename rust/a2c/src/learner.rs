//! A2C's update on tch, line by line the twin of python/tasks/rl/a2c.py (read its docstring): the
//! shared actor-critic (rust/rl-twins), the same loss, libtorch's RMSprop and global-norm
//! clipping.
use std::path::Path;

use bench_core::error::Result;
use rl_twins::tch_net::{tch_error, ActorCritic};
use tch::nn::OptimizerConfig;
use tch::{nn, Kind, Tensor};

/// The update's settings (python/tasks/rl/a2c.py `LearnerParams`).
#[derive(Debug, Clone)]
pub struct LearnerParams {
    pub learning_rate: f64,
    pub vf_coef: f64,
    pub ent_coef: f64,
    pub max_grad_norm: f64,
    pub rms_alpha: f64,
    pub rms_eps: f64,
    pub hidden: Vec<i64>,
}

pub struct Learner {
    pub net: ActorCritic,
    optimizer: nn::Optimizer,
    params: LearnerParams,
}

impl Learner {
    /// The actor and critic loaded from the shared initial weights, and the optimizer.
    pub fn new(observations: i64, actions: i64, params: LearnerParams, weights: &Path) -> Result<Self> {
        let net = ActorCritic::load(observations, actions, &params.hidden, weights)?;
        let rmsprop = nn::RmsProp {
            alpha: params.rms_alpha,
            eps: params.rms_eps,
            wd: 0.0,
            momentum: 0.0,
            centered: false,
        };
        let optimizer = rmsprop.build(&net.vs, params.learning_rate).map_err(tch_error)?;
        Ok(Learner { net, optimizer, params })
    }

    pub fn update(&mut self, obs: &Tensor, actions: &Tensor, returns: &Tensor, advantages: &Tensor) -> f64 {
        let (log_probs, entropy, values) = self.net.evaluate(obs, actions);
        let policy_loss = -(advantages * log_probs).mean(Kind::Float);
        let value_loss = returns.mse_loss(&values, tch::Reduction::Mean);
        let loss =
            policy_loss + self.params.vf_coef * value_loss - self.params.ent_coef * entropy.mean(Kind::Float);
        self.optimizer.zero_grad();
        loss.backward();
        self.optimizer.clip_grad_norm(self.params.max_grad_norm);
        self.optimizer.step();
        f64::try_from(&loss).unwrap_or(f64::NAN)
    }
}
