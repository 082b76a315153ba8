"""Proportional prioritized replay (Schaul et al. 2016) for the `prioritized` loop of the
`train_agent` protocol (mlbench.agents); mirrors rust/bench-core/src/priorities.rs operation for
operation, in float64, so both sides sample the same rows from the same priorities.

Each replay row holds a priority p^alpha in a sum tree (leaves padded to a power of two, empty rows
0). A new row gets the largest priority set so far (1 before any update), as OpenAI baselines'
buffer does. A batch of B rows is drawn stratified: with total the tree's sum and B equal segments
of it, row i is the leaf whose cumulative priority first exceeds (i + u_i) total / B, u_i the shared
draw (the rows filled by then bound it, against rounding at the top end). Each row's
importance-sampling weight is (N P(row))^-beta over the batch's largest (Dopamine's normalisation;
N the rows filled, P the row's share of the total); beta rises linearly from beta_start to 1 over
the run's steps. After the update, each sampled row's priority becomes (|TD error| + eps)^alpha, in
the batch's order (a row drawn twice keeps its last).
"""

from __future__ import annotations

import numpy as np


class SumTree:
    """The priorities of `capacity` rows and their partial sums (float64)."""

    def __init__(self, capacity: int) -> None:
        self.leaves = 1 << max(0, (capacity - 1).bit_length())
        self.nodes = [0.0] * (2 * self.leaves)

    def set(self, row: int, value: float) -> None:
        i = row + self.leaves
        self.nodes[i] = value
        i //= 2
        while i >= 1:
            self.nodes[i] = self.nodes[2 * i] + self.nodes[2 * i + 1]
            i //= 2

    def get(self, row: int) -> float:
        return self.nodes[row + self.leaves]

    def total(self) -> float:
        return self.nodes[1]

    def find(self, mass: float) -> int:
        """The row whose cumulative priority first exceeds `mass`."""
        i = 1
        while i < self.leaves:
            left = self.nodes[2 * i]
            if left > mass:
                i = 2 * i
            else:
                mass -= left
                i = 2 * i + 1
        return i - self.leaves


class Priorities:
    """A replay buffer's priorities: what a new row gets, the stratified draw and the update."""

    def __init__(self, capacity: int, alpha: float, eps: float) -> None:
        self.tree = SumTree(capacity)
        self.alpha, self.eps = alpha, eps
        self.max_priority = 1.0

    def added(self, row: int) -> None:
        self.tree.set(row, self.max_priority ** self.alpha)

    def sample(self, draws: list[float], filled: int, beta: float) -> tuple[np.ndarray, np.ndarray]:
        """The rows of one batch and their importance-sampling weights (float32)."""
        total = self.tree.total()
        segment = total / len(draws)
        rows = [min(self.tree.find((i + u) * segment), filled - 1) for i, u in enumerate(draws)]
        weights = [(filled * (self.tree.get(row) / total)) ** -beta for row in rows]
        largest = max(weights)
        return np.asarray(rows, dtype=np.int64), np.asarray([w / largest for w in weights], dtype=np.float32)

    def update(self, rows: np.ndarray, errors: np.ndarray) -> None:
        """The sampled rows' new priorities from their TD errors (float32, absolute)."""
        for row, error in zip(rows.tolist(), errors.tolist(), strict=True):
            priority = error + self.eps
            self.tree.set(row, priority ** self.alpha)
            self.max_priority = max(self.max_priority, priority)


def beta(beta_start: float, n: int, total_timesteps: int) -> float:
    """Importance sampling's exponent after n steps: from beta_start to 1, linear over the run."""
    return beta_start + (1.0 - beta_start) * min(1.0, n / total_timesteps)
