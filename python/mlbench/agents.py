"""The `train_agent` protocol: an agent trained on an environment, for every side. Mirrors
rust/bench-core/src/agents.rs. This module holds the off-policy loop (epsilon-greedy acting and a
replay buffer: DQN) and what both loops share; the on-policy loop (an agent that samples its own
policy: REINFORCE from finished episodes, A2C from rollouts of n steps) is mlbench.policy, chosen by
`loop`.

A task declares each agent as a `TrainAgent`: `init` draws the online network's initial weights
(PyTorch, once per seed) and `build` makes a framework agent from that file; the agent answers
`greedy` (the action of largest value for one observation), `update` (one learner step on a batch
of transitions, returning the loss) and `sync_target`. The protocol owns everything else, the same
on every side, so the sides differ only in the framework that evaluates and trains the network.

Written once per (job, seed) before any side runs (`--fixtures`), so no side draws a random number:
`init-SEED.safetensors` (the initial weights, PyTorch's names), `explore-SEED.npy` (float64, one
uniform draw per step: the step explores when it is below epsilon), `random_actions-SEED.npy`
(int64, the action an exploring step takes) and `batches-SEED.npy` (int32, updates x batch_size:
the replay rows of each update, drawn uniformly, with replacement, from the rows filled by then).
The `prioritized` loop (prioritized replay) reads `strata-SEED.npy` (float64, updates x batch_size:
the uniform draw of each stratum, mlbench.priorities) in place of `batches`: which rows an update
gets depends on the priorities the sides' TD errors set. The `noisy` loop (Rainbow: prioritized
replay and a network with noisy layers) also reads `noise-SEED.npy` (float32, (updates + 1) x the
agent's `noise` count: factorised Gaussian noise, f(x) = sign(x) sqrt(|x|) of standard normals).
The dataset is a rollouts set: episode k of seed s starts from start k of the set's copy s mod n_envs.

One repetition (seed s = job seed + repetition):
1. `build` (timed): the agent from init-s.safetensors; the first episode's reset (untimed).
2. `train` (timed as a whole, and split into `act`, `env` and `update`), for step t = 0 .. T-1:
   - `act`: the random action of step t if explore[t] < epsilon, else the agent's greedy action;
   - `env`: one environment step; the transitions it completes (mlbench.nstep: with n_step 1, the
     step's own (observation, action, reward, next observation, terminated, discount gamma)) stored
     at the next replay rows, a ring of buffer_size (a truncated episode's last transition is not
     terminal); on termination or truncation the episode's return, length and end step are
     noted and the environment reset to the next start; epsilon advances (after each step, or after
     each episode, as `decay_every` says: the multiplicative schedule of mlbench.exploration; with
     `exploration: linear`, epsilon is instead stable-baselines3's linear schedule at step t, set
     before the step acts);
   - `update`: with n = t + 1, when n > learning_starts and n % train_freq == 0, the rows of the next
     line of batches-s.npy gathered into a batch and one `update`; when n % target_update_freq == 0
     (counted in environment steps, as stable-baselines3 counts it), `sync_target`. In the
     `prioritized` loop a stored row takes the largest priority so far, the batch's rows are drawn
     from the next line of strata-s.npy and carry importance-sampling weights (beta after n steps),
     the update weights each row's loss by them and returns the rows' TD errors, which become their
     priorities (mlbench.priorities). In the `noisy` loop the agent takes noise row 0 before the
     first step and row k + 1 before update k (it acts with that noise until the next update).
   Every phase's clock is read on both sides at the same points, so both pay the same overhead.
3. untimed: the artifacts the judge reads: the completed episodes' returns, lengths and end steps,
   the loss of every update and the action of every step (the sides take the same actions until
   their floating-point rounding first flips a greedy choice; `agreement` counts the shared steps).

A warm-up repetition runs the same steps, stopped after WARMUP_UPDATES updates: every code path
warms without the cost of a full run. The counted work: `train`, `act` and `env` count environment
steps, `update` counts updates, so `throughput` holds steps/s and updates/s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlbench.config import Job
from mlbench.errors import UsageError
from mlbench.exploration import MultiplicativeEpsilon, linear_epsilon
from mlbench.nstep import NStep, Transition
from mlbench.rollouts import Rollouts

Params = dict[str, Any]
WARMUP_UPDATES = 50  # a warm-up repetition stops after this many updates
# The random streams of the off-policy loops (the last one's presence says a seed's set is complete).
STREAMS = {"replay": ("explore", "random_actions", "batches"), "prioritized": ("explore", "random_actions", "strata"),
           "noisy": ("explore", "random_actions", "strata", "noise")}
WINDOW = 100  # episodes of the final return and of the convergence step's moving average
# The return an episode must reach to count as a success (the convergence step: the first step where
# the moving average over WINDOW episodes reaches it). CartPole and Acrobot: the thresholds
# gymnasium registers (reward_threshold; CartPole's 475 of 500); the chain: 0.85, its optimum from
# its worst start (1.0 - 0.01 x 15), so only optimal play from every start reaches it.
SUCCESS_RETURN = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "SyntheticChain-v0": 0.85, "LunarLander-v3": 200.0}


@dataclass
class Batch:
    """Transitions gathered from the replay buffer (numpy; an agent moves them into its framework)."""

    obs: np.ndarray  # B x observations, float32
    actions: np.ndarray  # B, int64
    rewards: np.ndarray  # B, float32
    next_obs: np.ndarray  # B x observations, float32
    dones: np.ndarray  # B, float32: 1 where the transition terminated its episode (not truncated)
    discounts: np.ndarray  # B, float32: gamma^m of a transition of m steps (mlbench.nstep)
    weights: np.ndarray | None = None  # B, float32: importance-sampling weights (prioritized replay)


class Agent(Protocol):
    def greedy(self, observation: np.ndarray) -> int: ...

    # the loss, and with a batch's weights the rows' absolute TD errors (float32)
    def update(self, batch: Batch) -> tuple[float, np.ndarray | None]: ...

    def sync_target(self) -> None: ...

    # An agent of the `noisy` loop also answers reset_noise(noise): a row of the noise stream.


@dataclass(frozen=True)
class TrainAgent:
    """How a framework makes its agent: `init(params, observations, actions, seed)` the initial
    weights (PyTorch names, float32; used by `--fixtures` only), `build(params, observations,
    actions, weights_path)` the agent (an `Agent`; for an on-policy `loop` a mlbench.policy
    `PolicyAgent` or `ActorCritic`), `describe(params)` the solver's name."""

    init: Callable[[Params, int, int, int], dict[str, np.ndarray]]
    build: Callable[[Params, int, int, Path], Any] | None
    describe: Callable[[Params], str]
    # A library's own loop instead of step 2 (a library comparison): `learn(params, env, weights,
    # steps, seed)` with an environment whose resets follow the set's starts; it times `build` and
    # `train` itself and returns the same artifacts (losses where the library gives none: empty).
    learn: Callable[[Params, Any, Path, int, int], AgentRun] | None = None
    # `replay` (this module's off-policy loop; `prioritized` with prioritized replay; `noisy` with
    # prioritized replay and noise for a network's noisy layers, `noise` floats a row), or
    # mlbench.policy's on-policy loops: `episodes`
    # (an update per finished episode), `rollouts` (an update per n steps, bootstrapped) or
    # `minibatches` (rollouts whose update passes over shuffled minibatches, the shuffles shared)
    loop: str = "replay"
    noise: Callable[[Params, int], int] | None = None  # (params, actions): noise floats per row

    @property
    def on_policy(self) -> bool:
        return self.loop not in STREAMS


