//! Exploration schedules of the `train_agent` protocol (agents.rs), the twins of
//! python/mlbench/exploration.py's: the specification's multiplicative epsilon (one multiplication per advance, as Python's) and stable-baselines3's linear one in its
//! operation order, so both sides give the same float64 values bit for bit.

/// epsilon = max(end, epsilon * decay) at every `advance` (per episode or per step).
#[derive(Debug, Clone)]
pub struct MultiplicativeEpsilon {
    end: f64,
    decay: f64,
    pub value: f64,
}

impl MultiplicativeEpsilon {
    pub fn new(start: f64, end: f64, decay: f64) -> Self {
        MultiplicativeEpsilon { end, decay, value: start }
    }

    pub fn advance(&mut self) {
        // Python's max(end, next) keeps its first argument unless the second is larger.
        let next = self.value * self.decay;
        self.value = if next > self.end { next } else { self.end };
    }
}

/// stable-baselines3's exploration rate at `step` of `total_steps` (get_linear_fn of the remaining
/// progress, as its DQN computes it).
pub fn linear_epsilon(start: f64, end: f64, fraction: f64, step: u64, total_steps: u64) -> f64 {
    let progress_remaining = 1.0 - step as f64 / total_steps as f64;
    if (1.0 - progress_remaining) > fraction {
        return end;
    }
    start + (1.0 - progress_remaining) * (end - start) / fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplicative_decays_to_its_floor() {
        let mut epsilon = MultiplicativeEpsilon::new(1.0, 0.05, 0.5);
        let mut values = vec![epsilon.value];
        for _ in 0..6 {
            epsilon.advance();
            values.push(epsilon.value);
        }
        assert_eq!(values, vec![1.0, 0.5, 0.25, 0.125, 0.0625, 0.05, 0.05]);
    }

    #[test]
    fn linear_reaches_its_end_at_the_fraction() {
        assert_eq!(linear_epsilon(1.0, 0.05, 0.1, 0, 1000), 1.0);
        assert!((linear_epsilon(1.0, 0.05, 0.1, 50, 1000) - 0.525).abs() < 1e-12);
        assert_eq!(linear_epsilon(1.0, 0.05, 0.1, 101, 1000), 0.05);
    }
}
