//! Rainbow's network and learner on tch, line by line the twin of python/tasks/rl/rainbow.py (read
//! its docstring): the MLP trunk, dueling noisy heads over `atoms` return values, the double
//! distributional target projected onto the support, the weighted cross-entropy, Adam and
//! global-norm clipping. The candle twin is candle_rainbow.rs.
use std::path::Path;

use bench_core::error::{BenchError, Result};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::learner::tch_error;

/// Rainbow's settings (python/tasks/rl/rainbow.py `RainbowParams`).
#[derive(Debug, Clone)]
pub struct RainbowParams {
    pub learning_rate: f64,
    pub max_grad_norm: f64,
    pub hidden: Vec<i64>,
    pub atoms: i64,
    pub v_min: f64,
    pub v_max: f64,
}

/// The support's values, z_j = v_min + j dz (f64, then f32), as every side computes them, and dz.
pub fn support(atoms: usize, v_min: f64, v_max: f64) -> (Vec<f32>, f64) {
    let delta = (v_max - v_min) / (atoms - 1) as f64;
    ((0..atoms).map(|j| (v_min + j as f64 * delta) as f32).collect(), delta)
}

/// The floats of a noise row (python/tasks/rl/rainbow.py `noise_size`): each network's value and
/// advantage eps_in and eps_out, online then target. A row of another length is a wrong fixture.
pub fn check_noise_row(row: &[f32], width: usize, actions: usize, atoms: usize) -> Result<()> {
    let expected = 2 * (width + atoms + width + actions * atoms);
    if row.len() != expected {
        return Err(BenchError::usage(format!(
            "fixtures_dir: a noise row of {} floats does not fit the network's {expected}",
            row.len()
        )));
    }
    Ok(())
}

/// A noisy layer: weight = mu + sigma (eps_out eps_in^T), bias = mu + sigma eps_out.
#[derive(Debug)]
struct NoisyLinear {
    weight_mu: Tensor,
    weight_sigma: Tensor,
    bias_mu: Tensor,
    bias_sigma: Tensor,
    eps_in: Tensor,
    eps_out: Tensor,
}

impl NoisyLinear {
    fn new(vs: &nn::Path, inputs: i64, outputs: i64) -> Self {
        let zero = nn::Init::Const(0.0);
        NoisyLinear {
            weight_mu: vs.var("weight_mu", &[outputs, inputs], zero),
            weight_sigma: vs.var("weight_sigma", &[outputs, inputs], zero),
            bias_mu: vs.var("bias_mu", &[outputs], zero),
            bias_sigma: vs.var("bias_sigma", &[outputs], zero),
            eps_in: Tensor::zeros([inputs], (Kind::Float, Device::Cpu)),
            eps_out: Tensor::zeros([outputs], (Kind::Float, Device::Cpu)),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let weight = &self.weight_mu + &self.weight_sigma * self.eps_out.outer(&self.eps_in);
        let bias = &self.bias_mu + &self.bias_sigma * &self.eps_out;
        x.linear(&weight, Some(&bias))
    }

    /// eps_in and eps_out from the front of `noise`; the floats taken.
    fn set_noise(&mut self, noise: &[f32]) -> usize {
        let (inputs, outputs) = (self.eps_in.size()[0] as usize, self.eps_out.size()[0] as usize);
        self.eps_in = Tensor::from_slice(&noise[..inputs]);
        self.eps_out = Tensor::from_slice(&noise[inputs..inputs + outputs]);
        inputs + outputs
    }
}

/// The trunk (`trunk.0`, `trunk.2`, ...) and the noisy `value` and `advantage` heads.
#[derive(Debug)]
struct RainbowNetwork {
    trunk: Vec<nn::Linear>,
    value: NoisyLinear,
    advantage: NoisyLinear,
    actions: i64,
    atoms: i64,
}

impl RainbowNetwork {
    fn new(vs: &nn::Path, observations: i64, actions: i64, params: &RainbowParams) -> Self {
        let mut trunk = Vec::new();
        let mut width = observations;
        for (i, &size) in params.hidden.iter().enumerate() {
            trunk.push(nn::linear(vs / "trunk" / (2 * i).to_string(), width, size, Default::default()));
            width = size;
        }
        RainbowNetwork {
            trunk,
            value: NoisyLinear::new(&(vs / "value"), width, params.atoms),
            advantage: NoisyLinear::new(&(vs / "advantage"), width, actions * params.atoms),
            actions,
            atoms: params.atoms,
        }
    }

    /// The logits of each action's return distribution: B x actions x atoms.
    fn forward(&self, obs: &Tensor) -> Tensor {
        let features = self.trunk.iter().fold(obs.shallow_clone(), |x, layer| x.apply(layer).relu());
        let value = self.value.forward(&features).view([-1, 1, self.atoms]);
        let advantage = self.advantage.forward(&features).view([-1, self.actions, self.atoms]);
        value + &advantage - advantage.mean_dim(1, true, Kind::Float)
    }

