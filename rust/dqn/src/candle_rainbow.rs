//! Rainbow's network and learner on candle, the second Rust twin of python/tasks/rl/rainbow.py (read
//! its docstring); rainbow.rs is the tch twin, with the same names and steps. candle lacks noisy
//! layers and PyTorch's global-norm clipping: the layer is written here, the clipping is rl-twins'.
use std::path::Path;

use bench_core::error::{BenchError, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Init, Linear, Module, Optimizer, VarBuilder, VarMap};
use rl_twins::candle_util::{candle_error, clip_grad_norm};

use crate::rainbow::{check_noise_row, support, RainbowParams};

/// A noisy layer: weight = mu + sigma (eps_out eps_in^T), bias = mu + sigma eps_out.
struct NoisyLinear {
    weight_mu: Tensor,
    weight_sigma: Tensor,
    bias_mu: Tensor,
    bias_sigma: Tensor,
    eps_in: Tensor,
    eps_out: Tensor,
}

impl NoisyLinear {
    fn new(vb: VarBuilder, inputs: usize, outputs: usize) -> candle_core::Result<Self> {
        let zero = Init::Const(0.0);
        Ok(NoisyLinear {
            weight_mu: vb.get_with_hints((outputs, inputs), "weight_mu", zero)?,
            weight_sigma: vb.get_with_hints((outputs, inputs), "weight_sigma", zero)?,
            bias_mu: vb.get_with_hints(outputs, "bias_mu", zero)?,
            bias_sigma: vb.get_with_hints(outputs, "bias_sigma", zero)?,
            eps_in: Tensor::zeros(inputs, DType::F32, &Device::Cpu)?,
            eps_out: Tensor::zeros(outputs, DType::F32, &Device::Cpu)?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let outer = self.eps_out.unsqueeze(1)?.broadcast_mul(&self.eps_in.unsqueeze(0)?)?;
        let weight = (&self.weight_mu + (&self.weight_sigma * outer)?)?;
        let bias = (&self.bias_mu + (&self.bias_sigma * &self.eps_out)?)?;
        Linear::new(weight, Some(bias)).forward(x)
    }

    /// eps_in and eps_out from the front of `noise`; the floats taken.
    fn set_noise(&mut self, noise: &[f32]) -> candle_core::Result<usize> {
        let (inputs, outputs) = (self.eps_in.dim(0)?, self.eps_out.dim(0)?);
        self.eps_in = Tensor::from_slice(&noise[..inputs], inputs, &Device::Cpu)?;
        self.eps_out = Tensor::from_slice(&noise[inputs..inputs + outputs], outputs, &Device::Cpu)?;
        Ok(inputs + outputs)
    }
}

/// The trunk (`trunk.0`, `trunk.2`, ...) and the noisy `value` and `advantage` heads.
struct RainbowNetwork {
    trunk: Vec<Linear>,
    value: NoisyLinear,
    advantage: NoisyLinear,
    actions: usize,
    atoms: usize,
}

impl RainbowNetwork {
    fn new(
        vb: &VarBuilder,
        observations: usize,
        actions: usize,
        params: &RainbowParams,
    ) -> candle_core::Result<Self> {
        let mut trunk = Vec::new();
        let mut width = observations;
        for (i, &size) in params.hidden.iter().enumerate() {
            let size = size as usize;
            trunk.push(candle_nn::linear(width, size, vb.pp("trunk").pp(2 * i))?);
            width = size;
        }
        let atoms = params.atoms as usize;
        Ok(RainbowNetwork {
            trunk,
            value: NoisyLinear::new(vb.pp("value"), width, atoms)?,
            advantage: NoisyLinear::new(vb.pp("advantage"), width, actions * atoms)?,
            actions,
            atoms,
        })
    }

    /// The logits of each action's return distribution: B x actions x atoms.
    fn forward(&self, obs: &Tensor) -> candle_core::Result<Tensor> {
        let mut features = obs.clone();
        for layer in &self.trunk {
            features = layer.forward(&features)?.relu()?;
        }
        let rows = features.dim(0)?;
        let value = self.value.forward(&features)?.reshape((rows, 1, self.atoms))?;
        let advantage = self.advantage.forward(&features)?.reshape((rows, self.actions, self.atoms))?;
        let mean = advantage.mean_keepdim(1)?;
        value.broadcast_add(&advantage)?.broadcast_sub(&mean)
    }

    fn set_noise(&mut self, noise: &[f32]) -> candle_core::Result<usize> {
        let taken = self.value.set_noise(noise)?;
        Ok(taken + self.advantage.set_noise(&noise[taken..])?)
    }
}

/// The candle arm's batch of n-step transitions (python/tasks/rl/rainbow.py `Batch`).
pub struct Batch {
    pub obs: Tensor,
    pub actions: Tensor,
    pub rewards: Tensor,
    pub next_obs: Tensor,
    pub dones: Tensor,
    pub discounts: Tensor,
}

pub struct RainbowLearner {
    online_vars: VarMap,
    online: RainbowNetwork,
    target_vars: VarMap,
    target: RainbowNetwork,
    optimizer: candle_nn::AdamW,
    params: RainbowParams,
    support: Tensor,
    positions: Tensor,
    delta: Tensor,
}

fn network(observations: usize, actions: usize, params: &RainbowParams) -> Result<(VarMap, RainbowNetwork)> {
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
    let net = RainbowNetwork::new(&vb, observations, actions, params).map_err(candle_error)?;
    Ok((vars, net))
}

/// Gather `index` (B, u32 or i64) along dim 1 of a B x actions x atoms tensor: B x atoms.
fn pick(distributions: &Tensor, index: &Tensor, atoms: usize) -> candle_core::Result<Tensor> {
    let rows = index.dim(0)?;
    let index = index.reshape((rows, 1, 1))?.broadcast_as((rows, 1, atoms))?.contiguous()?;
    distributions.gather(&index, 1)?.squeeze(1)
}

impl RainbowLearner {
    /// The online network from the shared initial weights, the target a copy, and the optimizer.
    pub fn new(observations: usize, actions: usize, params: RainbowParams, weights: &Path) -> Result<Self> {
        let (mut online_vars, online) = network(observations, actions, &params)?;
        online_vars
            .load(weights)
            .map_err(|e| BenchError::usage(format!("--weights: {}: {e}", weights.display())))?;
        let (target_vars, target) = network(observations, actions, &params)?;
        crate::candle_learner::copy_vars(&online_vars, &target_vars)?;
        let optimizer = rl_twins::candle_util::adam(online_vars.all_vars(), params.learning_rate, 1e-8)?;
        let atoms = params.atoms as usize;
        let (support, positions, delta) = (|| {
            let (values, delta) = support(atoms, params.v_min, params.v_max);
            let support = Tensor::from_slice(&values, atoms, &Device::Cpu)?;
            let positions = Tensor::arange(0u32, atoms as u32, &Device::Cpu)?.to_dtype(DType::F32)?;
            let delta = Tensor::new(delta as f32, &Device::Cpu)?;
            Ok::<_, candle_core::Error>((support, positions, delta))
        })()
        .map_err(candle_error)?;
        Ok(RainbowLearner {
            online_vars,
            online,
            target_vars,
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
        check_noise_row(row, width, self.online.actions, self.params.atoms as usize)?;
        let taken = self.online.set_noise(row).map_err(candle_error)?;
        self.target.set_noise(&row[taken..]).map_err(candle_error)?;
        Ok(())
    }

    fn q_values(&self, net: &RainbowNetwork, obs: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::softmax_last_dim(&net.forward(obs)?)?.broadcast_mul(&self.support)?.sum(2)
    }

    /// The target distribution m of each row: B x atoms.
    fn projected(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        let atoms = self.params.atoms as usize;
        let chosen = self.q_values(&self.online, &batch.next_obs)?.detach().argmax(1)?;
        let next = candle_nn::ops::softmax_last_dim(&self.target.forward(&batch.next_obs)?.detach())?;
        let next_p = pick(&next, &chosen, atoms)?;
        let scale = (&batch.discounts * batch.dones.affine(-1.0, 1.0)?)?;
        let tz = batch
            .rewards
            .unsqueeze(1)?
            .broadcast_add(&scale.unsqueeze(1)?.broadcast_mul(&self.support.unsqueeze(0)?)?)?;
        let b = (tz.clamp(self.params.v_min, self.params.v_max)? - self.params.v_min)?
            .broadcast_div(&self.delta)?;
        let distance = b.unsqueeze(2)?.broadcast_sub(&self.positions.reshape((1, 1, atoms))?)?.abs()?;
        let spread = distance.affine(-1.0, 1.0)?.relu()?;
        next_p.unsqueeze(2)?.broadcast_mul(&spread)?.sum(1)
    }

    /// One update: the weighted loss and each row's cross-entropy (its new priority).
    pub fn update_weighted(&mut self, batch: &Batch, weights: &Tensor) -> Result<(f64, Vec<f32>)> {
        let (loss, errors) = (|| {
            let m = self.projected(batch)?;
            let log_all = candle_nn::ops::log_softmax(&self.online.forward(&batch.obs)?, D::Minus1)?;
            let log_p = pick(&log_all, &batch.actions, self.params.atoms as usize)?;
            let losses = (m * log_p)?.sum(1)?.neg()?;
            let loss = (weights * &losses)?.mean_all()?;
            Ok::<_, candle_core::Error>((loss, losses.detach().to_vec1::<f32>()?))
        })()
        .map_err(candle_error)?;
        let mut grads = loss.backward().map_err(candle_error)?;
        clip_grad_norm(&mut grads, &self.online_vars.all_vars(), self.params.max_grad_norm)
            .map_err(candle_error)?;
        self.optimizer.step(&grads).map_err(candle_error)?;
        Ok((loss.to_scalar::<f32>().map(f64::from).map_err(candle_error)?, errors))
    }

    /// The action of largest Q for one observation (argmax: the first on a tie).
    pub fn greedy(&self, observation: &[f32]) -> Result<usize> {
        (|| {
            let obs = Tensor::from_slice(observation, (1, observation.len()), &Device::Cpu)?;
            self.q_values(&self.online, &obs)?.argmax(1)?.squeeze(0)?.to_scalar::<u32>()
        })()
        .map(|a| a as usize)
        .map_err(candle_error)
    }

    pub fn sync_target(&mut self) -> Result<()> {
        crate::candle_learner::copy_vars(&self.online_vars, &self.target_vars)
    }
}
