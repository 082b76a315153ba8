"""Episode starts from a rollouts set, for a gymnasium environment: each reset starts the next one.

Shared by the protocols that step gymnasium environments (env_steps, train_agent); the Rust twins
are `Starts` in rust/bench-core/src/stepping.rs. `StartsFrom` wraps an environment so
that resets someone else calls (a vector environment's, a library's) follow the set too.

Copy i starts its k-th episode from start k of row i: gymnasium's own reset, then the set's start
state written into `env.unwrapped.state` (CartPole, Acrobot, the synthetic chain), or a reset with
the set's seed (LunarLander, whose Box2D bodies cannot be set from a state vector).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from mlbench.rollouts import Rollouts

# The observation of an environment whose state was just written (gymnasium computes it in reset).
OBSERVE = {"CartPole-v1": lambda env: np.array(env.state, dtype=np.float32),
           "Acrobot-v1": lambda env: env._get_ob(), "SyntheticChain-v0": lambda env: env._get_ob()}


class Starts:
    """Copy `copy`'s episode starts: each call to `reset` starts the next one."""

    def __init__(self, data: Rollouts, copy: int) -> None:
        # This copy's rows, taken once (as the Rust twin's Starts does): resets run inside the clock.
        self.copy, self.episode = copy, 0
        self.states = data.starts[copy] if data.starts is not None else None
        self.seeds = data.reset_seeds[copy].tolist() if data.reset_seeds is not None else None
        self.count = len(self.states) if self.states is not None else len(self.seeds or [])
        self.observe = OBSERVE.get(data.environment)

    def reset(self, env: Any) -> tuple[Any, dict[str, Any]]:
        k = self.episode
        self.episode += 1
        if k >= self.count:
            raise RuntimeError(f"copy {self.copy} ran out of the rollouts set's {self.count} starts")
        if self.seeds is not None:
            return env.reset(seed=self.seeds[k])
        _, info = env.reset()
        env.unwrapped.state = self.states[k].copy()
        return self.observe(env.unwrapped), info


class StartsFrom(gym.Wrapper):
    """An environment whose resets (a vector's or a library's autoresets included) follow the set."""

    def __init__(self, env: gym.Env, starts: Starts) -> None:
        super().__init__(env)
        self.starts = starts

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        return self.starts.reset(self.env)
