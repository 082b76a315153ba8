//! DQN's learner on tch, line by line the twin of python/tasks/rl/dqn.py (read its docstring): the
//! same MLP or dueling network under PyTorch's names, the same TD target (the target network's
//! argmax, or the online network's with `double`), the Huber loss, Adam and global-norm clipping.
use std::path::Path;

use bench_core::error::{BenchError, Result};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Reduction, Tensor};

/// The update's settings (python/tasks/rl/dqn.py `LearnerParams`).
#[derive(Debug, Clone)]
pub struct LearnerParams {
    pub gamma: f64,
    pub learning_rate: f64,
    pub double: bool,
    pub dueling: bool,
    pub max_grad_norm: f64,
    pub hidden: Vec<i64>,
}

/// An MLP trunk (`trunk.0`, `trunk.2`, ... as PyTorch's nn.Sequential numbers them, ReLUs between)
/// and a `head`, or with `dueling` a `value` and an `advantage` head.
#[derive(Debug)]
pub struct QNetwork {
    trunk: Vec<nn::Linear>,
    heads: Heads,
}

#[derive(Debug)]
enum Heads {
    Plain(nn::Linear),
    Dueling { value: nn::Linear, advantage: nn::Linear },
}

impl QNetwork {
    pub fn new(vs: &nn::Path, observations: i64, actions: i64, hidden: &[i64], dueling: bool) -> Self {
        let mut trunk = Vec::new();
        let mut width = observations;
        for (i, &size) in hidden.iter().enumerate() {
            trunk.push(nn::linear(vs / "trunk" / (2 * i).to_string(), width, size, Default::default()));
            width = size;
        }
        let heads = if dueling {
            Heads::Dueling {
                value: nn::linear(vs / "value", width, 1, Default::default()),
                advantage: nn::linear(vs / "advantage", width, actions, Default::default()),
            }
        } else {
            Heads::Plain(nn::linear(vs / "head", width, actions, Default::default()))
        };
        QNetwork { trunk, heads }
    }
}

impl Module for QNetwork {
    fn forward(&self, obs: &Tensor) -> Tensor {
        let features = self.trunk.iter().fold(obs.shallow_clone(), |x, layer| x.apply(layer).relu());
        match &self.heads {
            Heads::Plain(head) => features.apply(head),
            Heads::Dueling { value, advantage } => {
                let advantage = features.apply(advantage);
                features.apply(value) + &advantage - advantage.mean_dim(1, true, Kind::Float)
            }
        }
    }
}

/// A batch of transitions (python/tasks/rl/dqn.py `Batch`).
pub struct Batch {
    pub obs: Tensor,
    pub actions: Tensor,
    pub rewards: Tensor,
    pub next_obs: Tensor,
    pub dones: Tensor,
}

pub struct Learner {
    online_vs: nn::VarStore,
    online: QNetwork,
    target_vs: nn::VarStore,
    target: QNetwork,
    optimizer: nn::Optimizer,
    params: LearnerParams,
}

impl Learner {
    /// The online network loaded from the shared initial weights (safetensors, PyTorch's names),
    /// the target network a copy of it, and the optimizer.
    pub fn new(observations: i64, actions: i64, params: LearnerParams, weights: &Path) -> Result<Self> {
        let mut online_vs = nn::VarStore::new(Device::Cpu);
        let online = QNetwork::new(&online_vs.root(), observations, actions, &params.hidden, params.dueling);
        online_vs
            .load(weights)
            .map_err(|e| BenchError::usage(format!("--weights: {}: {e}", weights.display())))?;
        let mut target_vs = nn::VarStore::new(Device::Cpu);
        let target = QNetwork::new(&target_vs.root(), observations, actions, &params.hidden, params.dueling);
        target_vs.copy(&online_vs).map_err(tch_error)?;
        let optimizer = nn::Adam::default().build(&online_vs, params.learning_rate).map_err(tch_error)?;
        Ok(Learner { online_vs, online, target_vs, target, optimizer, params })
    }

    pub fn targets(&self, batch: &Batch) -> Tensor {
        tch::no_grad(|| {
            let next_q = self.target.forward(&batch.next_obs);
            let chosen = if self.params.double {
                self.online.forward(&batch.next_obs).argmax(1, true)
            } else {
                next_q.argmax(1, true)
            };
            let best = next_q.gather(1, &chosen, false).squeeze_dim(1);
            &batch.rewards + self.params.gamma * (1.0 - &batch.dones) * best
        })
    }

    pub fn update(&mut self, batch: &Batch) -> f64 {
        let target = self.targets(batch);
        let q = self.online.forward(&batch.obs).gather(1, &batch.actions.unsqueeze(1), false).squeeze_dim(1);
        self.step(&q.smooth_l1_loss(&target, Reduction::Mean, 1.0))
    }

    /// The update with each row's loss weighted: the loss and the rows' absolute TD errors.
    pub fn update_weighted(&mut self, batch: &Batch, weights: &Tensor) -> Result<(f64, Vec<f32>)> {
        let target = self.targets(batch);
        let q = self.online.forward(&batch.obs).gather(1, &batch.actions.unsqueeze(1), false).squeeze_dim(1);
        let loss = (weights * q.smooth_l1_loss(&target, Reduction::None, 1.0)).mean(Kind::Float);
        let errors = (&q - &target).detach().abs();
        Ok((self.step(&loss), Vec::<f32>::try_from(&errors).map_err(tch_error)?))
    }

    fn step(&mut self, loss: &Tensor) -> f64 {
        self.optimizer.zero_grad();
        loss.backward();
        self.optimizer.clip_grad_norm(self.params.max_grad_norm);
        self.optimizer.step();
        f64::try_from(loss).unwrap_or(f64::NAN)
    }

    /// The action of largest value for one observation (argmax: the first on a tie).
    pub fn greedy(&self, observation: &[f32]) -> Result<usize> {
        let q = tch::no_grad(|| self.online.forward(&Tensor::from_slice(observation).unsqueeze(0)));
        Ok(q.argmax(1, false).int64_value(&[0]) as usize)
    }

    pub fn sync_target(&mut self) -> Result<()> {
        self.target_vs.copy(&self.online_vs).map_err(tch_error)
    }

    /// The online network's weights as safetensors (PyTorch's names).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.online_vs.save(path).map_err(tch_error)
    }
}

pub fn tch_error(e: tch::TchError) -> BenchError {
    BenchError::run(e.to_string())
}
