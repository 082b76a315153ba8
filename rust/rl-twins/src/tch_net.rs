//! The actor-critic on tch (python/tasks/rl/a2c.py `ActorCritic`).
use std::path::Path;

use bench_core::error::{BenchError, Result};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// A tanh MLP (`NAME.0`, `NAME.2`, ... as nn.Sequential numbers them) and its head `NAME_head`.
#[derive(Debug)]
struct Mlp {
    layers: Vec<nn::Linear>,
    head: nn::Linear,
}

impl Mlp {
    fn new(vs: &nn::Path, name: &str, observations: i64, outputs: i64, hidden: &[i64]) -> Self {
        let mut layers = Vec::new();
        let mut width = observations;
        for (i, &size) in hidden.iter().enumerate() {
            layers.push(nn::linear(vs / name / (2 * i).to_string(), width, size, Default::default()));
            width = size;
        }
        Mlp { layers, head: nn::linear(vs / format!("{name}_head"), width, outputs, Default::default()) }
    }
}

impl Module for Mlp {
    fn forward(&self, obs: &Tensor) -> Tensor {
        self.layers.iter().fold(obs.shallow_clone(), |x, layer| x.apply(layer).tanh()).apply(&self.head)
    }
}

pub struct ActorCritic {
    /// The networks' variables (an optimizer is built on them).
    pub vs: nn::VarStore,
    actor: Mlp,
    critic: Mlp,
}

impl ActorCritic {
    /// The actor and critic loaded from the shared initial weights (safetensors, PyTorch's names).
    pub fn load(observations: i64, actions: i64, hidden: &[i64], weights: &Path) -> Result<Self> {
        let mut vs = nn::VarStore::new(Device::Cpu);
        let actor = Mlp::new(&vs.root(), "actor", observations, actions, hidden);
        let critic = Mlp::new(&vs.root(), "critic", observations, 1, hidden);
        vs.load(weights).map_err(|e| BenchError::usage(format!("{}: {e}", weights.display())))?;
        Ok(ActorCritic { vs, actor, critic })
    }

    /// The policy's probabilities and the critic's value for one observation.
    pub fn act(&self, observation: &[f32]) -> Result<(Vec<f32>, f32)> {
        let (probabilities, value) = tch::no_grad(|| {
            let obs = Tensor::from_slice(observation).unsqueeze(0);
            (self.actor.forward(&obs).softmax(1, Kind::Float).squeeze_dim(0), self.critic.forward(&obs))
        });
        Ok((Vec::<f32>::try_from(&probabilities).map_err(tch_error)?, value.double_value(&[0, 0]) as f32))
    }

    /// The critic's values of `rows` observations (row-major).
    pub fn values(&self, observations: &[f32], rows: usize) -> Result<Vec<f32>> {
        let values = tch::no_grad(|| {
            self.critic.forward(&Tensor::from_slice(observations).view([rows as i64, -1])).squeeze_dim(1)
        });
        Vec::<f32>::try_from(&values).map_err(tch_error)
    }

    /// log pi(a|s), the policy's entropy and V(s) of each row.
    pub fn evaluate(&self, obs: &Tensor, actions: &Tensor) -> (Tensor, Tensor, Tensor) {
        let logits = self.actor.forward(obs);
        let values = self.critic.forward(obs).squeeze_dim(1);
        let log_all = logits.log_softmax(1, Kind::Float);
        let log_probs = log_all.gather(1, &actions.unsqueeze(1), false).squeeze_dim(1);
        let entropy = -(logits.softmax(1, Kind::Float) * &log_all).sum_dim_intlist(1, false, Kind::Float);
        (log_probs, entropy, values)
    }
}

pub fn tch_error(e: tch::TchError) -> BenchError {
    BenchError::run(e.to_string())
}
