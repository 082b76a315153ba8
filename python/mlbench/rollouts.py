"""Environment datasets in the `rollouts` layout: what both sides need to step an environment through
exactly the same transitions, without either side's random generator.

A rollouts set names one gymnasium environment (meta.json's `environment`) and holds, for each of
`n_envs` environment copies, the actions to take and the states to start episodes from:
`actions.npy` (int64, steps x n_envs: copy i takes column i) and either `starts.npy` (float64,
n_envs x episodes x state_dim: copy i starts its k-th episode from row k, injected after a reset as
tests/test_rl_envs.py checks) or, for an environment whose state cannot be injected (LunarLander's
Box2D bodies), `reset_seeds.npy` (int64, n_envs x episodes: copy i resets its k-th episode with
that seed). Actions are drawn uniformly at random, once, here. Start states are drawn as
gymnasium's reset draws them: CartPole U(-0.05, 0.05) in float64, Acrobot U(-0.1, 0.1) cast to
float32, the synthetic chain (mlbench.synthetic_env) a uniform integer position. There are enough
for the shortest possible episodes over every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlbench import environments

N_ENVS = 8  # the widest vector the task runs
STEPS = 100_000
N_ACTIONS = {"CartPole-v1": 2, "Acrobot-v1": 3, "LunarLander-v3": 4, "SyntheticChain-v0": 2}
# Environments whose start state can be injected, and its length.
STATE_DIM = {"CartPole-v1": 4, "Acrobot-v1": 4, "SyntheticChain-v0": 1}
# The shortest episode each can have (CartPole: the pole cannot leave +-12 degrees in fewer steps
# from a start within 0.05; the chain: from its highest start to the end; the others are bounded
# generously), so the starts cannot run out.
SHORTEST_EPISODE = {"CartPole-v1": 5, "Acrobot-v1": 5, "LunarLander-v3": 5, "SyntheticChain-v0": 5}


@dataclass(frozen=True)
class RolloutSource:
    """Actions (steps x n_envs) and per-copy episode starts: states or reset seeds."""

    environment: str
    actions: np.ndarray
    source: str
    starts: np.ndarray | None = None  # n_envs x episodes x state_dim, float64
    reset_seeds: np.ndarray | None = None  # n_envs x episodes, int64


def start_states(environment: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Start states as gymnasium's reset draws them (stored as float64, exactly)."""
    if environment == "CartPole-v1":
        return rng.uniform(-0.05, 0.05, size=(n, 4))
    if environment == "Acrobot-v1":
        return rng.uniform(-0.1, 0.1, size=(n, 4)).astype(np.float32).astype(np.float64)
    if environment == "SyntheticChain-v0":
        chain = environments.definition(environment)
        low, high = chain["start_low"], chain["start_high"]
        return rng.integers(low, high + 1, size=(n, 1)).astype(np.float64)
    raise ValueError(f"{environment}: no injectable start state")


def random_rollouts(environment: str, seed: int, steps: int = STEPS, n_envs: int = N_ENVS) -> RolloutSource:
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, N_ACTIONS[environment], size=(steps, n_envs), dtype=np.int64)
    episodes = steps // SHORTEST_EPISODE[environment] + 2
    text = (f"{environment}: {steps:,} uniformly random actions for each of {n_envs} copies, seed {seed}; "
            f"{episodes:,} episode starts per copy")
    if environment in STATE_DIM:
        starts = np.stack([start_states(environment, episodes, rng) for _ in range(n_envs)])
        return RolloutSource(environment, actions, text + " (start states as gymnasium's reset draws them)",
                             starts=starts)
    seeds = rng.integers(0, 2**31 - 1, size=(n_envs, episodes), dtype=np.int64)
    return RolloutSource(environment, actions, text + " (reset seeds)", reset_seeds=seeds)


def cartpole_random(download: bool) -> RolloutSource:
    return random_rollouts("CartPole-v1", seed=21)


def acrobot_random(download: bool) -> RolloutSource:
    return random_rollouts("Acrobot-v1", seed=22)


def chain_random(download: bool) -> RolloutSource:
    return random_rollouts("SyntheticChain-v0", seed=24)


def lunarlander_random(download: bool) -> RolloutSource:
    return random_rollouts("LunarLander-v3", seed=23)


def arrays(source: RolloutSource) -> dict[str, np.ndarray]:
    out = {"actions": np.ascontiguousarray(source.actions, dtype=np.int64)}
    if source.starts is not None:
        out["starts"] = np.ascontiguousarray(source.starts, dtype=np.float64)
    if source.reset_seeds is not None:
        out["reset_seeds"] = np.ascontiguousarray(source.reset_seeds, dtype=np.int64)
    return out


def meta(source: RolloutSource) -> dict:
    steps, n_envs = source.actions.shape
    return {"layout": "rollouts", "environment": source.environment, "n_envs": n_envs, "steps": steps,
            "n_actions": N_ACTIONS[source.environment],
            "start": "states" if source.starts is not None else "reset_seeds"}


@dataclass(frozen=True)
class Rollouts:
    """A rollouts set as the env_steps protocol reads it."""

    environment: str
    actions: np.ndarray
    starts: np.ndarray | None
    reset_seeds: np.ndarray | None

    @property
    def n_envs(self) -> int:
        return int(self.actions.shape[1])

    @property
    def steps(self) -> int:
        return int(self.actions.shape[0])