def fixture_path(job: Job, name: str, seed: int) -> Path:
    suffix = "safetensors" if name == "init" else "npy"
    return Path(job.fixtures_dir) / f"{name}-{seed}.{suffix}"


def streams_of(algorithm: TrainAgent) -> tuple[str, ...]:
    """The random streams an agent's loop reads (the last one's presence says a seed's set is complete)."""
    from mlbench import policy

    return policy.STREAMS[algorithm.loop] if algorithm.on_policy else STREAMS[algorithm.loop]


def fixture_files(job: Job, algorithm: TrainAgent) -> list[Path]:
    """Every file the job's repetitions read, in the order they are written."""
    return [fixture_path(job, name, job.seed + repetition) for repetition in range(job.n_records)
            for name in ("init", *streams_of(algorithm))]


def update_steps(params: Params, steps: int) -> np.ndarray:
    """The steps n (1-based) after which an update runs: n > learning_starts, n % train_freq == 0."""
    freq, starts = params["train_freq"], params["learning_starts"]
    return np.arange((starts // freq + 1) * freq, steps + 1, freq, dtype=np.int64)


def check_params(params: Params, dataset: str, data_meta: dict[str, Any]) -> None:
    """What the parameter schema cannot see: sizes against each other and the rollouts set."""
    if data_meta.get("layout") != "rollouts":
        raise UsageError(f"dataset: {dataset!r} is not an environment's rollouts set "
                         f"(layout {data_meta.get('layout', 'tabular')})")
    if "n_epochs" in params and params["batch_size"] > params["n_steps"]:
        raise UsageError(f"hyperparameters.batch_size: {params['batch_size']} is above n_steps {params['n_steps']} "
                         "(a minibatch is drawn from one rollout)")
    if "buffer_size" in params and params["batch_size"] > params["buffer_size"]:
        raise UsageError(f"hyperparameters.batch_size: {params['batch_size']} is above buffer_size "
                         f"{params['buffer_size']}")
    if params.get("n_step", 1) > 1 and params["learning_starts"] < params["n_step"] - 1:
        raise UsageError(f"hyperparameters.learning_starts: {params['learning_starts']} is below n_step - 1 "
                         f"({params['n_step'] - 1}): the first update would find no stored transition")
    if "v_min" in params and params["v_min"] >= params["v_max"]:
        raise UsageError(f"hyperparameters.v_min: {params['v_min']} is not below v_max {params['v_max']}")
    if "epsilon_end" in params and params["epsilon_end"] > params["epsilon_start"]:
        raise UsageError(f"hyperparameters.epsilon_end: {params['epsilon_end']} is above epsilon_start "
                         f"{params['epsilon_start']}")
    if params["total_timesteps"] > data_meta["steps"]:  # the set's starts suffice for its own steps
        raise UsageError(f"hyperparameters.total_timesteps: {params['total_timesteps']} is above the "
                         f"{data_meta['steps']} steps whose episode starts rollouts set {dataset} holds")


def write_fixtures(job: Job, algorithm: TrainAgent, observations: int, actions: int) -> list[Path]:
    """Initial weights and random streams for every repetition seed of the job (skipping those
    present), each written to a temporary name and renamed, so a reader never sees half a file."""
    from safetensors.numpy import save_file

    folder = Path(job.fixtures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    params, steps = job.hyperparameters, job.hyperparameters["total_timesteps"]
    written = []
    for repetition in range(job.n_records):
        seed = job.seed + repetition
        weights = fixture_path(job, "init", seed)
        if not weights.exists():
            tensors = algorithm.init(params, observations, actions, seed)
            tmp = weights.with_suffix(f".tmp{os.getpid()}")
            save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(tmp))
            tmp.rename(weights)
            written.append(weights)
        if fixture_path(job, streams_of(algorithm)[-1], seed).exists():
            continue
        for name, values in draw_streams(algorithm, params, seed, steps, actions).items():  # in their order
            path = fixture_path(job, name, seed)
            tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
            np.save(tmp, values)
            tmp.rename(path)
            written.append(path)
    return written


def draw_streams(algorithm: TrainAgent, params: Params, seed: int, steps: int, actions: int) -> dict[str, np.ndarray]:
    """A seed's random streams, in the order `streams_of` names them."""
    rng = np.random.default_rng(seed)
    if algorithm.on_policy:
        from mlbench import policy

        return policy.draw(algorithm.loop, params, rng, steps)
    filled = np.minimum(update_steps(params, steps), params["buffer_size"])
    streams = {"explore": rng.random(steps), "random_actions": rng.integers(0, actions, size=steps, dtype=np.int64)}
    if algorithm.loop in ("prioritized", "noisy"):
        streams |= {"strata": rng.random((len(filled), params["batch_size"]))}
        if algorithm.loop == "noisy":
            assert algorithm.noise is not None, "a noisy loop's agent says how much noise a row holds"
            normal = rng.standard_normal((len(filled) + 1, algorithm.noise(params, actions)))
            streams["noise"] = (np.sign(normal) * np.sqrt(np.abs(normal))).astype(np.float32)
        return streams
    return streams | {
        "batches": rng.integers(0, filled[:, None], size=(len(filled), params["batch_size"])).astype(np.int32)}


class Replay:
    """The replay buffer: a ring of `size` rows, preallocated (rows = min(buffer_size, steps))."""

    def __init__(self, size: int, observations: int) -> None:
        self.obs = np.zeros((size, observations), dtype=np.float32)
        self.actions = np.zeros(size, dtype=np.int64)
        self.rewards = np.zeros(size, dtype=np.float32)
        self.next_obs = np.zeros((size, observations), dtype=np.float32)
        self.dones = np.zeros(size, dtype=np.float32)
        self.discounts = np.zeros(size, dtype=np.float32)

    def store(self, row: int, transition: Transition) -> None:
        self.obs[row] = transition.obs
        self.actions[row] = transition.action
        self.rewards[row] = transition.reward
        self.next_obs[row] = transition.next_obs
        self.dones[row] = float(transition.terminated)
        self.discounts[row] = transition.discount

    def gather(self, rows: np.ndarray, weights: np.ndarray | None = None) -> Batch:
        return Batch(self.obs[rows], self.actions[rows], self.rewards[rows], self.next_obs[rows], self.dones[rows],
                     self.discounts[rows], weights)


@dataclass
class AgentRun:
    """What one repetition leaves: per-phase seconds, counts and the judged outputs."""

    timings_s: dict[str, float]
    counts: dict[str, int]
    artifacts: dict[str, np.ndarray]


class EpisodeLog:
    """What every loop of the protocol notes as it runs (the Rust twin is agents.rs `EpisodeLog`):
    the action of each step, the completed episodes' returns, lengths and end steps, and the seconds
    of the act, env and update phases, read at the same four points of every step."""

    def __init__(self, steps: int) -> None:
        self.taken = np.zeros(steps, dtype=np.int64)
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.ends: list[int] = []
        self.episode_return, self.episode_length = 0.0, 0
        self.act_s = self.env_s = self.update_s = 0.0

    def step(self, t: int, action: int, reward: float, ended: bool) -> None:
        """Step t took `action` and earned `reward`; `ended`: its episode terminated or was truncated."""
        self.taken[t] = action
        self.episode_return += reward
        self.episode_length += 1
        if ended:
            self.returns.append(self.episode_return)
            self.lengths.append(self.episode_length)
            self.ends.append(t + 1)
            self.episode_return, self.episode_length = 0.0, 0

    def clocks(self, t0: float, t1: float, t2: float, t3: float) -> None:
        """One step's clock reads: act from t0 to t1, env to t2, update to t3."""
        self.act_s += t1 - t0
        self.env_s += t2 - t1
        self.update_s += t3 - t2

    def run(self, total_s: float, steps: int, losses: list[float]) -> AgentRun:
        """The repetition's outcome after `steps` steps (fewer than planned where a warm-up stopped)."""
        artifacts = {"returns": np.asarray(self.returns, dtype=np.float64),
                     "lengths": np.asarray(self.lengths, dtype=np.float64),
                     "episode_ends": np.asarray(self.ends, dtype=np.float64),
                     "losses": np.asarray(losses, dtype=np.float64), "actions": self.taken[:steps]}
        return AgentRun({"train": total_s, "act": self.act_s, "env": self.env_s, "update": self.update_s},
                        {"train": steps, "act": steps, "env": steps, "update": len(losses)}, artifacts)


def train(agent: Agent, env: Any, reset: Callable[[Any], Any], params: Params, streams: dict[str, np.ndarray],
          steps: int, observations: int) -> AgentRun:
    """Step 2 of the protocol (module docstring): `steps` steps from the first episode's observation."""
    explore, random_actions = streams["explore"], streams["random_actions"].tolist()
    size = min(params["buffer_size"], steps)
    replay = Replay(size, observations)
    prioritized = "strata" in streams
    if prioritized:
        from mlbench.priorities import Priorities, beta

        priorities = Priorities(size, params["alpha"], params["priority_eps"])
        strata = streams["strata"]
    else:
        batches = streams["batches"]
    noise = streams.get("noise")
    window = NStep(params.get("n_step", 1), params["gamma"])
    written = 0  # transitions stored so far
    # the multiplicative schedule, or (linear) a holder whose value is set before each step
    epsilon = MultiplicativeEpsilon(params["epsilon_start"], params["epsilon_end"], params["epsilon_decay"])
    linear = params["exploration"] == "linear"
    per_step = params["decay_every"] == "step" and not linear
    starts, freq, sync_every = params["learning_starts"], params["train_freq"], params["target_update_freq"]
    log = EpisodeLog(steps)
    losses: list[float] = []
    k = 0
    clock = time.perf_counter
    obs = reset(env)
    if noise is not None:
        agent.reset_noise(noise[0])
    start = clock()
    for t in range(steps):
        t0 = clock()
        if linear:
            epsilon.value = linear_epsilon(params["epsilon_start"], params["epsilon_end"],
                                           params["exploration_fraction"], t, params["total_timesteps"])
        action = random_actions[t] if explore[t] < epsilon.value else agent.greedy(obs)
        t1 = clock()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        ended = terminated or truncated
        for transition in window.push(obs, action, reward, next_obs, terminated, ended):
            row = written % size
            replay.store(row, transition)
            if prioritized:
                priorities.added(row)
            written += 1
        log.step(t, action, reward, ended)
        if ended:
            obs = reset(env)
            if not per_step and not linear:
                epsilon.advance()
        else:
            obs = next_obs
        if per_step:
            epsilon.advance()
        t2 = clock()
        n = t + 1
        if n > starts and n % freq == 0:
            if prioritized:
                if noise is not None:
                    agent.reset_noise(noise[k + 1])
                rows, weights = priorities.sample(strata[k].tolist(), min(written, size),
                                                  beta(params["beta_start"], n, params["total_timesteps"]))
                loss, errors = agent.update(replay.gather(rows, weights))
                priorities.update(rows, errors)
            else:
                loss, _ = agent.update(replay.gather(batches[k]))
            losses.append(loss)
            k += 1
        if n % sync_every == 0:
            agent.sync_target()
        log.clocks(t0, t1, t2, clock())
    return log.run(clock() - start, steps, losses)


def run_agent(job: Job, algorithm: TrainAgent, data: Rollouts, seed: int, phases: Any, warmup: bool) -> AgentRun:
    """One repetition of the protocol; `phases` is the harness's calibrated timer (for `build`)."""
    import gymnasium as gym

    from mlbench import synthetic_env
    from mlbench.starts import Starts

    synthetic_env.register()
    params = job.hyperparameters
    steps = params["total_timesteps"]
    if warmup and not algorithm.on_policy:
        updates = update_steps(params, steps)
        steps = int(updates[WARMUP_UPDATES - 1]) if len(updates) >= WARMUP_UPDATES else steps
    env = gym.make(data.environment)
    observations, actions = int(env.observation_space.shape[0]), int(env.action_space.n)
    starts = Starts(data, seed % data.n_envs)
    weights = fixture_path(job, "init", seed)
    if algorithm.learn is not None:
        from mlbench.starts import StartsFrom

        return algorithm.learn(params, StartsFrom(env, starts), weights, steps, seed)
    streams = {name: np.load(fixture_path(job, name, seed)) for name in streams_of(algorithm)}
    build = algorithm.build
    assert build is not None, "an agent without its own loop builds one for the protocol's"
    agent = phases.run("build", lambda: None, lambda _: build(params, observations, actions, weights))
    if algorithm.on_policy:
        from mlbench import policy

        on_policy_loop = policy.train if algorithm.loop == "episodes" else policy.train_rollouts
        outcome = on_policy_loop(agent, env, lambda e: starts.reset(e)[0], params, streams, steps,
                                 WARMUP_UPDATES if warmup else None)
    else:
        outcome = train(agent, env, lambda e: starts.reset(e)[0], params, streams, steps, observations)
    outcome.timings_s = phases.timer.timings_s | outcome.timings_s
    return outcome


def observation_size(environment: str) -> tuple[int, int]:
    """Observations and actions of an environment (gymnasium's spaces)."""
    import gymnasium as gym

    from mlbench import synthetic_env

    synthetic_env.register()
    env = gym.make(environment)
    return int(env.observation_space.shape[0]), int(env.action_space.n)


def metrics(outputs: dict[str, np.ndarray], environment: str) -> dict[str, float | None]:
    """The judge's figures of one seed: final return (mean of the last WINDOW episodes), success rate
    over those, mean episode length, convergence step, final loss (mean of the last WINDOW updates)."""
    returns, lengths, ends = outputs["returns"], outputs["lengths"], outputs["episode_ends"]
    losses = outputs.get("losses", np.zeros(0))
    threshold = SUCCESS_RETURN[environment]
    last = returns[-WINDOW:]
    converged = None
    if len(returns) >= WINDOW:
        moving = np.convolve(returns, np.ones(WINDOW) / WINDOW, mode="valid")
        reached = np.flatnonzero(moving >= threshold)
        converged = float(ends[reached[0] + WINDOW - 1]) if len(reached) else None
    return {
        "episodes": float(len(returns)),
        "final_return": float(np.mean(last)) if len(last) else None,
        "success_rate": float(np.mean(last >= threshold)) if len(last) else None,
        "mean_length": float(np.mean(lengths)) if len(lengths) else None,
        "convergence_step": converged,
        "final_loss": float(np.mean(losses[-WINDOW:])) if len(losses) else None,
    }
