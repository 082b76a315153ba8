"""PPO trained end to end under the `minibatches` loop of the `train_agent` protocol: PyTorch and its
twins on tch and candle.

The same weights, draws and minibatch shuffles on every side, CartPole and Acrobot stepped by
gymnasium and by the ports: the sides take the same actions until rounding first moves a cumulative
probability across a draw, and the losses of the updates inside that prefix (each the mean over its
epochs' minibatches) agree closely. Acrobot's 500-step limit cuts the untrained policy's episodes,
so the truncation bootstrap is exercised; a rollout of 96 rows in minibatches of 40 leaves a short
last minibatch. A clip range of 0.05 against 0.2 from the same weights and draws parts once the
ratios leave the narrower range (the negative control); other shuffles give other updates. The
shuffles are permutations; bad input is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
from test_bad_input import assert_bad_matrix

pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")
pytest.importorskip("torch", reason="the dl extra (torch) is not installed")

STEPS = 1500
N_STEPS = 96
PARAMS = {"total_timesteps": STEPS, "n_steps": N_STEPS, "batch_size": 40, "n_epochs": 3, "hidden_size": 32}
PORTED = ["cartpole_random", "acrobot_random"]
RUST = ["tch", "candle"]
SEEDS = 2
# Steps every twin must share with PyTorch (measured: all 1,500, every seed and environment), and
# the tolerance of the updates' losses inside them (measured: within 1e-7 relative, 6e-6 absolute).
SHARED_PREFIX = 1200
LOSS_RTOL, LOSS_ATOL = 1e-5, 1e-5


@pytest.fixture(scope="module")
def train_run(tmp_path_factory: pytest.TempPathFactory, rl_sets_dir: Path) -> Path:
    rust_binary("ppo")
    return quiet_run(tmp_path_factory.mktemp("ppo"), rl_sets_dir, {
        "task": "ppo", "repetitions": SEEDS, "processes": 1, "warmup": 1, "datasets": [*PORTED, "lunarlander_random"],
        "algorithms": {"ppo": PARAMS | {"clip_range": [0.2, 0.05]}}})


def test_every_job_ran_or_is_unsupported_with_a_reason(train_run: Path) -> None:
    for r in assert_ran_or_unsupported(train_run, STEPS, STEPS // N_STEPS):
        assert r["solver"]["name"].startswith("PPO") and "3 epochs of 40-row minibatches" in r["solver"]["name"]


@pytest.mark.parametrize("framework", RUST)
def test_twins_take_pytorchs_actions_and_losses(train_run: Path, framework: str) -> None:
    truncated = 0
    for dataset in PORTED:
        for seed in range(42 + 1, 42 + 1 + SEEDS):
            py = side(train_run, dataset, "pytorch", seed, clip_range=0.2)
            rs = side(train_run, dataset, framework, seed, clip_range=0.2)
            truncated += assert_follows(py, rs, f"{framework} {dataset} seed {seed}", SHARED_PREFIX, N_STEPS,
                                        LOSS_RTOL, LOSS_ATOL)
    assert truncated > 0  # Acrobot's time limit cut episodes inside the shared prefix


def test_a_different_clip_range_leaves_the_prefix(train_run: Path) -> None:
    for framework in ["pytorch", *RUST]:
        one = side(train_run, "cartpole_random", framework, 43, clip_range=0.2)
        other = side(train_run, "cartpole_random", framework, 43, clip_range=0.05)
        assert np.array_equal(one["actions"][:N_STEPS], other["actions"][:N_STEPS])  # the first rollout is shared
        assert shared_prefix(one["actions"], other["actions"]) < SHARED_PREFIX, framework
        # the first update's minibatches stay inside the narrower range (its loss is shared); later ones leave it
        assert not np.allclose(one["losses"], other["losses"], rtol=LOSS_RTOL, atol=LOSS_ATOL)


def test_recorded_episodes_are_what_the_actions_give(train_run: Path, rl_sets_dir: Path) -> None:
    assert_episodes_replay(train_run, rl_sets_dir, measured(train_run))


def test_the_shuffles_are_permutations_drawn_after_the_samples() -> None:
    params = {"n_steps": 8, "n_epochs": 3}
    streams = policy.draw("minibatches", params, np.random.default_rng(5), 20)
    assert streams["order"].shape == (2, 3, 8) and streams["order"].dtype == np.int32  # 20 // 8 full rollouts
    assert all(sorted(row) == list(range(8)) for row in streams["order"].reshape(-1, 8).tolist())
    assert len({tuple(row) for row in streams["order"].reshape(-1, 8).tolist()}) == 6
    # the samples are A2C's: the same seed gives the rollouts loop the same draws
    rollouts = policy.draw("rollouts", params, np.random.default_rng(5), 20)
    assert np.array_equal(streams["sample"], rollouts["sample"]) and set(rollouts) == {"sample"}


def test_other_shuffles_give_other_updates(tmp_path: Path) -> None:
    """The update reads its shuffles: a reversed order gives another loss from the same rollout."""
    from safetensors.numpy import save_file

    from tasks.rl import a2c, ppo

    weights = tmp_path / "init.safetensors"
    save_file(a2c.init({"hidden_size": 16, "hidden_layers": 2}, 4, 2, 3), str(weights))
    rng = np.random.default_rng(0)
    rollout = policy.Rollout(rng.normal(size=(32, 4)).astype(np.float32), rng.integers(0, 2, 32),
                             rng.normal(size=32).astype(np.float32), rng.normal(size=32).astype(np.float32))
    params = {"learning_rate": 1e-2, "batch_size": 8, "clip_range": 0.2, "normalize_advantage": True,
              "ent_coef": 0.01, "vf_coef": 0.5, "max_grad_norm": 0.5, "adam_eps": 1e-5, "hidden_size": 16,
              "hidden_layers": 2}
    order = rng.permuted(np.tile(np.arange(32, dtype=np.int32), (2, 1)), axis=1)
    losses = []
    for shuffle in (order, order[:, ::-1].copy(), order):
        agent = ppo.build(params, 4, 2, weights)
        losses.append(agent.update(policy.Rollout(rollout.obs, rollout.actions, rollout.returns, rollout.advantages,
                                                  shuffle)))
    assert losses[0] == losses[2] and losses[0] != losses[1]


GOOD = {"task": "ppo", "repetitions": 1, "datasets": ["cartpole_random"],
        "algorithms": {"ppo": {"total_timesteps": 100, "n_steps": 16, "batch_size": 8, "hidden_size": 8}}}
MATRIX_CASES = {
    "minibatch above the rollout": ({"batch_size": 32}, "batch_size: 32 is above n_steps 16"),
    "one-row minibatches": ({"batch_size": 1}, "batch_size"),
    "no epochs": ({"n_epochs": 0}, "n_epochs"),
    "clip range of 0": ({"clip_range": 0.0}, "clip_range"),
}


@pytest.mark.parametrize("case", list(MATRIX_CASES))
def test_bad_ppo_matrix(case: str, tmp_path: Path, narrow_dir: Path) -> None:
    change, message = MATRIX_CASES[case]
    matrix = GOOD | {"algorithms": {"ppo": GOOD["algorithms"]["ppo"] | change}}
    assert_bad_matrix(matrix, message, tmp_path, narrow_dir)


PROGRAM_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "minibatch above the rollout": ({"n_steps": 16, "batch_size": 32}, "batch_size: 32 is above n_steps 16"),
    "lambda above 1": ({"gae_lambda": 1.5}, "gae_lambda"),
    "no fixtures": ({}, "fixtures_dir"),
}


@pytest.mark.parametrize("framework", ["pytorch", *RUST])
@pytest.mark.parametrize("case", list(PROGRAM_CASES))
def test_ppo_program_refuses_bad_job(framework: str, case: str, tmp_path: Path, narrow_dir: Path) -> None:
    params, message = PROGRAM_CASES[case]
    config = agent_job(tmp_path, narrow_dir, "ppo", "ppo", framework, **params)
    assert_refused(program("ppo", framework), config, message)
