"""The Rust ports of CartPole-v1 and Acrobot-v1 (rust/rl-envs) against gymnasium 1.4, and the
synthetic chain's two implementations (configs/environments.yaml) against each other, step by step.

Both sides start every episode from the same start state (drawn here as gymnasium's reset draws
them, then injected into `env.unwrapped.state`) and take the same actions; a new episode starts
after a step that terminated or reached the 500-step limit. The internal float64 states must agree
to 1e-12 over 10,000 steps (they agree exactly: the ports keep gymnasium's operations and their
order), and rewards, termination, truncation and observations must be identical.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import rust_binary

gym = pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")

from mlbench import rollouts, synthetic_env  # noqa: E402  (after the gymnasium skip)

synthetic_env.register()

STEPS = 10_000
STATE_ATOL = 1e-12
N_ACTIONS = {"CartPole-v1": 2, "Acrobot-v1": 3, "SyntheticChain-v0": 2}


def start_states(env_id: str, n: int, seed: int) -> np.ndarray:
    """Start states as gymnasium's reset draws them (mlbench.rollouts, which the datasets use)."""
    return rollouts.start_states(env_id, n, np.random.default_rng(seed))


def gymnasium_replay(env_id: str, starts: np.ndarray, actions: np.ndarray,
                     env: gym.Env | None = None) -> dict[str, np.ndarray]:
    env = gym.make(env_id) if env is None else env
    env.reset(seed=0)
    env.unwrapped.state = starts[0].copy()
    episode = 0
    out: dict[str, list] = {"states": [], "observations": [], "rewards": [], "terminated": [], "truncated": []}
    for t, action in enumerate(actions):
        observation, reward, terminated, truncated, _ = env.step(int(action))
        out["states"].append(np.asarray(env.unwrapped.state, dtype=np.float64).copy())
        out["observations"].append(observation)
        out["rewards"].append(reward)
        out["terminated"].append(int(terminated))
        out["truncated"].append(int(truncated))
        if (terminated or truncated) and t + 1 < len(actions):
            episode += 1
            env.reset()
            env.unwrapped.state = starts[episode].copy()
    return {name: np.asarray(values) for name, values in out.items()}


