//! DQN's learner on candle, the second Rust twin of python/tasks/rl/dqn.py (read its docstring):
//! the same network under PyTorch's names (a VarMap loaded from the shared safetensors file), the
//! same TD target and Huber loss, Adam (candle's AdamW with no weight decay, which is Adam), and
//! PyTorch's global-norm clipping, which candle lacks (rust/rl-twins): coefficient max / (norm + 1e-6),
//! applied when below 1. The tch twin is learner.rs; the two keep the same names and steps.
use std::path::Path;

use bench_core::error::{BenchError, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Linear, Module, Optimizer, VarBuilder, VarMap};

pub use rl_twins::candle_util::candle_error;
use rl_twins::candle_util::clip_grad_norm;

use crate::learner::LearnerParams;

/// The candle arm's batch (python/tasks/rl/dqn.py `Batch`).
pub struct Batch {
    pub obs: Tensor,
    pub actions: Tensor,
    pub rewards: Tensor,
    pub next_obs: Tensor,
    pub dones: Tensor,
}

/// The trunk (`trunk.0`, `trunk.2`, ... as nn.Sequential numbers them) and a `head`, or a `value`
/// and an `advantage` head.
pub struct QNetwork {
    trunk: Vec<Linear>,
    heads: Heads,
}

enum Heads {
    Plain(Linear),
    Dueling { value: Linear, advantage: Linear },
}

impl QNetwork {
    pub fn new(vb: &VarBuilder, observations: usize, actions: usize, params: &LearnerParams) -> Result<Self> {
        let mut trunk = Vec::new();
        let mut width = observations;
        for (i, &size) in params.hidden.iter().enumerate() {
            let size = size as usize;
            trunk.push(candle_nn::linear(width, size, vb.pp("trunk").pp(2 * i)).map_err(candle_error)?);
            width = size;
        }
        let heads = if params.dueling {
            Heads::Dueling {
                value: candle_nn::linear(width, 1, vb.pp("value")).map_err(candle_error)?,
                advantage: candle_nn::linear(width, actions, vb.pp("advantage")).map_err(candle_error)?,
            }
        } else {
            Heads::Plain(candle_nn::linear(width, actions, vb.pp("head")).map_err(candle_error)?)
        };
        Ok(QNetwork { trunk, heads })
    }

    pub fn forward(&self, obs: &Tensor) -> candle_core::Result<Tensor> {
        let mut features = obs.clone();
        for layer in &self.trunk {
            features = layer.forward(&features)?.relu()?;
        }
        match &self.heads {
            Heads::Plain(head) => head.forward(&features),
            Heads::Dueling { value, advantage } => {
                let advantage = advantage.forward(&features)?;
                let mean = advantage.mean_keepdim(1)?;
                value.forward(&features)?.broadcast_add(&advantage)?.broadcast_sub(&mean)
            }
        }
    }
}

pub struct Learner {
    online_vars: VarMap,
    online: QNetwork,
    target_vars: VarMap,
    target: QNetwork,
    optimizer: candle_nn::AdamW,
    params: LearnerParams,
}

fn network(observations: usize, actions: usize, params: &LearnerParams) -> Result<(VarMap, QNetwork)> {
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
    let net = QNetwork::new(&vb, observations, actions, params)?;
    Ok((vars, net))
}

/// Every variable of `from` written into the same name of `into`.
pub fn copy_vars(from: &VarMap, into: &VarMap) -> Result<()> {
    let source = from.data().lock().map_err(|_| BenchError::run("a poisoned VarMap lock"))?;
    let target = into.data().lock().map_err(|_| BenchError::run("a poisoned VarMap lock"))?;
    for (name, var) in source.iter() {
        let slot = target.get(name).ok_or_else(|| BenchError::run(format!("target network lacks {name}")))?;
        slot.set(&var.as_tensor().copy().map_err(candle_error)?).map_err(candle_error)?;
    }
    Ok(())
}

