//! Proportional prioritized replay (Schaul et al. 2016) for the `prioritized` loop of the
//! `train_agent` protocol (agents.rs); mirrors python/mlbench/priorities.py operation for operation,
//! in f64, so both sides sample the same rows from the same priorities (read its docstring).

/// The priorities of `capacity` rows and their partial sums (leaves padded to a power of two).
pub struct SumTree {
    leaves: usize,
    nodes: Vec<f64>,
}

impl SumTree {
    pub fn new(capacity: usize) -> Self {
        let leaves = capacity.max(1).next_power_of_two();
        SumTree { leaves, nodes: vec![0.0; 2 * leaves] }
    }

    pub fn set(&mut self, row: usize, value: f64) {
        let mut i = row + self.leaves;
        self.nodes[i] = value;
        i /= 2;
        while i >= 1 {
            self.nodes[i] = self.nodes[2 * i] + self.nodes[2 * i + 1];
            i /= 2;
        }
    }

    pub fn get(&self, row: usize) -> f64 {
        self.nodes[row + self.leaves]
    }

    pub fn total(&self) -> f64 {
        self.nodes[1]
    }

    /// The row whose cumulative priority first exceeds `mass`.
    pub fn find(&self, mut mass: f64) -> usize {
        let mut i = 1;
        while i < self.leaves {
            let left = self.nodes[2 * i];
            if left > mass {
                i *= 2;
            } else {
                mass -= left;
                i = 2 * i + 1;
            }
        }
        i - self.leaves
    }
}

/// A replay buffer's priorities: what a new row gets, the stratified draw and the update.
pub struct Priorities {
    tree: SumTree,
    alpha: f64,
    eps: f64,
    max_priority: f64,
}

impl Priorities {
    pub fn new(capacity: usize, alpha: f64, eps: f64) -> Self {
        Priorities { tree: SumTree::new(capacity), alpha, eps, max_priority: 1.0 }
    }

    pub fn added(&mut self, row: usize) {
        self.tree.set(row, self.max_priority.powf(self.alpha));
    }

    /// The rows of one batch and their importance-sampling weights.
    pub fn sample(&self, draws: &[f64], filled: usize, beta: f64) -> (Vec<usize>, Vec<f32>) {
        let total = self.tree.total();
        let segment = total / draws.len() as f64;
        let rows: Vec<usize> = draws
            .iter()
            .enumerate()
            .map(|(i, u)| self.tree.find((i as f64 + u) * segment).min(filled - 1))
            .collect();
        let weights: Vec<f64> =
            rows.iter().map(|&row| (filled as f64 * (self.tree.get(row) / total)).powf(-beta)).collect();
        let largest = weights.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (rows, weights.iter().map(|w| (w / largest) as f32).collect())
    }

    /// The sampled rows' new priorities from their absolute TD errors, in the batch's order.
    pub fn update(&mut self, rows: &[usize], errors: &[f32]) {
        for (&row, &error) in rows.iter().zip(errors) {
            let priority = f64::from(error) + self.eps;
            self.tree.set(row, priority.powf(self.alpha));
            self.max_priority = self.max_priority.max(priority);
        }
    }
}

/// Importance sampling's exponent after n steps: from beta_start to 1, linear over the run.
pub fn beta(beta_start: f64, n: usize, total_timesteps: usize) -> f64 {
    beta_start + (1.0 - beta_start) * (n as f64 / total_timesteps as f64).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rows_by_cumulative_priority() {
        let mut tree = SumTree::new(5); // padded to 8 leaves
        for (row, p) in [1.0, 2.0, 0.5, 4.0, 0.5].iter().enumerate() {
            tree.set(row, *p);
        }
        assert_eq!(tree.total(), 8.0);
        assert_eq!(tree.find(0.0), 0);
        assert_eq!(tree.find(0.999), 0);
        assert_eq!(tree.find(1.0), 1);
        assert_eq!(tree.find(3.2), 2);
        assert_eq!(tree.find(3.5), 3);
        assert_eq!(tree.find(7.9), 4);
    }

    #[test]
    fn weights_favour_rare_rows_and_updates_raise_the_maximum() {
        let mut priorities = Priorities::new(4, 1.0, 0.0);
        for row in 0..4 {
            priorities.added(row);
        }
        priorities.update(&[0], &[3.0]); // row 0: 3 of a total of 6
        let (rows, weights) = priorities.sample(&[0.0, 0.9], 4, 1.0);
        assert_eq!(rows, vec![0, 3]);
        assert!((weights[0] - 0.333_333_34).abs() < 1e-6 && weights[1] == 1.0);
        priorities.added(1);
        assert_eq!(priorities.tree.get(1), 3.0); // a new row takes the largest priority so far
    }
}
