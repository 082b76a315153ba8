"""The on-policy loops of the `train_agent` protocol: a policy-gradient agent acts by sampling its
own policy, and learns from each finished episode (`episodes`: REINFORCE) or from each rollout of n
steps, bootstrapped by its critic (`rollouts`: A2C). Mirrors rust/bench-core/src/policy.rs. The
off-policy loop (replay buffer, epsilon-greedy) is mlbench.agents, which also holds what all loops
share: the fixtures' folder, the build phase, the episode starts, the artifacts and the judge's
metrics.

Written once per (job, seed) before any side runs (`--fixtures`): `init-SEED.safetensors` (the
policy's initial weights, PyTorch's names) and `sample-SEED.npy` (float64, one uniform draw per
step), so no side's random generator enters the run.

The `minibatches` loop (PPO) is the `rollouts` loop whose update passes over the rollout n_epochs
times in shuffled minibatches: the shuffles are a third fixture, `order-SEED.npy` (int32, updates x
n_epochs x n_steps: one permutation of the rollout's rows per epoch), drawn after `sample` from the
same generator, and handed to each update with its rollout.

The `episodes` loop (REINFORCE): one repetition (seed s), step 2 (`train`, timed as a whole and
split into `act`, `env` and `update`), for step t = 0 .. T-1:
- `act`: the agent's action probabilities for the observation (float32); the action is the first
  whose cumulative probability (summed in float64, in action order) exceeds sample[t], or the last
  action where rounding leaves none: inverse-CDF sampling from the shared draw;
- `env`: one environment step; its observation, action and reward appended to the episode; on
  termination or truncation the episode's return, length and end step are noted and the
  environment reset to the next start;
- `update`: when an episode ended at this step, its discounted returns G_k = r_k + gamma G_{k+1}
  (float64, from its last step back; a truncated episode's are not bootstrapped), standardised to
  (G - mean) / (std + 1e-8) (population std) with `normalize_returns`, become the per-step weights
  w of one `update(observations, actions, weights)`: the loss -mean_k(log pi(a_k | s_k) w_k), one
  optimizer step. The steps after the last finished episode give no update.

The `rollouts` loop (A2C, as stable-baselines3's A2C collects and learns with one environment):
- `act`: the agent's probabilities and its critic's value V(s) (float32) for the observation; the
  action drawn as above;
- `env`: one step; observation, action, reward, value and whether the episode ended stored at row
  t mod n_steps of the rollout; a truncated episode's last observation kept (its value is added to
  the reward, discounted, at the update: the time limit is not a terminal state);
- `update`: after every n_steps steps: the critic's values of the kept truncated observations and of
  the observation after the rollout (the bootstrap; weights do not change inside a rollout, so these
  are the values the acting network would give), then generalised advantage estimation in float64
  (delta_k = r_k + gamma V_{k+1} (1 - done_k) - V_k, A_k = delta_k + gamma lambda (1 - done_k)
  A_{k+1}, returns A + V) and one `update(Rollout)`: for A2C the loss -mean(A log pi(a|s)) +
  vf_coef mean((returns - V(s))^2) - ent_coef mean(entropy), one optimizer step; for PPO the
  clipped objective over the rollout's minibatches (python/tasks/rl/ppo.py). The steps after the
  last full rollout give no update.

A warm-up repetition stops after WARMUP_UPDATES updates. Counted work: `train`, `act` and `env`
count environment steps, `update` counts updates (episodes or rollouts).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mlbench.agents import AgentRun, EpisodeLog

# The random streams each on-policy loop reads, in the order they are drawn from the seed's generator
# (the last one's presence says a seed's set is complete).
STREAMS = {"episodes": ("sample",), "rollouts": ("sample",), "minibatches": ("sample", "order")}
STANDARDISE_EPS = 1e-8


@dataclass
class Rollout:
    """One rollout as the actor-critic's update reads it (numpy; an agent moves it into its framework)."""

    obs: np.ndarray  # n x observations, float32
    actions: np.ndarray  # n, int64
    returns: np.ndarray  # n, float32: the critic's targets, advantages + values
    advantages: np.ndarray  # n, float32
    order: np.ndarray | None = None  # n_epochs x n, int32: the minibatches' shuffles (the minibatches loop)


