//! `CartPole-v1` (gymnasium 1.4 `classic_control/cartpole.py`): explicit Euler with tau 0.02,
//! reward 1 on every step (the terminating one included), a 500-step time limit. Every expression
//! keeps gymnasium's operand order, so the float64 results are the same bit for bit.
use crate::{Env, Step};

const GRAVITY: f64 = 9.8;
const MASSCART: f64 = 1.0;
const MASSPOLE: f64 = 0.1;
const LENGTH: f64 = 0.5; // half the pole's length
const FORCE_MAG: f64 = 10.0;
const TAU: f64 = 0.02;
const X_THRESHOLD: f64 = 2.4;

pub struct CartPole {
    state: [f64; 4],
    steps: u32,
}

impl Default for CartPole {
    fn default() -> Self {
        CartPole { state: [0.0; 4], steps: 0 }
    }
}

fn total_mass() -> f64 {
    MASSPOLE + MASSCART
}

fn polemass_length() -> f64 {
    MASSPOLE * LENGTH
}

fn theta_threshold_radians() -> f64 {
    12.0 * 2.0 * std::f64::consts::PI / 360.0
}

impl CartPole {
    fn observation(&self) -> Vec<f32> {
        self.state.iter().map(|&v| v as f32).collect()
    }
}

impl Env for CartPole {
    fn id(&self) -> &'static str {
        "CartPole-v1"
    }

    fn n_actions(&self) -> usize {
        2
    }

    fn state_dim(&self) -> usize {
        4
    }

    fn max_episode_steps(&self) -> u32 {
        500
    }

    fn reset_to(&mut self, state: &[f64]) -> Vec<f32> {
        self.state.copy_from_slice(&state[..4]);
        self.steps = 0;
        self.observation()
    }

    fn step(&mut self, action: usize) -> Step {
        let [x, x_dot, theta, theta_dot] = self.state;
        let force = if action == 1 { FORCE_MAG } else { -FORCE_MAG };
        let costheta = theta.cos();
        let sintheta = theta.sin();
        let temp = (force + polemass_length() * (theta_dot * theta_dot) * sintheta) / total_mass();
        let thetaacc = (GRAVITY * sintheta - costheta * temp)
            / (LENGTH * (4.0 / 3.0 - MASSPOLE * (costheta * costheta) / total_mass()));
        let xacc = temp - polemass_length() * thetaacc * costheta / total_mass();
        self.state =
            [x + TAU * x_dot, x_dot + TAU * xacc, theta + TAU * theta_dot, theta_dot + TAU * thetaacc];
        self.steps += 1;
        let [x, _, theta, _] = self.state;
        let limit = theta_threshold_radians();
        // gymnasium's comparisons as written: `!contains` would call a NaN state terminated, they do not
        #[allow(clippy::manual_range_contains)]
        let terminated = x < -X_THRESHOLD || x > X_THRESHOLD || theta < -limit || theta > limit;
        Step {
            observation: self.observation(),
            reward: 1.0,
            terminated,
            // gymnasium's TimeLimit: set at the limit whether or not the step also terminated
            truncated: self.steps >= self.max_episode_steps(),
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
    fn pushing_right_from_rest_tips_the_pole_left_and_ends_the_episode() {
        let mut env = CartPole::default();
        env.reset_to(&[0.0; 4]);
        let first = env.step(1);
        assert!(env.state()[1] > 0.0 && env.state()[3] < 0.0, "{:?}", env.state());
        assert_eq!(first.reward, 1.0);
        let steps = 1 + (0..499).take_while(|_| !env.step(1).terminated).count();
        assert!(steps < 20, "always pushing right should topple the pole within 20 steps, took {steps}");
    }

    #[test]
    fn the_time_limit_truncates_at_500_steps() {
        let mut env = CartPole::default();
        env.reset_to(&[0.0; 4]);
        let mut last = None;
        for step in 0..500 {
            let action = usize::from(env.state()[2] + 0.5 * env.state()[3] > 0.0); // balance
            let result = env.step(action);
            assert!(!result.terminated, "the balancing policy fell at step {step}");
            last = Some(result);
        }
        assert!(last.unwrap().truncated);
    }
}
