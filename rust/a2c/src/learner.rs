//! A2C's actor, critic and update on tch, line by line the twin of python/tasks/rl/a2c.py (read its
//! docstring): the same tanh MLPs under PyTorch's names, the same loss, libtorch's RMSprop and
//! global-norm clipping.
use std::path::Path;

use bench_core::error::{BenchError, Result};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

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

pub struct Learner {
    _vs: nn::VarStore, // owns the networks' variables
    actor: Mlp,
    critic: Mlp,
    optimizer: nn::Optimizer,
    params: LearnerParams,
}

impl Learner {
    /// The actor and critic loaded from the shared initial weights (safetensors, PyTorch's names),
    /// and the optimizer.
    pub fn new(observations: i64, actions: i64, params: LearnerParams, weights: &Path) -> Result<Self> {
        let mut vs = nn::VarStore::new(Device::Cpu);
        let actor = Mlp::new(&vs.root(), "actor", observations, actions, &params.hidden);
        let critic = Mlp::new(&vs.root(), "critic", observations, 1, &params.hidden);
        vs.load(weights).map_err(|e| BenchError::usage(format!("{}: {e}", weights.display())))?;
        let rmsprop = nn::RmsProp {
            alpha: params.rms_alpha,
            eps: params.rms_eps,
            wd: 0.0,
            momentum: 0.0,
            centered: false,
        };
        let optimizer = rmsprop.build(&vs, params.learning_rate).map_err(tch_error)?;
        Ok(Learner { _vs: vs, actor, critic, optimizer, params })
    }

    pub fn act(&self, observation: &[f32]) -> Result<(Vec<f32>, f32)> {
        let (probabilities, value) = tch::no_grad(|| {
            let obs = Tensor::from_slice(observation).unsqueeze(0);
            (self.actor.forward(&obs).softmax(1, Kind::Float).squeeze_dim(0), self.critic.forward(&obs))
        });
        Ok((Vec::<f32>::try_from(&probabilities).map_err(tch_error)?, value.double_value(&[0, 0]) as f32))
    }

    pub fn values(&self, observations: &[f32], rows: usize) -> Result<Vec<f32>> {
        let values = tch::no_grad(|| {
            self.critic.forward(&Tensor::from_slice(observations).view([rows as i64, -1])).squeeze_dim(1)
        });
        Vec::<f32>::try_from(&values).map_err(tch_error)
    }

    pub fn update(&mut self, obs: &Tensor, actions: &Tensor, returns: &Tensor, advantages: &Tensor) -> f64 {
        let logits = self.actor.forward(obs);
        let values = self.critic.forward(obs).squeeze_dim(1);
        let log_all = logits.log_softmax(1, Kind::Float);
        let log_probs = log_all.gather(1, &actions.unsqueeze(1), false).squeeze_dim(1);
        let entropy = -(logits.softmax(1, Kind::Float) * &log_all).sum_dim_intlist(1, false, Kind::Float);
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

pub fn tch_error(e: tch::TchError) -> BenchError {
    BenchError::run(e.to_string())
}
