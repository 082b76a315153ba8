//! REINFORCE's policy and update on candle, the second Rust twin of python/tasks/rl/reinforce.py
//! (read its docstring): the same network under PyTorch's names (a VarMap loaded from the shared
//! safetensors file), the same loss, Adam (candle's AdamW with no weight decay, which is Adam), and
//! PyTorch's global-norm clipping from rust/rl-twins, as rust/dqn's candle learner clips.
use std::path::Path;

use bench_core::error::{BenchError, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Linear, Module, Optimizer, VarBuilder, VarMap};

pub use rl_twins::candle_util::candle_error;
use rl_twins::candle_util::clip_grad_norm;

use crate::learner::LearnerParams;

/// The trunk (`trunk.0`, `trunk.2`, ... as nn.Sequential numbers them) and the `head`.
pub struct PolicyNetwork {
    trunk: Vec<Linear>,
    head: Linear,
}

impl PolicyNetwork {
    pub fn new(vb: &VarBuilder, observations: usize, actions: usize, params: &LearnerParams) -> Result<Self> {
        let mut trunk = Vec::new();
        let mut width = observations;
        for (i, &size) in params.hidden.iter().enumerate() {
            let size = size as usize;
            trunk.push(candle_nn::linear(width, size, vb.pp("trunk").pp(2 * i)).map_err(candle_error)?);
            width = size;
        }
        let head = candle_nn::linear(width, actions, vb.pp("head")).map_err(candle_error)?;
        Ok(PolicyNetwork { trunk, head })
    }

    pub fn forward(&self, obs: &Tensor) -> candle_core::Result<Tensor> {
        let mut features = obs.clone();
        for layer in &self.trunk {
            features = layer.forward(&features)?.relu()?;
        }
        self.head.forward(&features)
    }
}

pub struct Learner {
    vars: VarMap,
    policy: PolicyNetwork,
    optimizer: candle_nn::AdamW,
    params: LearnerParams,
}

impl Learner {
    /// The policy loaded from the shared initial weights, and its optimizer.
    pub fn new(observations: usize, actions: usize, params: LearnerParams, weights: &Path) -> Result<Self> {
        let mut vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
        let policy = PolicyNetwork::new(&vb, observations, actions, &params)?;
        vars.load(weights).map_err(|e| BenchError::usage(format!("{}: {e}", weights.display())))?;
        let optimizer = rl_twins::candle_util::adam(vars.all_vars(), params.learning_rate, 1e-8)?;
        Ok(Learner { vars, policy, optimizer, params })
    }

    pub fn probabilities(&self, observation: &[f32]) -> Result<Vec<f32>> {
        (|| {
            let obs = Tensor::from_slice(observation, (1, observation.len()), &Device::Cpu)?;
            candle_nn::ops::softmax_last_dim(&self.policy.forward(&obs)?)?.squeeze(0)?.to_vec1::<f32>()
        })()
        .map_err(candle_error)
    }

    pub fn update(&mut self, obs: &Tensor, actions: &Tensor, weights: &Tensor) -> Result<f64> {
        let loss = (|| {
            let logits = self.policy.forward(obs)?;
            let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?
                .gather(&actions.unsqueeze(1)?, 1)?
                .squeeze(1)?;
            (log_probs * weights)?.mean_all()?.neg()
        })()
        .map_err(candle_error)?;
        let mut grads = loss.backward().map_err(candle_error)?;
        clip_grad_norm(&mut grads, &self.vars.all_vars(), self.params.max_grad_norm).map_err(candle_error)?;
        self.optimizer.step(&grads).map_err(candle_error)?;
        loss.to_scalar::<f32>().map(f64::from).map_err(candle_error)
    }
}
