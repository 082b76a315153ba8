"""n-step returns for the off-policy loops of the `train_agent` protocol (mlbench.agents); mirrors
rust/bench-core/src/nstep.rs operation for operation, in float64, so both sides store the same rows.

The window holds the steps not yet stored. After each step: when its episode ended (terminated or
truncated), every step in the window is stored, oldest first, each with the return of the steps
left to the end; otherwise, when the window holds n steps, its oldest is stored with the return of
all n. A stored transition starting at step s and spanning m steps is (obs_s, action_s,
R = r_s + gamma r_{s+1} + ... + gamma^(m-1) r_{s+m-1}, next_obs of step s+m-1, terminated of step
s+m-1, discount gamma^m): the learner's target is R + discount (1 - terminated) value(next_obs).
R is summed from the newest reward back (Horner's rule) and gamma^m is m products, both in float64
and then stored as float32. With n = 1 every step is stored at once with its own reward and
discount gamma: one-step DQN. Steps still in the window when the run stops are never stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Transition:
    obs: np.ndarray
    action: int
    reward: float  # the n-step return R
    next_obs: np.ndarray
    terminated: bool
    discount: float  # gamma^m


class NStep:
    """The window of steps whose n-step transitions are not stored yet."""

    def __init__(self, n: int, gamma: float) -> None:
        self.n, self.gamma = n, gamma
        self.pending: list[tuple[np.ndarray, int, float]] = []

    def push(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, terminated: bool,
             ended: bool) -> list[Transition]:
        """Step (obs, action, reward, next_obs); the transitions it completes, oldest first."""
        self.pending.append((obs.copy(), action, reward))  # held for up to n steps: an environment may reuse its array
        if ended:
            done = [self.transition(i, next_obs, terminated) for i in range(len(self.pending))]
            self.pending.clear()
            return done
        if len(self.pending) == self.n:
            done = [self.transition(0, next_obs, terminated)]
            self.pending.pop(0)
            return done
        return []

    def transition(self, i: int, next_obs: np.ndarray, terminated: bool) -> Transition:
        """The transition from pending step i to the newest."""
        ret, discount = 0.0, 1.0
        for _, _, reward in reversed(self.pending[i:]):
            ret = reward + self.gamma * ret
            discount *= self.gamma
        obs, action, _ = self.pending[i]
        return Transition(obs, action, ret, next_obs, terminated, discount)
