//! REINFORCE's policy and update on tch, line by line the twin of python/tasks/rl/reinforce.py
//! (read its docstring): the same MLP under PyTorch's names, softmax probabilities, the loss
//! -mean(log pi(a|s) w), Adam and global-norm clipping.
use std::path::Path;

use bench_core::error::{BenchError, Result};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// The update's settings (python/tasks/rl/reinforce.py `LearnerParams`).
#[derive(Debug, Clone)]
pub struct LearnerParams {
    pub learning_rate: f64,
    pub max_grad_norm: f64,
    pub hidden: Vec<i64>,
}

/// An MLP trunk (`trunk.0`, `trunk.2`, ... as nn.Sequential numbers them, ReLUs between) and a
/// `head` giving one logit per action.
#[derive(Debug)]
pub struct PolicyNetwork {
    trunk: Vec<nn::Linear>,
    head: nn::Linear,
}

impl PolicyNetwork {
    pub fn new(vs: &nn::Path, observations: i64, actions: i64, hidden: &[i64]) -> Self {
        let mut trunk = Vec::new();
        let mut width = observations;
        for (i, &size) in hidden.iter().enumerate() {
            trunk.push(nn::linear(vs / "trunk" / (2 * i).to_string(), width, size, Default::default()));
            width = size;
        }
        PolicyNetwork { trunk, head: nn::linear(vs / "head", width, actions, Default::default()) }
    }
}

impl Module for PolicyNetwork {
    fn forward(&self, obs: &Tensor) -> Tensor {
        self.trunk.iter().fold(obs.shallow_clone(), |x, layer| x.apply(layer).relu()).apply(&self.head)
    }
}

pub struct Learner {
    _vs: nn::VarStore, // owns the policy's variables
    policy: PolicyNetwork,
    optimizer: nn::Optimizer,
    params: LearnerParams,
}

impl Learner {
    /// The policy loaded from the shared initial weights (safetensors, PyTorch's names), and its optimizer.
    pub fn new(observations: i64, actions: i64, params: LearnerParams, weights: &Path) -> Result<Self> {
        let mut vs = nn::VarStore::new(Device::Cpu);
        let policy = PolicyNetwork::new(&vs.root(), observations, actions, &params.hidden);
        vs.load(weights).map_err(|e| BenchError::usage(format!("{}: {e}", weights.display())))?;
        let optimizer = nn::Adam::default().build(&vs, params.learning_rate).map_err(tch_error)?;
        Ok(Learner { _vs: vs, policy, optimizer, params })
    }

    pub fn probabilities(&self, observation: &[f32]) -> Result<Vec<f32>> {
        let probabilities = tch::no_grad(|| {
            self.policy
                .forward(&Tensor::from_slice(observation).unsqueeze(0))
                .softmax(1, Kind::Float)
                .squeeze_dim(0)
        });
        Vec::<f32>::try_from(&probabilities).map_err(tch_error)
    }

    pub fn update(&mut self, obs: &Tensor, actions: &Tensor, weights: &Tensor) -> f64 {
        let log_probs = self
            .policy
            .forward(obs)
            .log_softmax(1, Kind::Float)
            .gather(1, &actions.unsqueeze(1), false)
            .squeeze_dim(1);
        let loss = -(log_probs * weights).mean(Kind::Float);
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
