//! `SyntheticChain-v0`, the synthetic environment of configs/environments.yaml (compiled in), as
//! python/mlbench/synthetic_env.py defines it from the same file: positions 0..n-1, action 0 moves
//! left (staying at 0 against the wall), 1 moves right; every step earns `step_reward`, and the
//! step that reaches the last position also earns `goal_reward` and terminates the episode. The
//! observation is the one-hot position; the state is the position as one float64.
use serde::Deserialize;

use crate::{Env, Step};

const DEFINITION: &str = include_str!("../../../configs/environments.yaml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    pub positions: usize,
    pub step_reward: f64,
    pub goal_reward: f64,
    pub max_episode_steps: u32,
    pub start_low: usize,
    pub start_high: usize,
}

#[derive(Debug, Deserialize)]
struct Definitions {
    #[serde(rename = "SyntheticChain-v0")]
    chain: ChainSpec,
}

/// The chain's definition from configs/environments.yaml.
pub fn chain_spec() -> ChainSpec {
    let definitions: Definitions =
        serde_yaml_ng::from_str(DEFINITION).expect("configs/environments.yaml defines SyntheticChain-v0");
    definitions.chain
}

pub struct SyntheticChain {
    spec: ChainSpec,
    state: [f64; 1],
    steps: u32,
}

impl Default for SyntheticChain {
    fn default() -> Self {
        SyntheticChain { spec: chain_spec(), state: [0.0], steps: 0 }
    }
}

impl SyntheticChain {
    fn observation(&self) -> Vec<f32> {
        let mut one_hot = vec![0.0; self.spec.positions];
        one_hot[self.state[0] as usize] = 1.0;
        one_hot
    }
}

impl Env for SyntheticChain {
    fn id(&self) -> &'static str {
        "SyntheticChain-v0"
    }

    fn n_actions(&self) -> usize {
        2
    }

    fn state_dim(&self) -> usize {
        1
    }

    fn max_episode_steps(&self) -> u32 {
        self.spec.max_episode_steps
    }

    fn reset_to(&mut self, state: &[f64]) -> Vec<f32> {
        self.state = [state[0]];
        self.steps = 0;
        self.observation()
    }

    fn step(&mut self, action: usize) -> Step {
        let position = self.state[0] as usize;
        let position = if action == 1 { position + 1 } else { position.saturating_sub(1) };
        self.state = [position as f64];
        self.steps += 1;
        let terminated = position == self.spec.positions - 1;
        let reward = self.spec.step_reward + if terminated { self.spec.goal_reward } else { 0.0 };
        Step {
            observation: self.observation(),
            reward,
            terminated,
            truncated: self.steps >= self.spec.max_episode_steps,
        }
    }

    fn state(&self) -> &[f64] {
        &self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_right_earns_the_optimal_return() {
        let spec = chain_spec();
        let mut env = SyntheticChain::default();
        for start in spec.start_low..=spec.start_high {
            env.reset_to(&[start as f64]);
            let mut total = 0.0;
            let mut steps = 0;
            loop {
                let step = env.step(1);
                total += step.reward;
                steps += 1;
                if step.terminated {
                    break;
                }
            }
            assert_eq!(steps, spec.positions - 1 - start);
            let optimal = spec.goal_reward + spec.step_reward * steps as f64;
            assert!((total - optimal).abs() < 1e-12, "from {start}: {total} vs {optimal}");
        }
    }

    #[test]
    fn the_wall_holds_and_the_time_limit_truncates() {
        let mut env = SyntheticChain::default();
        env.reset_to(&[0.0]);
        let mut last = None;
        for _ in 0..chain_spec().max_episode_steps {
            let step = env.step(0);
            assert_eq!(env.state()[0], 0.0);
            assert!(!step.terminated);
            last = Some(step);
        }
        assert!(last.unwrap().truncated);
    }
}
