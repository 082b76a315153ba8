//! PPO's update on candle, the second Rust twin of python/tasks/rl/ppo.py (read its docstring): the
//! shared actor-critic (rust/rl-twins) and the same clipped objective. candle's AdamW with no
//! weight decay is Adam; the unbiased standard deviation and global-norm clipping (rust/rl-twins)
//! are written out as PyTorch defines them.
use std::path::Path;

use bench_core::error::{BenchError, Result};
use bench_core::policy::PpoParams;
use candle_nn::Optimizer;
use rl_twins::agent::CandleRollout;
use rl_twins::candle_net::ActorCritic;

pub use rl_twins::candle_util::candle_error;
use rl_twins::candle_util::clip_grad_norm;

use crate::learner::ADVANTAGE_EPS;

pub struct Learner {
    pub net: ActorCritic,
    optimizer: candle_nn::AdamW,
    params: PpoParams,
}

impl Learner {
    /// The actor and critic loaded from the shared initial weights, and Adam.
    pub fn new(observations: usize, actions: usize, params: PpoParams, weights: &Path) -> Result<Self> {
        let net = ActorCritic::load(observations, actions, &params.hidden(), weights)?;
        let optimizer =
            rl_twins::candle_util::adam(net.vars.all_vars(), params.learning_rate, params.adam_eps)?;
        Ok(Learner { net, optimizer, params })
    }

    pub fn update(&mut self, rollout: &CandleRollout) -> Result<f64> {
        let CandleRollout { obs, actions, returns, advantages, order } = rollout;
        let order =
            order.as_ref().ok_or_else(|| BenchError::run("PPO's update needs the minibatches' shuffles"))?;
        let old_log_probs = self.net.evaluate(obs, actions).map_err(candle_error)?.0.detach();
        let (mut total, mut count) = (0.0f64, 0usize);
        let (epochs, n) = order.dims2().map_err(candle_error)?;
        let batch_size = self.params.batch_size;
        for epoch in 0..epochs {
            for start in (0..n).step_by(batch_size) {
                let loss = (|| {
                    let p = &self.params;
                    let rows = order.get(epoch)?.narrow(0, start, batch_size.min(n - start))?;
                    let (log_probs, entropy, values) =
                        self.net.evaluate(&obs.index_select(&rows, 0)?, &actions.index_select(&rows, 0)?)?;
                    let mut adv = advantages.index_select(&rows, 0)?;
                    let size = rows.dims1()?;
                    if p.normalize_advantage && size > 1 {
                        let centred = adv.broadcast_sub(&adv.mean_all()?)?;
                        let std = (centred.sqr()?.sum_all()? / (size - 1) as f64)?.sqrt()?;
                        adv = centred.broadcast_div(&(std + ADVANTAGE_EPS)?)?;
                    }
                    let ratio = (log_probs - old_log_probs.index_select(&rows, 0)?)?.exp()?;
                    let clipped = ratio.clamp(1.0 - p.clip_range, 1.0 + p.clip_range)?;
                    let policy_loss = (&adv * &ratio)?.minimum(&(&adv * clipped)?)?.mean_all()?.neg()?;
                    let value_loss = (returns.index_select(&rows, 0)? - values)?.sqr()?.mean_all()?;
                    (policy_loss + (entropy.mean_all()?.neg()? * p.ent_coef)?)? + (value_loss * p.vf_coef)?
                })()
                .map_err(candle_error)?;
                let mut grads = loss.backward().map_err(candle_error)?;
                clip_grad_norm(&mut grads, &self.net.vars.all_vars(), self.params.max_grad_norm)
                    .map_err(candle_error)?;
                self.optimizer.step(&grads).map_err(candle_error)?;
                total += f64::from(loss.to_scalar::<f32>().map_err(candle_error)?);
                count += 1;
            }
        }
        Ok(total / count as f64)
    }
}
