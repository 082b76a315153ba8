"""What the library comparisons (dqn_library, a2c_library, ppo_library) share: the wrappers that record a
library's own loop from outside (the actions it takes; gymnasium's Monitor for its episodes) and the
artifacts the judge reads, cut at the job's step count."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from mlbench import agents


class ActionRecorder(gym.Wrapper):
    """Notes every action the library takes."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.actions: list[int] = []

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        self.actions.append(int(action))
        return self.env.step(action)


def recorded(env: gym.Env) -> tuple[ActionRecorder, Any]:
    """The environment wrapped for recording: (the action recorder, the Monitor the library steps)."""
    from stable_baselines3.common.monitor import Monitor

    recorder = ActionRecorder(env)
    return recorder, Monitor(recorder)


def artifacts(recorder: ActionRecorder, monitored: Any, steps: int) -> dict[str, np.ndarray]:
    """The episodes completed within `steps` (a library may step past it to finish a block) and the
    actions of the first `steps` steps; no per-update losses (a library does not give them)."""
    lengths = np.asarray(monitored.get_episode_lengths(), dtype=np.float64)
    ends = np.cumsum(lengths)
    kept = ends <= steps
    return {"returns": np.asarray(monitored.get_episode_rewards(), dtype=np.float64)[kept],
            "lengths": lengths[kept], "episode_ends": ends[kept], "losses": np.zeros(0),
            "actions": np.asarray(recorder.actions[:steps], dtype=np.int64)}


def run(make_model: Any, load_weights: Any, env: gym.Env, steps: int,
        updates: Any = lambda model: model._n_updates) -> agents.AgentRun:
    """A library's own loop timed as `build` (the model, the shared weights loaded) and `train`;
    `updates(model)` counts the updates as the twins count theirs."""
    import time

    recorder, monitored = recorded(env)
    start = time.perf_counter()
    model = make_model(monitored)
    load_weights(model)
    build = time.perf_counter() - start
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    train = time.perf_counter() - start
    counts = {"train": steps, "update": int(updates(model))}
    return agents.AgentRun({"build": build, "train": train}, counts, artifacts(recorder, monitored, steps))
