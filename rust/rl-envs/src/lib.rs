//! Classic-control environments ported step-exact from gymnasium 1.4 (`CartPole-v1`,
//! `Acrobot-v1`): the same constants, the same integrator and the same floating-point operations
//! in the same order, so a trajectory from the same start state under the same actions matches
//! gymnasium's to rounding (tests/test_rl_envs.py replays 10,000 steps on both sides). No
//! maintained pure-Rust crate has both. Beside them, `SyntheticChain-v0`, the synthetic
//! environment defined in configs/environments.yaml (python/mlbench/synthetic_env.py is its twin).
//! Start states are injected (`reset_to`), never drawn here: both sides read them from one shared
//! file, so neither depends on the other's random generator.
pub mod acrobot;
pub mod cartpole;
pub mod chain;

pub use acrobot::Acrobot;
pub use cartpole::CartPole;
pub use chain::SyntheticChain;

/// What one step returns, as gymnasium's `step` does (the observation as float32).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub observation: Vec<f32>,
    pub reward: f64,
    pub terminated: bool,
    /// The time limit (`max_episode_steps` of the registered environment) was reached.
    pub truncated: bool,
}

/// An environment with a discrete action space and an injected start state.
pub trait Env {
    /// gymnasium's id, e.g. `CartPole-v1`.
    fn id(&self) -> &'static str;
    fn n_actions(&self) -> usize;
    /// Length of the internal state (`env.unwrapped.state` in gymnasium).
    fn state_dim(&self) -> usize;
    /// The time limit gymnasium registers the environment with.
    fn max_episode_steps(&self) -> u32;
    /// Start an episode from `state` (gymnasium: `reset()`, then `env.unwrapped.state = state`).
    fn reset_to(&mut self, state: &[f64]) -> Vec<f32>;
    fn step(&mut self, action: usize) -> Step;
    /// The internal state, float64 as gymnasium keeps it.
    fn state(&self) -> &[f64];
}

/// The environments by name (the task spec's `environment` values).
pub fn make(name: &str) -> Option<Box<dyn Env>> {
    match name {
        "CartPole-v1" => Some(Box::new(CartPole::default())),
        "Acrobot-v1" => Some(Box::new(Acrobot::default())),
        "SyntheticChain-v0" => Some(Box::new(SyntheticChain::default())),
        _ => None,
    }
}

/// The names `make` knows.
pub const NAMES: [&str; 3] = ["CartPole-v1", "Acrobot-v1", "SyntheticChain-v0"];

/// The `train_agent` protocol's view of a ported environment (bench-core's agents.rs).
impl bench_core::agents::Environment for Box<dyn Env> {
    fn reset_to(&mut self, state: &[f64]) -> Vec<f32> {
        self.as_mut().reset_to(state)
    }

    fn step(&mut self, action: usize) -> (Vec<f32>, f64, bool, bool) {
        let Step { observation, reward, terminated, truncated } = self.as_mut().step(action);
        (observation, reward, terminated, truncated)
    }

    fn n_actions(&self) -> usize {
        self.as_ref().n_actions()
    }
}
