"""SyntheticChain-v0, the synthetic environment of configs/environments.yaml, as a gymnasium Env.

Rust twin: rust/rl-envs/src/chain.rs, from the same file. Positions 0 .. n-1; action 0 moves left
(staying at 0 against the wall), 1 moves right; every step earns `step_reward`, and the step that
reaches the last position also earns `goal_reward` and terminates the episode. The observation is
the one-hot position (float32); `state` is the position as a float64 array of one value, as the
classic-control environments keep theirs, so a start state can be injected the same way.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from mlbench import environments

ID = "SyntheticChain-v0"


def definition() -> dict[str, Any]:
    return environments.definition(ID)


class SyntheticChain(gym.Env):
    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self) -> None:
        spec = definition()
        self.positions = int(spec["positions"])
        self.step_reward = float(spec["step_reward"])
        self.goal_reward = float(spec["goal_reward"])
        self.start_low, self.start_high = int(spec["start_low"]), int(spec["start_high"])
        self.action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(self.positions,), dtype=np.float32)
        self.state = np.zeros(1, dtype=np.float64)

    def _get_ob(self) -> np.ndarray:
        observation = np.zeros(self.positions, dtype=np.float32)
        observation[int(self.state[0])] = 1.0
        return observation

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.state = np.array([float(self.np_random.integers(self.start_low, self.start_high + 1))])
        return self._get_ob(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        position = int(self.state[0])
        position = position + 1 if action == 1 else max(position - 1, 0)
        self.state = np.array([float(position)])
        terminated = position == self.positions - 1
        reward = self.step_reward + (self.goal_reward if terminated else 0.0)
        return self._get_ob(), reward, terminated, False, {}


def register() -> None:
    """Make `gym.make("SyntheticChain-v0")` work (with its time limit); idempotent."""
    if ID not in gym.registry:
        gym.register(ID, entry_point=SyntheticChain, max_episode_steps=int(definition()["max_episode_steps"]))


def optimal_return(start: int) -> float:
    """Always moving right from `start`: the best any policy can do."""
    spec = definition()
    steps = int(spec["positions"]) - 1 - start
    return float(spec["goal_reward"]) + float(spec["step_reward"]) * steps