def draw(loop: str, params: dict[str, Any], rng: np.random.Generator, steps: int) -> dict[str, np.ndarray]:
    """A seed's streams for an on-policy loop, in the order STREAMS names them."""
    streams = {"sample": rng.random(steps)}
    if loop == "minibatches":
        n_steps, epochs = params["n_steps"], params["n_epochs"]
        rows = np.tile(np.arange(n_steps, dtype=np.int32), (steps // n_steps * epochs, 1))
        streams["order"] = rng.permuted(rows, axis=1).reshape(steps // n_steps, epochs, n_steps)
    return streams


class PolicyAgent(Protocol):
    def probabilities(self, observation: np.ndarray) -> np.ndarray: ...

    def update(self, observations: np.ndarray, actions: np.ndarray, weights: np.ndarray) -> float: ...


class ActorCritic(Protocol):
    def act(self, observation: np.ndarray) -> tuple[np.ndarray, float]: ...  # probabilities, V(s)

    def values(self, observations: np.ndarray) -> np.ndarray: ...  # V of each row (float32)

    def update(self, rollout: Rollout) -> float: ...


def sample_action(probabilities: np.ndarray, draw: float) -> int:
    """The first action whose cumulative probability (float64, in order) exceeds `draw`."""
    total = 0.0
    for action, p in enumerate(probabilities.tolist()):
        total += p
        if draw < total:
            return action
    return len(probabilities) - 1


def step_weights(rewards: list[float], gamma: float, normalize: bool) -> np.ndarray:
    """The discounted returns of an episode's steps, standardised if asked (float32 for the update)."""
    returns = [0.0] * len(rewards)
    running = 0.0
    for k in range(len(rewards) - 1, -1, -1):
        running = rewards[k] + gamma * running
        returns[k] = running
    if normalize:  # summed in step order, as the Rust twin sums (numpy's mean sums pairwise)
        n = len(returns)
        mean = 0.0
        for g in returns:
            mean += g
        mean /= n
        variance = 0.0
        for g in returns:
            variance += (g - mean) * (g - mean)
        std = math.sqrt(variance / n)
        returns = [(g - mean) / (std + STANDARDISE_EPS) for g in returns]
    return np.asarray(returns, dtype=np.float32)


def train(agent: PolicyAgent, env: Any, reset: Callable[[Any], Any], params: dict[str, Any],
          streams: dict[str, np.ndarray], steps: int, max_updates: int | None = None) -> AgentRun:
    """Step 2 of the on-policy loop (module docstring); stops early after `max_updates` updates."""
    draws = streams["sample"].tolist()
    gamma, normalize = params["gamma"], params["normalize_returns"]
    log = EpisodeLog(steps)
    losses: list[float] = []
    episode_obs: list[np.ndarray] = []
    episode_actions: list[int] = []
    episode_rewards: list[float] = []
    clock = time.perf_counter
    obs = reset(env)
    start = clock()
    for t in range(steps):
        t0 = clock()
        action = sample_action(agent.probabilities(obs), draws[t])
        t1 = clock()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        episode_obs.append(obs)
        episode_actions.append(action)
        episode_rewards.append(float(reward))
        ended = terminated or truncated
        log.step(t, action, reward, ended)
        obs = reset(env) if ended else next_obs
        t2 = clock()
        if ended:
            weights = step_weights(episode_rewards, gamma, normalize)
            losses.append(agent.update(np.asarray(episode_obs, dtype=np.float32),
                                       np.asarray(episode_actions, dtype=np.int64), weights))
            episode_obs, episode_actions, episode_rewards = [], [], []
        log.clocks(t0, t1, t2, clock())
        if max_updates is not None and len(losses) >= max_updates:
            steps = t + 1
            break
    return log.run(clock() - start, steps, losses)


def advantages(rewards: list[float], values: list[float], dones: list[bool], last_value: float, gamma: float,
               gae_lambda: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation over one rollout (float64, from its last step back): the
    advantages and the returns (advantages + values), as float32 for the update."""
    n = len(rewards)
    adv = [0.0] * n
    running = 0.0
    for k in range(n - 1, -1, -1):
        next_value = last_value if k == n - 1 else values[k + 1]
        live = 0.0 if dones[k] else 1.0
        delta = rewards[k] + gamma * next_value * live - values[k]
        running = delta + gamma * gae_lambda * live * running
        adv[k] = running
    returns = [a + v for a, v in zip(adv, values, strict=True)]
    return np.asarray(returns, dtype=np.float32), np.asarray(adv, dtype=np.float32)


def train_rollouts(agent: ActorCritic, env: Any, reset: Callable[[Any], Any], params: dict[str, Any],
                   streams: dict[str, np.ndarray], steps: int, max_updates: int | None = None) -> AgentRun:
    """The `rollouts` and `minibatches` loops (module docstring); stops early after `max_updates`
    updates."""
    draws, order = streams["sample"].tolist(), streams.get("order")
    gamma, gae_lambda, n_steps = params["gamma"], params["gae_lambda"], params["n_steps"]
    log = EpisodeLog(steps)
    losses: list[float] = []
    rollout_obs: list[np.ndarray] = []
    rollout_actions: list[int] = []
    rollout_rewards: list[float] = []
    rollout_values: list[float] = []
    rollout_dones: list[bool] = []
    truncated_obs: list[tuple[int, np.ndarray]] = []  # (row, the last observation of an episode cut by its limit)
    clock = time.perf_counter
    obs = reset(env)
    start = clock()
    for t in range(steps):
        t0 = clock()
        probabilities, value = agent.act(obs)
        action = sample_action(probabilities, draws[t])
        t1 = clock()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        ended = terminated or truncated
        if truncated and not terminated:
            truncated_obs.append((len(rollout_obs), next_obs))
        rollout_obs.append(obs)
        rollout_actions.append(action)
        rollout_rewards.append(float(reward))
        rollout_values.append(float(value))
        rollout_dones.append(ended)
        log.step(t, action, reward, ended)
        obs = reset(env) if ended else next_obs
        t2 = clock()
        if (t + 1) % n_steps == 0:
            if truncated_obs:
                cut = agent.values(np.asarray([o for _, o in truncated_obs], dtype=np.float32))
                for (row, _), v in zip(truncated_obs, cut.tolist(), strict=True):
                    rollout_rewards[row] += gamma * v
            last_value = float(agent.values(np.asarray([obs], dtype=np.float32))[0])
            targets, adv = advantages(rollout_rewards, rollout_values, rollout_dones, last_value, gamma, gae_lambda)
            rollout = Rollout(np.asarray(rollout_obs, dtype=np.float32), np.asarray(rollout_actions, dtype=np.int64),
                              targets, adv, None if order is None else order[len(losses)])
            losses.append(agent.update(rollout))
            rollout_obs, rollout_actions, rollout_rewards, rollout_values, rollout_dones = [], [], [], [], []
            truncated_obs = []
        log.clocks(t0, t1, t2, clock())
        if max_updates is not None and len(losses) >= max_updates:
            steps = t + 1
            break
    return log.run(clock() - start, steps, losses)
