"""The `env_steps` protocol: an environment stepped through a rollouts set's actions, for every side.

Mirrors rust/bench-core/src/stepping.rs. A task declares each way of stepping as an `EnvSteps`:
`start(data, num_envs)` builds `num_envs` copies of the set's environment and resets each from its
first start (untimed), and the `Stepper` it returns takes `steps` steps in one timed call. Copy i
takes the actions of column i and starts its k-th episode from start k of row i. The protocol:

1. `step` (timed): `steps` steps of every copy. One copy is the plain loop (step; after an episode
   ends, reset); several are a vector environment that resets a finished copy on its next step (the
   action of that step is ignored, its reward is 0 and it ends no episode: gymnasium's `NEXT_STEP`
   autoreset, SyncVectorEnv's default). Every step stores the rewards and whether each copy's
   episode ended into buffers allocated before the clock starts, as a rollout buffer would.
2. untimed: the completed episodes' returns and lengths, in copy order then episode order, and the
   copies' last observations, saved as artifacts; the judge compares them between sides.

The work counted is transitions (`steps x num_envs`, the `step` phase's count), so `throughput`'s
`step_samples_per_s` is environment steps per second. Actions come from the file: the time of
drawing random actions is not in the measurement, on either side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mlbench.rollouts import Rollouts


@dataclass
class Trace:
    """What one timed call leaves: per step and copy, the reward and whether an episode ended there
    (terminated or truncated), and each copy's observation after the last step."""

    rewards: np.ndarray  # steps x num_envs, float64
    ended: np.ndarray  # steps x num_envs, bool
    final_observations: np.ndarray  # num_envs x observation size, float32


class Stepper(Protocol):
    def run(self, steps: int) -> Trace: ...


@dataclass(frozen=True)
class EnvSteps:
    """How a framework builds the copies (reset from their first starts) for one timed call."""

    start: Callable[[Rollouts, int], Stepper]
    describe: Callable[[int], str]  # the solver's name for num_envs copies


def episodes(trace: Trace, vector: bool) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of the completed episodes, copy by copy. In a vector environment the step
    after an episode ended is the copy's reset: not part of any episode. Each return is summed in
    step order, as the Rust side sums it."""
    returns, lengths = [], []
    for copy in range(trace.rewards.shape[1]):
        rewards, ended = trace.rewards[:, copy], trace.ended[:, copy]
        completed = int(ended.sum())
        episode = np.cumsum(ended) - ended  # episodes ended before each step
        counted = np.ones_like(ended)
        if vector:
            counted[1:] = ~ended[:-1]
        returns.append(np.bincount(episode[counted], weights=rewards[counted], minlength=completed)[:completed])
        lengths.append(np.bincount(episode[counted], minlength=completed)[:completed])
    return (np.concatenate(returns).astype(np.float64) if returns else np.zeros(0),
            np.concatenate(lengths).astype(np.float64) if lengths else np.zeros(0))


def artifacts(trace: Trace, num_envs: int) -> dict[str, np.ndarray]:
    returns, lengths = episodes(trace, vector=num_envs > 1)
    return {"returns": returns, "lengths": lengths,
            "final_observations": np.asarray(trace.final_observations, dtype=np.float32)}
