"""Environment stepping in gymnasium (Rust twin: rust/rl-envs, the ported environments): the
`env_steps` protocol of mlbench.stepping.

One copy is `gym.make(id)` stepped in a plain loop; several are `gym.vector.SyncVectorEnv` (its
default autoreset, `NEXT_STEP`). Each episode starts as the rollouts set says (mlbench.starts; the
synthetic chain of mlbench.synthetic_env is registered here). Actions are the set's, turned into
Python ints before the clock starts.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a plain script, too

import gymnasium as gym
import numpy as np

from mlbench import synthetic_env
from mlbench.harness import run_task
from mlbench.rollouts import Rollouts
from mlbench.starts import Starts, StartsFrom
from mlbench.stepping import EnvSteps, Trace

synthetic_env.register()


class Single:
    """One copy: step; after an episode ends, reset."""

    def __init__(self, data: Rollouts) -> None:
        self.env = gym.make(data.environment)
        self.starts = Starts(data, 0)
        self.actions = data.actions[:, 0].tolist()
        self.observation, _ = self.starts.reset(self.env)

    def run(self, steps: int) -> Trace:
        env, actions, reset = self.env, self.actions, self.starts.reset
        rewards, ended = np.zeros((steps, 1)), np.zeros((steps, 1), dtype=bool)
        observation = self.observation
        for t in range(steps):
            observation, reward, terminated, truncated, _ = env.step(actions[t])
            rewards[t, 0] = reward
            if terminated or truncated:
                ended[t, 0] = True
                observation, _ = reset(env)
        return Trace(rewards, ended, np.asarray(observation, dtype=np.float32)[None, :])


class Vector:
    """`num_envs` copies in SyncVectorEnv: a finished copy resets on its next step."""

    def __init__(self, data: Rollouts, num_envs: int) -> None:
        self.envs = gym.vector.SyncVectorEnv([
            (lambda copy=copy: StartsFrom(gym.make(data.environment), Starts(data, copy))) for copy in range(num_envs)])
        self.actions = np.ascontiguousarray(data.actions[:, :num_envs])
        self.observations, _ = self.envs.reset()

    def run(self, steps: int) -> Trace:
        envs, actions = self.envs, self.actions
        rewards = np.zeros((steps, actions.shape[1]))
        ended = np.zeros((steps, actions.shape[1]), dtype=bool)
        observations = self.observations
        for t in range(steps):
            observations, rewards[t], terminated, truncated, _ = envs.step(actions[t])
            np.logical_or(terminated, truncated, out=ended[t])
        return Trace(rewards, ended, np.asarray(observations, dtype=np.float32))


def start(data: Rollouts, num_envs: int) -> Single | Vector:
    return Single(data) if num_envs == 1 else Vector(data, num_envs)


def describe(num_envs: int) -> str:
    return "gymnasium.make, plain loop" if num_envs == 1 else \
        f"gymnasium.vector.SyncVectorEnv of {num_envs} (autoreset: next step)"


ALGORITHMS = {"random_actions": EnvSteps(start=start, describe=describe)}

if __name__ == "__main__":
    run_task(ALGORITHMS, gym.__version__, ["gymnasium", "numpy"])
