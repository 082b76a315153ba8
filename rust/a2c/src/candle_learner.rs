//! A2C's update on candle, the second Rust twin of python/tasks/rl/a2c.py (read its docstring): the
//! shared actor-critic (rust/rl-twins) and the same loss. candle has neither RMSprop nor
//! gradient clipping, so both are written out as PyTorch defines them: square_avg = alpha
//! square_avg + (1 - alpha) g^2, then p -= lr g / (sqrt(square_avg) + eps); clipping from
//! rust/rl-twins.
use std::path::Path;

use bench_core::error::Result;
use candle_core::{Tensor, Var};
use rl_twins::candle_net::ActorCritic;

pub use rl_twins::candle_util::candle_error;
use rl_twins::candle_util::clip_grad_norm;

use crate::learner::LearnerParams;

/// PyTorch's RMSprop without momentum, centering or weight decay.
struct RmsProp {
    vars: Vec<Var>,
    square_avg: Vec<Tensor>,
    learning_rate: f64,
    alpha: f64,
    eps: f64,
}

impl RmsProp {
    fn new(vars: Vec<Var>, learning_rate: f64, alpha: f64, eps: f64) -> candle_core::Result<Self> {
        let square_avg =
            vars.iter().map(|v| v.as_tensor().zeros_like()).collect::<candle_core::Result<_>>()?;
        Ok(RmsProp { vars, square_avg, learning_rate, alpha, eps })
    }

    fn step(&mut self, grads: &candle_core::backprop::GradStore) -> candle_core::Result<()> {
        for (var, avg) in self.vars.iter().zip(self.square_avg.iter_mut()) {
            let Some(grad) = grads.get(var.as_tensor()) else { continue };
            // detached: a variable's gradient carries candle's backward graph, which a running
            // average would otherwise chain from update to update
            *avg = ((&*avg * self.alpha)? + (grad.sqr()? * (1.0 - self.alpha))?)?.detach();
            let denominator = (avg.sqrt()? + self.eps)?;
            var.set(&(var.as_tensor() - ((grad / denominator)? * self.learning_rate)?)?)?;
        }
        Ok(())
    }
}

pub struct Learner {
    pub net: ActorCritic,
    optimizer: RmsProp,
    params: LearnerParams,
}

impl Learner {
    /// The actor and critic loaded from the shared initial weights, and the optimizer.
    pub fn new(observations: usize, actions: usize, params: LearnerParams, weights: &Path) -> Result<Self> {
        let net = ActorCritic::load(observations, actions, &params.hidden, weights)?;
        let optimizer =
            RmsProp::new(net.vars.all_vars(), params.learning_rate, params.rms_alpha, params.rms_eps)
                .map_err(candle_error)?;
        Ok(Learner { net, optimizer, params })
    }

    pub fn update(
        &mut self,
        obs: &Tensor,
        actions: &Tensor,
        returns: &Tensor,
        advantages: &Tensor,
    ) -> Result<f64> {
        let loss = (|| {
            let (log_probs, entropy, values) = self.net.evaluate(obs, actions)?;
            let policy_loss = (advantages * log_probs)?.mean_all()?.neg()?;
            let value_loss = (returns - values)?.sqr()?.mean_all()?;
            (policy_loss + (value_loss * self.params.vf_coef)?)?
                - (entropy.mean_all()? * self.params.ent_coef)?
        })()
        .map_err(candle_error)?;
        let mut grads = loss.backward().map_err(candle_error)?;
        clip_grad_norm(&mut grads, &self.net.vars.all_vars(), self.params.max_grad_norm)
            .map_err(candle_error)?;
        self.optimizer.step(&grads).map_err(candle_error)?;
        loss.to_scalar::<f32>().map(f64::from).map_err(candle_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running average holds values, not graphs (a variable's gradient carries candle's
    /// backward graph; a tracked average would keep every update's graph alive).
    #[test]
    fn rmsprop_average_is_not_tracked() -> candle_core::Result<()> {
        let var = Var::from_tensor(&Tensor::new(&[1.0f32, -2.0], &candle_core::Device::Cpu)?)?;
        let mut rmsprop = RmsProp::new(vec![var.clone()], 0.01, 0.99, 1e-5)?;
        for _ in 0..3 {
            rmsprop.step(&var.as_tensor().sqr()?.sum_all()?.backward()?)?;
        }
        assert!(!rmsprop.square_avg[0].track_op(), "the running average carries a graph");
        Ok(())
    }
}
