//! A2C's actor, critic and update on candle, the second Rust twin of python/tasks/rl/a2c.py (read
//! its docstring): the same networks under PyTorch's names (a VarMap loaded from the shared
//! safetensors file) and the same loss. candle has neither RMSprop nor gradient clipping, so both
//! are written out as PyTorch defines them: square_avg = alpha square_avg + (1 - alpha) g^2, then
//! p -= lr g / (sqrt(square_avg) + eps); clipping from rust/candle-util.
use std::path::Path;

use bench_core::error::{BenchError, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{Linear, Module, VarBuilder, VarMap};

pub use candle_util::candle_error;
use candle_util::clip_grad_norm;

use crate::learner::LearnerParams;

/// A tanh MLP (`NAME.0`, `NAME.2`, ...) and its head `NAME_head`.
struct Mlp {
    layers: Vec<Linear>,
    head: Linear,
}

impl Mlp {
    fn new(vb: &VarBuilder, name: &str, observations: usize, outputs: usize, hidden: &[i64]) -> Result<Self> {
        let mut layers = Vec::new();
        let mut width = observations;
        for (i, &size) in hidden.iter().enumerate() {
            let size = size as usize;
            layers.push(candle_nn::linear(width, size, vb.pp(name).pp(2 * i)).map_err(candle_error)?);
            width = size;
        }
        let head = candle_nn::linear(width, outputs, vb.pp(format!("{name}_head"))).map_err(candle_error)?;
        Ok(Mlp { layers, head })
    }

    fn forward(&self, obs: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = obs.clone();
        for layer in &self.layers {
            x = layer.forward(&x)?.tanh()?;
        }
        self.head.forward(&x)
    }
}

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
            *avg = ((&*avg * self.alpha)? + (grad.sqr()? * (1.0 - self.alpha))?)?;
            let denominator = (avg.sqrt()? + self.eps)?;
            var.set(&(var.as_tensor() - ((grad / denominator)? * self.learning_rate)?)?)?;
        }
        Ok(())
    }
}

pub struct Learner {
    vars: VarMap,
    actor: Mlp,
    critic: Mlp,
    optimizer: RmsProp,
    params: LearnerParams,
}

impl Learner {
    /// The actor and critic loaded from the shared initial weights, and the optimizer.
    pub fn new(observations: usize, actions: usize, params: LearnerParams, weights: &Path) -> Result<Self> {
        let mut vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        let actor = Mlp::new(&vb, "actor", observations, actions, &params.hidden)?;
        let critic = Mlp::new(&vb, "critic", observations, 1, &params.hidden)?;
        vars.load(weights).map_err(|e| BenchError::usage(format!("{}: {e}", weights.display())))?;
        let optimizer = RmsProp::new(vars.all_vars(), params.learning_rate, params.rms_alpha, params.rms_eps)
            .map_err(candle_error)?;
        Ok(Learner { vars, actor, critic, optimizer, params })
    }

    pub fn act(&self, observation: &[f32]) -> Result<(Vec<f32>, f32)> {
        (|| {
            let obs = Tensor::from_slice(observation, (1, observation.len()), &Device::Cpu)?;
            let probabilities =
                candle_nn::ops::softmax_last_dim(&self.actor.forward(&obs)?)?.squeeze(0)?.to_vec1()?;
            let value = self.critic.forward(&obs)?.flatten_all()?.to_vec1::<f32>()?[0];
            Ok((probabilities, value))
        })()
        .map_err(candle_error)
    }

    pub fn values(&self, observations: &[f32], rows: usize) -> Result<Vec<f32>> {
        (|| {
            let obs = Tensor::from_slice(observations, (rows, observations.len() / rows), &Device::Cpu)?;
            self.critic.forward(&obs)?.squeeze(1)?.to_vec1::<f32>()
        })()
        .map_err(candle_error)
    }

    pub fn update(
        &mut self,
        obs: &Tensor,
        actions: &Tensor,
        returns: &Tensor,
        advantages: &Tensor,
    ) -> Result<f64> {
        let loss = (|| {
            let logits = self.actor.forward(obs)?;
            let values = self.critic.forward(obs)?.squeeze(1)?;
            let log_all = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
            let log_probs = log_all.gather(&actions.unsqueeze(1)?, 1)?.squeeze(1)?;
            let entropy = (candle_nn::ops::softmax_last_dim(&logits)? * &log_all)?.sum(1)?.neg()?;
            let policy_loss = (advantages * log_probs)?.mean_all()?.neg()?;
            let value_loss = (returns - values)?.sqr()?.mean_all()?;
            (policy_loss + (value_loss * self.params.vf_coef)?)?
                - (entropy.mean_all()? * self.params.ent_coef)?
        })()
        .map_err(candle_error)?;
        let mut grads = loss.backward().map_err(candle_error)?;
        clip_grad_norm(&mut grads, &self.vars.all_vars(), self.params.max_grad_norm).map_err(candle_error)?;
        self.optimizer.step(&grads).map_err(candle_error)?;
        loss.to_scalar::<f32>().map(f64::from).map_err(candle_error)
    }
}