impl Learner {
    /// The online network loaded from the shared initial weights, the target network a copy of
    /// it, and the optimizer.
    pub fn new(observations: usize, actions: usize, params: LearnerParams, weights: &Path) -> Result<Self> {
        let (mut online_vars, online) = network(observations, actions, &params)?;
        online_vars
            .load(weights)
            .map_err(|e| BenchError::usage(format!("--weights: {}: {e}", weights.display())))?;
        let (target_vars, target) = network(observations, actions, &params)?;
        copy_vars(&online_vars, &target_vars)?;
        let optimizer = rl_twins::candle_util::adam(online_vars.all_vars(), params.learning_rate, 1e-8)?;
        Ok(Learner { online_vars, online, target_vars, target, optimizer, params })
    }

    pub fn targets(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        let next_q = self.target.forward(&batch.next_obs)?.detach();
        let chosen = if self.params.double {
            self.online.forward(&batch.next_obs)?.detach().argmax_keepdim(1)?
        } else {
            next_q.argmax_keepdim(1)?
        };
        let best = next_q.gather(&chosen, 1)?.squeeze(1)?;
        let not_done = batch.dones.affine(-1.0, 1.0)?;
        batch.rewards.add(&(not_done * self.params.gamma)?.mul(&best)?)
    }

    pub fn update(&mut self, batch: &Batch) -> Result<f64> {
        let target = self.targets(batch).map_err(candle_error)?;
        let loss = (|| {
            let q = self.online.forward(&batch.obs)?.gather(&batch.actions.unsqueeze(1)?, 1)?.squeeze(1)?;
            huber(&(q - target)?)?.mean_all()
        })()
        .map_err(candle_error)?;
        self.step(&loss)
    }

    /// The update with each row's loss weighted: the loss and the rows' absolute TD errors.
    pub fn update_weighted(&mut self, batch: &Batch, weights: &Tensor) -> Result<(f64, Vec<f32>)> {
        let target = self.targets(batch).map_err(candle_error)?;
        let (loss, errors) = (|| {
            let q = self.online.forward(&batch.obs)?.gather(&batch.actions.unsqueeze(1)?, 1)?.squeeze(1)?;
            let diff = (q - target)?;
            let loss = (weights * huber(&diff)?)?.mean_all()?;
            Ok::<_, candle_core::Error>((loss, diff.detach().abs()?.to_vec1::<f32>()?))
        })()
        .map_err(candle_error)?;
        Ok((self.step(&loss)?, errors))
    }

    fn step(&mut self, loss: &Tensor) -> Result<f64> {
        let mut grads = loss.backward().map_err(candle_error)?;
        clip_grad_norm(&mut grads, &self.online_vars.all_vars(), self.params.max_grad_norm)
            .map_err(candle_error)?;
        self.optimizer.step(&grads).map_err(candle_error)?;
        loss.to_scalar::<f32>().map(f64::from).map_err(candle_error)
    }

    /// The action of largest value for one observation (argmax: the first on a tie).
    pub fn greedy(&self, observation: &[f32]) -> Result<usize> {
        (|| {
            let obs = Tensor::from_slice(observation, (1, observation.len()), &Device::Cpu)?;
            self.online.forward(&obs)?.argmax(1)?.squeeze(0)?.to_scalar::<u32>()
        })()
        .map(|a| a as usize)
        .map_err(candle_error)
    }

    pub fn sync_target(&mut self) -> Result<()> {
        copy_vars(&self.online_vars, &self.target_vars)
    }

    /// The online network's weights as safetensors (PyTorch's names).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.online_vars.save(path).map_err(candle_error)
    }
}

/// The smooth L1 loss with beta 1 of each row (PyTorch's smooth_l1_loss, no reduction): 0.5 x^2
/// where |x| < 1, else |x| - 0.5.
fn huber(diff: &Tensor) -> candle_core::Result<Tensor> {
    let abs = diff.abs()?;
    let quadratic = (diff.sqr()? * 0.5)?;
    let linear = (&abs - 0.5)?;
    abs.lt(1.0)?.where_cond(&quadratic, &linear)
}