def rust_replay(env_id: str, starts: np.ndarray, actions: np.ndarray, folder: Path) -> dict[str, np.ndarray]:
    np.save(folder / "starts.npy", starts)
    np.save(folder / "actions.npy", actions.astype(np.int64))
    done = subprocess.run([str(rust_binary("rl-envs")), "replay", "--env", env_id, "--starts",
                           str(folder / "starts.npy"), "--actions", str(folder / "actions.npy"), "--out",
                           str(folder / "rust")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return {name: np.load(folder / "rust" / f"{name}.npy")
            for name in ("states", "observations", "rewards", "terminated", "truncated")}


def balancing_actions(n: int, seed: int, starts: np.ndarray) -> np.ndarray:
    """CartPole actions from a noisy PD controller run in gymnasium: long episodes that reach the
    500-step limit, so truncation and the long-run dynamics are compared too."""
    rng = np.random.default_rng(seed)
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    env.unwrapped.state = starts[0].copy()
    actions, episode = [], 0
    for _ in range(n):
        x, x_dot, theta, theta_dot = env.unwrapped.state
        action = int(theta + 0.5 * theta_dot + 0.01 * x + 0.05 * x_dot > 0)
        action = action if rng.random() > 0.1 else 1 - action
        actions.append(action)
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            episode += 1
            env.reset()
            env.unwrapped.state = starts[episode].copy()
    return np.asarray(actions)


def assert_same(env_id: str, reference: dict[str, np.ndarray], ported: dict[str, np.ndarray]) -> None:
    gap = float(np.max(np.abs(reference["states"] - ported["states"])))
    assert gap <= STATE_ATOL, f"{env_id}: states differ by up to {gap:.3e}"
    for name in ("observations", "rewards", "terminated", "truncated"):
        assert np.array_equal(reference[name], ported[name]), f"{env_id}: {name} differ"


@pytest.mark.parametrize("env_id", list(N_ACTIONS))
def test_random_actions_give_gymnasiums_trajectory(env_id: str, tmp_path: Path) -> None:
    starts = start_states(env_id, 2_000, seed=1)
    actions = np.random.default_rng(2).integers(0, N_ACTIONS[env_id], size=STEPS)
    reference = gymnasium_replay(env_id, starts, actions)
    ported = rust_replay(env_id, starts, actions, tmp_path)
    episodes = int(np.sum(reference["terminated"] | reference["truncated"]))
    assert episodes >= 10, f"{env_id}: only {episodes} episodes: the comparison must cross resets"
    assert_same(env_id, reference, ported)


def test_the_chain_reaches_its_known_optimal_return(tmp_path: Path) -> None:
    """Always moving right from every start: the return the definition promises, on both sides."""
    spec = synthetic_env.definition()
    starts = np.arange(spec["start_low"], spec["start_high"] + 1, dtype=np.float64)[:, None]
    actions = np.ones(sum(spec["positions"] - 1 - int(s) for s in starts[:, 0]), dtype=np.int64)
    for side in (gymnasium_replay("SyntheticChain-v0", starts, actions),
                 rust_replay("SyntheticChain-v0", starts, actions, tmp_path)):
        ends = np.flatnonzero(side["terminated"])
        assert len(ends) == len(starts) and not side["truncated"].any()
        returns = [float(r.sum()) for r in np.split(side["rewards"], ends[:-1] + 1)]
        assert returns == pytest.approx([synthetic_env.optimal_return(int(s)) for s in starts[:, 0]], abs=1e-12)


def test_long_cartpole_episodes_reach_the_time_limit_alike(tmp_path: Path) -> None:
    starts = start_states("CartPole-v1", 500, seed=3)
    actions = balancing_actions(STEPS, 4, starts)
    reference = gymnasium_replay("CartPole-v1", starts, actions)
    assert reference["truncated"].sum() >= 5, "the controller should keep the pole up to the 500-step limit"
    assert_same("CartPole-v1", reference, rust_replay("CartPole-v1", starts, actions, tmp_path))


def test_the_comparison_sees_a_changed_constant(tmp_path: Path) -> None:
    """The trajectory test can fail: gymnasium with a 1% heavier pole leaves the port's trajectory."""
    starts = start_states("CartPole-v1", 2_000, seed=1)
    actions = np.random.default_rng(2).integers(0, 2, size=2_000)
    ported = rust_replay("CartPole-v1", starts, actions, tmp_path)
    env = gym.make("CartPole-v1")
    env.unwrapped.masspole *= 1.01
    env.unwrapped.total_mass = env.unwrapped.masspole + env.unwrapped.masscart
    env.unwrapped.polemass_length = env.unwrapped.masspole * env.unwrapped.length
    changed = gymnasium_replay("CartPole-v1", starts, actions, env)
    assert np.max(np.abs(changed["states"] - ported["states"])) > 1e-6


@pytest.mark.parametrize(("args", "fragment"), [
    (["--env", "Pendulum-v1"], "--env: unknown environment \"Pendulum-v1\""),
    (["--env", "Acrobot-v1", "--bad-actions"], "--actions: action 3 is outside 0..2"),
])
def test_replay_refuses_bad_input(args: list[str], fragment: str, tmp_path: Path) -> None:
    np.save(tmp_path / "starts.npy", start_states("Acrobot-v1", 2, seed=0))
    np.save(tmp_path / "actions.npy", np.array([0, 3] if "--bad-actions" in args else [0, 1], dtype=np.int64))
    done = subprocess.run([str(rust_binary("rl-envs")), "replay", *[a for a in args if a != "--bad-actions"],
                           "--starts", str(tmp_path / "starts.npy"), "--actions", str(tmp_path / "actions.npy"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and fragment in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()
