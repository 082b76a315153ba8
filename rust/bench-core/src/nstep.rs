//! n-step returns for the off-policy loops of the `train_agent` protocol (agents.rs); mirrors
//! python/mlbench/nstep.py operation for operation, in f64, so both sides store the same rows (read
//! its docstring).

/// A transition of m steps: the n-step return R and discount gamma^m.
pub struct Transition {
    pub obs: Vec<f32>,
    pub action: usize,
    pub reward: f64,
    pub next_obs: Vec<f32>,
    pub terminated: bool,
    pub discount: f64,
}

/// The window of steps whose n-step transitions are not stored yet.
pub struct NStep {
    n: usize,
    gamma: f64,
    pending: Vec<(Vec<f32>, usize, f64)>,
}

impl NStep {
    pub fn new(n: usize, gamma: f64) -> Self {
        NStep { n, gamma, pending: Vec::with_capacity(n) }
    }

    /// Step (obs, action, reward, next_obs); the transitions it completes, oldest first.
    pub fn push(
        &mut self,
        obs: &[f32],
        action: usize,
        reward: f64,
        next_obs: &[f32],
        terminated: bool,
        ended: bool,
    ) -> Vec<Transition> {
        self.pending.push((obs.to_vec(), action, reward));
        if ended {
            let done = (0..self.pending.len()).map(|i| self.transition(i, next_obs, terminated)).collect();
            self.pending.clear();
            return done;
        }
        if self.pending.len() == self.n {
            let done = vec![self.transition(0, next_obs, terminated)];
            self.pending.remove(0);
            return done;
        }
        Vec::new()
    }

    /// The transition from pending step i to the newest.
    fn transition(&self, i: usize, next_obs: &[f32], terminated: bool) -> Transition {
        let (mut ret, mut discount) = (0.0, 1.0);
        for (_, _, reward) in self.pending[i..].iter().rev() {
            ret = reward + self.gamma * ret;
            discount *= self.gamma;
        }
        let (obs, action, _) = &self.pending[i];
        Transition {
            obs: obs.clone(),
            action: *action,
            reward: ret,
            next_obs: next_obs.to_vec(),
            terminated,
            discount,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_of_three_stores_three_step_returns_and_flushes_at_the_end() {
        let mut window = NStep::new(3, 0.5);
        assert!(window.push(&[0.0], 0, 1.0, &[1.0], false, false).is_empty());
        assert!(window.push(&[1.0], 1, 2.0, &[2.0], false, false).is_empty());
        let third = window.push(&[2.0], 0, 4.0, &[3.0], false, false);
        assert_eq!(third.len(), 1);
        assert_eq!((third[0].obs[0], third[0].reward, third[0].next_obs[0]), (0.0, 1.0 + 1.0 + 1.0, 3.0));
        assert_eq!(third[0].discount, 0.125);
        let end = window.push(&[3.0], 1, 8.0, &[4.0], true, true);
        let returns: Vec<f64> = end.iter().map(|t| t.reward).collect();
        assert_eq!(returns, vec![2.0 + 2.0 + 2.0, 4.0 + 4.0, 8.0]);
        assert_eq!(end.iter().map(|t| t.discount).collect::<Vec<_>>(), vec![0.125, 0.25, 0.5]);
        assert!(end.iter().all(|t| t.terminated && t.next_obs[0] == 4.0));
    }
}