    /// The noisy layers' noise from one network's part of a noise row; the floats taken.
    fn set_noise(&mut self, noise: &[f32]) -> usize {
        let taken = self.value.set_noise(noise);
        taken + self.advantage.set_noise(&noise[taken..])
    }
}

/// A batch of n-step transitions (python/tasks/rl/rainbow.py `Batch`).
pub struct Batch {
    pub obs: Tensor,
    pub actions: Tensor,
    pub rewards: Tensor,
    pub next_obs: Tensor,
    pub dones: Tensor,
    pub discounts: Tensor,
}

pub struct RainbowLearner {
    online_vs: nn::VarStore,
    online: RainbowNetwork,
    target_vs: nn::VarStore,
    target: RainbowNetwork,
    optimizer: nn::Optimizer,
    params: RainbowParams,
    support: Tensor,
    positions: Tensor,
    delta: f64,
}

impl RainbowLearner {
    /// The online network from the shared initial weights, the target a copy, and the optimizer.
    pub fn new(observations: i64, actions: i64, params: RainbowParams, weights: &Path) -> Result<Self> {
        let mut online_vs = nn::VarStore::new(Device::Cpu);
        let online = RainbowNetwork::new(&online_vs.root(), observations, actions, &params);
        online_vs
            .load(weights)
            .map_err(|e| BenchError::usage(format!("--weights: {}: {e}", weights.display())))?;
        let mut target_vs = nn::VarStore::new(Device::Cpu);
        let target = RainbowNetwork::new(&target_vs.root(), observations, actions, &params);
        target_vs.copy(&online_vs).map_err(tch_error)?;
        let optimizer = nn::Adam::default().build(&online_vs, params.learning_rate).map_err(tch_error)?;
        let (support, delta) = support(params.atoms as usize, params.v_min, params.v_max);
        let support = Tensor::from_slice(&support);
        let positions = Tensor::arange(params.atoms, (Kind::Float, Device::Cpu));
        Ok(RainbowLearner {
            online_vs,
            online,
            target_vs,
            target,
            optimizer,
            params,
            support,
            positions,
            delta,
        })
    }

    /// The online network's noise, then the target network's, from one noise row.
    pub fn set_noise(&mut self, row: &[f32]) -> Result<()> {
        let width = *self.params.hidden.last().expect("at least one hidden layer") as usize;
        check_noise_row(row, width, self.online.actions as usize, self.params.atoms as usize)?;
        let taken = self.online.set_noise(row);
        self.target.set_noise(&row[taken..]);
        Ok(())
    }

    fn q_values(&self, net: &RainbowNetwork, obs: &Tensor) -> Tensor {
        (net.forward(obs).softmax(2, Kind::Float) * &self.support).sum_dim_intlist(2, false, Kind::Float)
    }

    /// The target distribution m of each row: B x atoms.
    fn projected(&self, batch: &Batch) -> Tensor {
        tch::no_grad(|| {
            let atoms = self.params.atoms;
            let chosen = self.q_values(&self.online, &batch.next_obs).argmax(1, false);
            let index = chosen.view([-1, 1, 1]).expand([-1, 1, atoms], false);
            let next_p = self
                .target
                .forward(&batch.next_obs)
                .softmax(2, Kind::Float)
                .gather(1, &index, false)
                .squeeze_dim(1);
            let scale = &batch.discounts * batch.dones.neg().g_add_scalar(1.0);
            let tz = batch.rewards.unsqueeze(1) + scale.unsqueeze(1) * self.support.unsqueeze(0);
            let b = (tz.clamp(self.params.v_min, self.params.v_max) - self.params.v_min) / self.delta;
            let distance: Tensor = (b.unsqueeze(2) - self.positions.view([1, 1, -1])).abs();
            let spread = distance.neg().g_add_scalar(1.0).clamp_min(0.0);
            (next_p.unsqueeze(2) * spread).sum_dim_intlist(1, false, Kind::Float)
        })
    }

    /// One update: the weighted loss and each row's cross-entropy (its new priority).
    pub fn update_weighted(&mut self, batch: &Batch, weights: &Tensor) -> Result<(f64, Vec<f32>)> {
        let m = self.projected(batch);
        let index = batch.actions.view([-1, 1, 1]).expand([-1, 1, self.params.atoms], false);
        let log_p = self
            .online
            .forward(&batch.obs)
            .log_softmax(2, Kind::Float)
            .gather(1, &index, false)
            .squeeze_dim(1);
        let losses = -(m * log_p).sum_dim_intlist(1, false, Kind::Float);
        let loss = (weights * &losses).mean(Kind::Float);
        self.optimizer.zero_grad();
        loss.backward();
        self.optimizer.clip_grad_norm(self.params.max_grad_norm);
        self.optimizer.step();
        let errors = Vec::<f32>::try_from(&losses.detach()).map_err(tch_error)?;
        Ok((f64::try_from(&loss).unwrap_or(f64::NAN), errors))
    }

    /// The action of largest Q for one observation (argmax: the first on a tie).
    pub fn greedy(&self, observation: &[f32]) -> Result<usize> {
        let q = tch::no_grad(|| self.q_values(&self.online, &Tensor::from_slice(observation).unsqueeze(0)));
        Ok(q.argmax(1, false).int64_value(&[0]) as usize)
    }

    pub fn sync_target(&mut self) -> Result<()> {
        self.target_vs.copy(&self.online_vs).map_err(tch_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_support_and_a_noise_row_have_their_sizes() {
        assert_eq!(support(5, -2.0, 2.0), (vec![-2.0, -1.0, 0.0, 1.0, 2.0], 1.0));
        let fits = 2 * (64 + 51 + 64 + 2 * 51);
        assert!(check_noise_row(&vec![0.0; fits], 64, 2, 51).is_ok());
        let short = check_noise_row(&vec![0.0; fits - 1], 64, 2, 51).unwrap_err();
        assert!(short.to_string().contains("a noise row of 561 floats does not fit the network's 562"));
    }
}
