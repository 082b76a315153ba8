"""Exploration schedules of the `train_agent` protocol (mlbench.agents); the Rust twin is
rust/bench-core/src/exploration.rs, and both give the same float64 values bit for bit
(tests/test_dqn_epsilon.py).

The specification's multiplicative epsilon (`epsilon = max(end, epsilon * decay)` after every
episode or every step, the job's choice, one multiplication at a time so both sides round alike)
and stable-baselines3's linear one (`get_linear_fn`: from start to end over the first `fraction` of
the run's steps, then end), written out in its operation order.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MultiplicativeEpsilon:
    """epsilon = max(end, epsilon * decay) at every `advance` (per episode or per step)."""

    start: float
    end: float
    decay: float
    value: float = field(init=False)

    def __post_init__(self) -> None:
        self.value = self.start

    def advance(self) -> None:
        self.value = max(self.end, self.value * self.decay)


def linear_epsilon(start: float, end: float, fraction: float, step: int, total_steps: int) -> float:
    """stable-baselines3's exploration rate at `step` of `total_steps` (get_linear_fn of the
    remaining progress, as its DQN computes it)."""
    progress_remaining = 1.0 - float(step) / float(total_steps)
    if (1 - progress_remaining) > fraction:
        return end
    return start + (1 - progress_remaining) * (end - start) / fraction
