//! `Acrobot-v1` (gymnasium 1.4 `classic_control/acrobot.py`): the book dynamics, one RK4 step of
//! dt 0.2 over the state augmented with the torque, angles wrapped to [-pi, pi], velocities clipped,
//! reward -1 until the tip is one link above the pivot, a 500-step time limit. Every expression
//! keeps gymnasium's operand order, so the float64 results are the same bit for bit.
use std::f64::consts::PI;

use crate::{Env, Step};

const DT: f64 = 0.2;
const LINK_LENGTH_1: f64 = 1.0;
const LINK_MASS_1: f64 = 1.0;
const LINK_MASS_2: f64 = 1.0;
const LINK_COM_POS_1: f64 = 0.5;
const LINK_COM_POS_2: f64 = 0.5;
const LINK_MOI: f64 = 1.0;
const AVAIL_TORQUE: [f64; 3] = [-1.0, 0.0, 1.0];

fn max_vel_1() -> f64 {
    4.0 * PI
}

fn max_vel_2() -> f64 {
    9.0 * PI
}

pub struct Acrobot {
    state: [f64; 4],
    steps: u32,
}

impl Default for Acrobot {
    fn default() -> Self {
        Acrobot { state: [0.0; 4], steps: 0 }
    }
}

/// gymnasium's `x**2` on a float64: libm's `pow(x, 2.0)`, which is not always `x * x` (glibc's
/// pow errs by up to 0.52 ulp: measured, 159 of 200,000 normal draws differ from the correctly
/// rounded product). `black_box` keeps LLVM from rewriting the call as a multiplication. The
/// constants' squares (0.5, 1.0) are exact either way.
fn py_square(x: f64) -> f64 {
    x.powf(std::hint::black_box(2.0))
}

/// The derivative of the augmented state (theta1, theta2, dtheta1, dtheta2, torque).
fn dsdt(s: &[f64; 5]) -> [f64; 5] {
    let (m1, m2, l1, lc1, lc2, i1, i2, g) =
        (LINK_MASS_1, LINK_MASS_2, LINK_LENGTH_1, LINK_COM_POS_1, LINK_COM_POS_2, LINK_MOI, LINK_MOI, 9.8);
    let a = s[4];
    let (theta1, theta2, dtheta1, dtheta2) = (s[0], s[1], s[2], s[3]);
    let d1 = m1 * (lc1 * lc1) + m2 * ((l1 * l1) + (lc2 * lc2) + 2.0 * l1 * lc2 * theta2.cos()) + i1 + i2;
    let d2 = m2 * ((lc2 * lc2) + l1 * lc2 * theta2.cos()) + i2;
    let phi2 = m2 * lc2 * g * (theta1 + theta2 - PI / 2.0).cos();
    let phi1 = -m2 * l1 * lc2 * py_square(dtheta2) * theta2.sin()
        - 2.0 * m2 * l1 * lc2 * dtheta2 * dtheta1 * theta2.sin()
        + (m1 * lc1 + m2 * l1) * g * (theta1 - PI / 2.0).cos()
        + phi2;
    let ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * py_square(dtheta1) * theta2.sin() - phi2)
        / (m2 * (lc2 * lc2) + i2 - py_square(d2) / d1);
    let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    [dtheta1, dtheta2, ddtheta1, ddtheta2, 0.0]
}

/// `y + h * k`, element by element.
fn shifted(y: &[f64; 5], h: f64, k: &[f64; 5]) -> [f64; 5] {
    std::array::from_fn(|i| y[i] + h * k[i])
}

/// gymnasium's `rk4(derivs, y0, [0, dt])`: one classical Runge-Kutta step.
fn rk4(y0: &[f64; 5], dt: f64) -> [f64; 5] {
    let dt2 = dt / 2.0;
    let k1 = dsdt(y0);
    let k2 = dsdt(&shifted(y0, dt2, &k1));
    let k3 = dsdt(&shifted(y0, dt2, &k2));
    let k4 = dsdt(&shifted(y0, dt, &k3));
    std::array::from_fn(|i| y0[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// gymnasium's `wrap`: shift by the range's width until x lies in [m, big_m].
fn wrap(mut x: f64, m: f64, big_m: f64) -> f64 {
    let diff = big_m - m;
    while x > big_m {
        x -= diff;
    }
    while x < m {
        x += diff;
    }
    x
}

/// gymnasium's `bound`: Python's `min(max(x, m), big_m)`.
fn bound(x: f64, m: f64, big_m: f64) -> f64 {
    let low = if m > x { m } else { x };
    if big_m < low {
        big_m
    } else {
        low
    }
}

impl Acrobot {
    fn observation(&self) -> Vec<f32> {
        let s = &self.state;
        [s[0].cos(), s[0].sin(), s[1].cos(), s[1].sin(), s[2], s[3]].iter().map(|&v| v as f32).collect()
    }

    fn terminal(&self) -> bool {
        let s = &self.state;
        -s[0].cos() - (s[1] + s[0]).cos() > 1.0
    }
}

impl Env for Acrobot {
    fn id(&self) -> &'static str {
        "Acrobot-v1"
    }

    fn n_actions(&self) -> usize {
        3
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
        let s = self.state;
        let augmented = [s[0], s[1], s[2], s[3], AVAIL_TORQUE[action]];
        let ns = rk4(&augmented, DT);
        self.state = [
            wrap(ns[0], -PI, PI),
            wrap(ns[1], -PI, PI),
            bound(ns[2], -max_vel_1(), max_vel_1()),
            bound(ns[3], -max_vel_2(), max_vel_2()),
        ];
        self.steps += 1;
        let terminated = self.terminal();
        Step {
            observation: self.observation(),
            reward: if terminated { 0.0 } else { -1.0 },
            terminated,
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
    fn hanging_still_with_no_torque_stays_still() {
        let mut env = Acrobot::default();
        env.reset_to(&[0.0; 4]);
        let step = env.step(1);
        // cos(-pi/2) is 6e-17, not 0, in float64: gravity's torque at rest is that small, as in gymnasium
        assert!(env.state().iter().all(|v| v.abs() < 1e-15), "{:?}", env.state());
        assert_eq!((step.reward, step.terminated), (-1.0, false));
    }

    #[test]
    fn wrap_and_bound_follow_gymnasium() {
        assert_eq!(wrap(3.5 * PI, -PI, PI), 3.5 * PI - 2.0 * PI - 2.0 * PI); // shifted twice, to -pi/2
        assert_eq!(wrap(-1.5 * PI, -PI, PI), -1.5 * PI + 2.0 * PI);
        assert_eq!(wrap(0.5, -PI, PI), 0.5);
        assert_eq!(bound(100.0, -max_vel_1(), max_vel_1()), max_vel_1());
        assert_eq!(bound(-100.0, -max_vel_1(), max_vel_1()), -max_vel_1());
    }

    #[test]
    fn the_tip_above_the_line_terminates() {
        let mut env = Acrobot::default();
        env.reset_to(&[PI - 0.01, 0.0, 0.0, 0.0]); // pointing up: -cos(theta1) - cos(theta1 + theta2) near 2
        assert!(env.terminal());
    }
}
