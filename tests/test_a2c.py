"""A2C trained end to end under the `rollouts` loop of the `train_agent` protocol: PyTorch and its
twins on tch and candle.

The same weights and draws on every side, CartPole and Acrobot stepped by gymnasium and by the
ports: the sides take the same actions until rounding first moves a cumulative probability across
a draw, and the losses of the rollouts' updates inside that prefix agree closely. Acrobot's
500-step limit cuts the untrained policy's episodes, so the truncation bootstrap (the critic's
value of the cut episode's last observation, added to its last reward) is exercised. Lambda 0.9
against 1.0 from the same weights and draws parts at once (the negative control). Episodes against
a plain-gymnasium replay; bad input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import rust_binary
from mlbench import policy
from rl_checks import (
    agent_job,
    assert_episodes_replay,
    assert_follows,
    assert_ran_or_unsupported,
    assert_refused,
    measured,
    program,
    quiet_run,
    shared_prefix,
    side,
)

pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")
pytest.importorskip("torch", reason="the dl extra (torch) is not installed")


STEPS = 1000
PARAMS = {"total_timesteps": STEPS, "learning_rate": 7e-4, "n_steps": 5, "hidden_size": 32}
PORTED = ["cartpole_random", "acrobot_random"]
RUST = ["tch", "candle"]
SEEDS = 2
# Steps every twin must share with PyTorch (measured: all 1,000, every seed, environment and lambda).
SHARED_PREFIX = 800
# The updates whose losses must agree: the first 110 rollouts, past Acrobot's first truncation at
# step 500 (update 100), whose bootstrap a twin that skipped it would miss by the value's size
# (measured: within 1e-4 relative less 2.5e-6, the worst two within 1.3e-7 of it; the tolerance
# adds 1e-5 absolute for policy losses near zero).
LOSS_UPDATES, LOSS_RTOL, LOSS_ATOL = 110, 1e-4, 1e-5


@pytest.fixture(scope="module")
def train_run(tmp_path_factory: pytest.TempPathFactory, rl_sets_dir: Path) -> Path:
    rust_binary("a2c")
    return quiet_run(tmp_path_factory.mktemp("a2c"), rl_sets_dir, {
        "task": "a2c", "repetitions": SEEDS, "processes": 1, "warmup": 1, "datasets": [*PORTED, "lunarlander_random"],
        "algorithms": {"a2c": PARAMS | {"gae_lambda": [1.0, 0.9]}}})


def test_every_job_ran_or_is_unsupported_with_a_reason(train_run: Path) -> None:
    for r in assert_ran_or_unsupported(train_run, STEPS, STEPS // PARAMS["n_steps"]):
        assert r["solver"]["name"].startswith("A2C")


@pytest.mark.parametrize("framework", RUST)
def test_twins_take_pytorchs_actions_and_losses(train_run: Path, framework: str) -> None:
    truncated = 0
    for dataset in PORTED:
        for seed in range(42 + 1, 42 + 1 + SEEDS):
            py = side(train_run, dataset, "pytorch", seed, gae_lambda=1.0)
            rs = side(train_run, dataset, framework, seed, gae_lambda=1.0)
            truncated += assert_follows(py, rs, f"{framework} {dataset} seed {seed}", SHARED_PREFIX,
                                        PARAMS["n_steps"], LOSS_RTOL, LOSS_ATOL, LOSS_UPDATES)
    assert truncated > 0  # Acrobot's time limit cut episodes inside the shared prefix


def test_a_different_lambda_leaves_the_prefix(train_run: Path) -> None:
    for framework in ["pytorch", *RUST]:
        one = side(train_run, "cartpole_random", framework, 43, gae_lambda=1.0)
        other = side(train_run, "cartpole_random", framework, 43, gae_lambda=0.9)
        assert np.array_equal(one["actions"][:PARAMS["n_steps"]], other["actions"][:PARAMS["n_steps"]])
        assert shared_prefix(one["actions"], other["actions"]) < SHARED_PREFIX, framework
        assert not np.isclose(one["losses"][0], other["losses"][0], rtol=LOSS_RTOL)


def test_recorded_episodes_are_what_the_actions_give(train_run: Path, rl_sets_dir: Path) -> None:
    assert_episodes_replay(train_run, rl_sets_dir, measured(train_run))


def test_advantages_against_a_direct_sum() -> None:
    """GAE with lambda 1 is the discounted sum of rewards to the rollout's end (or the episode's),
    bootstrapped by the last value, minus the value."""
    rng = np.random.default_rng(4)
    rewards, values = rng.normal(size=8).tolist(), rng.normal(size=8).tolist()
    dones = [False, False, True, False, False, False, False, False]
    targets, adv = policy.advantages(rewards, values, dones, 0.7, 0.9, 1.0)
    expected = []
    for k in range(8):
        total, discount, j = 0.0, 1.0, k
        while True:
            total += discount * rewards[j]
            discount *= 0.9
            if dones[j]:
                break
            if j == 7:
                total += discount * 0.7
                break
            j += 1
        expected.append(total)
    np.testing.assert_allclose(targets, expected, rtol=1e-5)
    np.testing.assert_allclose(adv, np.asarray(expected) - values, rtol=1e-5, atol=1e-6)


PROGRAM_CASES = {
    "no steps per rollout": ({"n_steps": 0}, "n_steps"),
    "lambda above 1": ({"gae_lambda": 1.5}, "gae_lambda"),
    "no fixtures": ({}, "fixtures_dir"),
}


@pytest.mark.parametrize("framework", ["pytorch", *RUST])
@pytest.mark.parametrize("case", list(PROGRAM_CASES))
def test_a2c_program_refuses_bad_job(framework: str, case: str, tmp_path: Path, narrow_dir: Path) -> None:
    params, message = PROGRAM_CASES[case]
    config = agent_job(tmp_path, narrow_dir, "a2c", "a2c", framework, **params)
    assert_refused(program("a2c", framework), config, message)
