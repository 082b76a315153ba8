//! The actor-critic on candle (python/tasks/rl/a2c.py `ActorCritic`): a VarMap loaded from the
//! shared safetensors file under PyTorch's names.
use std::path::Path;

use bench_core::error::{BenchError, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Linear, Module, VarBuilder, VarMap};

use crate::candle_util::candle_error;

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

pub struct ActorCritic {
    /// The networks' variables (an optimizer is built on them).
    pub vars: VarMap,
    actor: Mlp,
    critic: Mlp,
}

impl ActorCritic {
    /// The actor and critic loaded from the shared initial weights (safetensors, PyTorch's names).
    pub fn load(observations: usize, actions: usize, hidden: &[i64], weights: &Path) -> Result<Self> {
        let mut vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        let actor = Mlp::new(&vb, "actor", observations, actions, hidden)?;
        let critic = Mlp::new(&vb, "critic", observations, 1, hidden)?;
        vars.load(weights).map_err(|e| BenchError::usage(format!("{}: {e}", weights.display())))?;
        Ok(ActorCritic { vars, actor, critic })
    }

    /// The policy's probabilities and the critic's value for one observation.
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

    /// The critic's values of `rows` observations (row-major).
    pub fn values(&self, observations: &[f32], rows: usize) -> Result<Vec<f32>> {
        (|| {
            let obs = Tensor::from_slice(observations, (rows, observations.len() / rows), &Device::Cpu)?;
            self.critic.forward(&obs)?.squeeze(1)?.to_vec1::<f32>()
        })()
        .map_err(candle_error)
    }

    /// log pi(a|s), the policy's entropy and V(s) of each row.
    pub fn evaluate(&self, obs: &Tensor, actions: &Tensor) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let logits = self.actor.forward(obs)?;
        let values = self.critic.forward(obs)?.squeeze(1)?;
        let log_all = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let log_probs = log_all.gather(&actions.unsqueeze(1)?, 1)?.squeeze(1)?;
        let entropy = (candle_nn::ops::softmax_last_dim(&logits)? * &log_all)?.sum(1)?.neg()?;
        Ok((log_probs, entropy, values))
    }
}
