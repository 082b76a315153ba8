//! The protocol's actor-critic agent (bench-core's policy.rs `ActorCriticAgent`) on a tch or a candle
//! learner: the rollout (row-major vectors) becomes the framework's tensors, as PyTorch's agent turns
//! numpy rows into torch tensors (python/tasks/rl/a2c.py `TorchAgent`). A2C's and PPO's learners
//! differ only in `update`.
use crate::candle_util::candle_error;
use crate::{candle_net, tch_net};
use bench_core::config::Job;
use bench_core::error::Result;
use bench_core::policy::{ActorCriticAgent, Rollout};

/// A rollout as tch tensors; `order` (n_epochs x steps, i64) is empty outside the minibatches loop.
pub struct TchRollout {
    pub obs: tch::Tensor,
    pub actions: tch::Tensor,
    pub returns: tch::Tensor,
    pub advantages: tch::Tensor,
    pub order: tch::Tensor,
}

/// A rollout as candle tensors; `order` (n_epochs x steps, i64) is None outside the minibatches loop.
pub struct CandleRollout {
    pub obs: candle_core::Tensor,
    pub actions: candle_core::Tensor,
    pub returns: candle_core::Tensor,
    pub advantages: candle_core::Tensor,
    pub order: Option<candle_core::Tensor>,
}

pub trait TchLearner {
    fn net(&self) -> &tch_net::ActorCritic;
    /// One update on a rollout; the loss.
    fn update(&mut self, rollout: &TchRollout) -> Result<f64>;
}

pub trait CandleLearner {
    fn net(&self) -> &candle_net::ActorCritic;
    /// One update on a rollout; the loss.
    fn update(&mut self, rollout: &CandleRollout) -> Result<f64>;
}

struct TchAgent<L>(L);

impl<L: TchLearner> ActorCriticAgent for TchAgent<L> {
    fn act(&mut self, observation: &[f32]) -> Result<(Vec<f32>, f32)> {
        self.0.net().act(observation)
    }

    fn values(&mut self, observations: &[f32], rows: usize) -> Result<Vec<f32>> {
        self.0.net().values(observations, rows)
    }

    fn update(&mut self, rollout: &Rollout) -> Result<f64> {
        use tch::Tensor;
        let (n, d) = (rollout.steps as i64, rollout.observations as i64);
        let order: Vec<i64> = rollout.order.iter().map(|&row| i64::from(row)).collect();
        self.0.update(&TchRollout {
            obs: Tensor::from_slice(&rollout.obs).view([n, d]),
            actions: Tensor::from_slice(&rollout.actions),
            returns: Tensor::from_slice(&rollout.returns),
            advantages: Tensor::from_slice(&rollout.advantages),
            order: Tensor::from_slice(&order).view([-1, n]),
        })
    }
}

struct CandleAgent<L>(L);

impl<L: CandleLearner> ActorCriticAgent for CandleAgent<L> {
    fn act(&mut self, observation: &[f32]) -> Result<(Vec<f32>, f32)> {
        self.0.net().act(observation)
    }

    fn values(&mut self, observations: &[f32], rows: usize) -> Result<Vec<f32>> {
        self.0.net().values(observations, rows)
    }

    fn update(&mut self, rollout: &Rollout) -> Result<f64> {
        use candle_core::{Device, Tensor};
        let (n, d) = (rollout.steps, rollout.observations);
        let tensors = (|| {
            let order = if rollout.order.is_empty() {
                None
            } else {
                let order: Vec<i64> = rollout.order.iter().map(|&row| i64::from(row)).collect();
                Some(Tensor::from_vec(order, (rollout.order.len() / n, n), &Device::Cpu)?)
            };
            Ok::<_, candle_core::Error>(CandleRollout {
                obs: Tensor::from_slice(&rollout.obs, (n, d), &Device::Cpu)?,
                actions: Tensor::from_slice(&rollout.actions, n, &Device::Cpu)?,
                returns: Tensor::from_slice(&rollout.returns, n, &Device::Cpu)?,
                advantages: Tensor::from_slice(&rollout.advantages, n, &Device::Cpu)?,
                order,
            })
        })()
        .map_err(candle_error)?;
        self.0.update(&tensors)
    }
}

/// The job's framework's agent from `tch` or `candle`'s learner (`on_framework`).
pub fn build<T: TchLearner + 'static, C: CandleLearner + 'static>(
    job: &Job,
    tch: impl FnOnce() -> Result<T>,
    candle: impl FnOnce() -> Result<C>,
) -> Result<Box<dyn ActorCriticAgent>> {
    crate::on_framework(
        job,
        || Ok(Box::new(TchAgent(tch()?)) as Box<dyn ActorCriticAgent>),
        || Ok(Box::new(CandleAgent(candle()?)) as Box<dyn ActorCriticAgent>),
    )
}
