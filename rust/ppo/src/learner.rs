//! PPO's update on tch, line by line the twin of python/tasks/rl/ppo.py (read its docstring): the
//! shared actor-critic (rust/rl-twins), the clipped objective over the rollout's shuffled
//! minibatches, libtorch's Adam and global-norm clipping.
use std::path::Path;

use bench_core::error::Result;
use bench_core::policy::PpoParams;
use rl_twins::agent::TchRollout;
use rl_twins::tch_net::{tch_error, ActorCritic};
use tch::nn::OptimizerConfig;
use tch::{nn, Kind};

/// Added to the minibatch advantages' standard deviation before dividing by it.
pub const ADVANTAGE_EPS: f64 = 1e-8;

pub struct Learner {
    pub net: ActorCritic,
    optimizer: nn::Optimizer,
    params: PpoParams,
}

impl Learner {
    /// The actor and critic loaded from the shared initial weights, and Adam.
    pub fn new(observations: i64, actions: i64, params: PpoParams, weights: &Path) -> Result<Self> {
        let net = ActorCritic::load(observations, actions, &params.hidden(), weights)?;
        let adam = nn::Adam { beta1: 0.9, beta2: 0.999, wd: 0.0, eps: params.adam_eps, amsgrad: false };
        let optimizer = adam.build(&net.vs, params.learning_rate).map_err(tch_error)?;
        Ok(Learner { net, optimizer, params })
    }

    pub fn update(&mut self, rollout: &TchRollout) -> Result<f64> {
        let p = &self.params;
        let TchRollout { obs, actions, returns, advantages, order } = rollout;
        let old_log_probs = tch::no_grad(|| self.net.evaluate(obs, actions).0);
        let (mut total, mut count) = (0.0f64, 0usize);
        let (epochs, n) = (order.size()[0], order.size()[1]);
        for epoch in 0..epochs {
            let shuffle = order.get(epoch);
            for start in (0..n).step_by(p.batch_size) {
                let rows = shuffle.narrow(0, start, (p.batch_size as i64).min(n - start));
                let (log_probs, entropy, values) =
                    self.net.evaluate(&obs.index_select(0, &rows), &actions.index_select(0, &rows));
                let mut adv = advantages.index_select(0, &rows);
                if p.normalize_advantage && rows.size()[0] > 1 {
                    adv = (&adv - adv.mean(Kind::Float)) / (adv.std(true) + ADVANTAGE_EPS);
                }
                let ratio = (log_probs - old_log_probs.index_select(0, &rows)).exp();
                let clipped = ratio.clamp(1.0 - p.clip_range, 1.0 + p.clip_range);
                let policy_loss = -(&adv * &ratio).minimum(&(&adv * clipped)).mean(Kind::Float);
                let value_loss = returns.index_select(0, &rows).mse_loss(&values, tch::Reduction::Mean);
                let loss = policy_loss + p.ent_coef * -entropy.mean(Kind::Float) + p.vf_coef * value_loss;
                self.optimizer.zero_grad();
                loss.backward();
                self.optimizer.clip_grad_norm(p.max_grad_norm);
                self.optimizer.step();
                total += f64::try_from(&loss).map_err(tch_error)?;
                count += 1;
            }
        }
        Ok(total / count as f64)
    }
}
