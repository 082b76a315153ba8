"""Prioritized replay (`prioritized_dqn`, the `prioritized` loop of the `train_agent` protocol):
PyTorch and its twins on tch and candle.

The sum tree finds the row whose cumulative priority first exceeds a mass, as a cumulative sum
does; the importance-sampling weights are (N P)^-beta over the batch's largest; an update raises
the priority a new row gets. Trained end to end from the same weights and strata draws, the sides
sample the same rows and take the same updates until a TD error one float32 ulp apart (two
frameworks' kernels on the same rows) moves a priority across a stratum boundary: they must share
a long prefix of actions and their first updates' losses. alpha 0 (every priority 1: stratified
uniform sampling) against 0.6 from the same weights and draws parts soon after learning starts (the
negative control). Bad settings are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import rust_binary
from mlbench import agents
from mlbench.priorities import Priorities, SumTree, beta
from rl_checks import assert_episodes_replay, assert_ran_or_unsupported, measured, quiet_run, shared_prefix, side
from test_bad_input import assert_bad_matrix

pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")
pytest.importorskip("torch", reason="the dl extra (torch) is not installed")

STEPS = 1000
PARAMS = {"total_timesteps": STEPS, "buffer_size": 1000, "batch_size": 32, "learning_starts": 200, "train_freq": 1,
          "target_update_freq": 100, "epsilon_decay": 0.995, "learning_rate": 1e-3}
PORTED = ["cartpole_random", "chain_random"]
RUST = ["tch", "candle"]
SEEDS = 2
# Steps every twin must share with PyTorch, and the updates whose losses must agree (measured here:
# the actions parted at steps 354-496, 154-296 updates in; over the first 75 updates the losses
# agreed within 5.4e-5 relative, the chain's losses near 5e-4 drifting most).
SHARED_PREFIX, LOSS_UPDATES, LOSS_RTOL = 330, 75, 1e-4


def test_the_tree_finds_rows_as_a_cumulative_sum_does() -> None:
    rng = np.random.default_rng(3)
    values = rng.random(13) * (rng.random(13) < 0.8)  # some rows empty; 13 leaves padded to 16
    tree = SumTree(13)
    for row, value in enumerate(values.tolist()):
        tree.set(row, value)
    cumulative = np.cumsum(values)
    assert tree.total() == pytest.approx(cumulative[-1], rel=1e-12)
    for mass in rng.random(200) * cumulative[-1] * 0.999:
        expected = int(np.searchsorted(cumulative, mass, side="right"))
        got = tree.find(float(mass))
        # a mass within rounding of a boundary may fall either side of it
        assert got == expected or abs(cumulative[min(got, expected)] - mass) < 1e-12


def test_weights_and_priorities_follow_the_rules() -> None:
    priorities = Priorities(4, alpha=0.5, eps=0.01)
    for row in range(3):
        priorities.added(row)  # 1 each: the largest so far
    priorities.update(np.array([0]), np.array([3.99], dtype=np.float32))  # (3.99 + 0.01)^0.5 = 2
    assert priorities.tree.get(0) == pytest.approx(2.0) and priorities.max_priority == pytest.approx(4.0)
    rows, weights = priorities.sample([0.1, 0.5], filled=3, beta=1.0)  # total 4: strata [0, 2) and [2, 4)
    assert rows.tolist() == [0, 1]
    # N P = 3 x 2/4 and 3 x 1/4: weights 2/3 and 4/3, over the largest
    assert weights.tolist() == pytest.approx([0.5, 1.0])
    priorities.added(3)
    assert priorities.tree.get(3) == pytest.approx(2.0)  # the largest priority so far, 4, to the alpha
    assert beta(0.4, 0, 100) == 0.4 and beta(0.4, 50, 100) == pytest.approx(0.7) and beta(0.4, 200, 100) == 1.0


@pytest.fixture(scope="module")
def train_run(tmp_path_factory: pytest.TempPathFactory, rl_sets_dir: Path) -> Path:
    rust_binary("dqn")
    return quiet_run(tmp_path_factory.mktemp("prioritized"), rl_sets_dir, {
        "task": "dqn", "repetitions": SEEDS, "processes": 1, "warmup": 1, "datasets": PORTED,
        "algorithms": {"prioritized_dqn": PARAMS | {"alpha": [0.6, 0.0]}}})


def test_every_job_ran(train_run: Path) -> None:
    for r in assert_ran_or_unsupported(train_run, STEPS, len(agents.update_steps(PARAMS, STEPS))):
        assert r["solver"]["name"].startswith("prioritized double DQN")


@pytest.mark.parametrize("framework", RUST)
def test_twins_sample_and_update_as_pytorch_does(train_run: Path, framework: str) -> None:
    for dataset in PORTED:
        for seed in range(42 + 1, 42 + 1 + SEEDS):
            py = side(train_run, dataset, "pytorch", seed, alpha=0.6)
            rs = side(train_run, dataset, framework, seed, alpha=0.6)
            where = f"{framework} {dataset} seed {seed}"
            prefix = shared_prefix(py["actions"], rs["actions"])
            assert prefix >= SHARED_PREFIX, f"{where}: actions differ from step {prefix}"
            np.testing.assert_allclose(rs["losses"][:LOSS_UPDATES], py["losses"][:LOSS_UPDATES], rtol=LOSS_RTOL,
                                       err_msg=where)


def test_uniform_strata_leave_the_prefix(train_run: Path) -> None:
    for framework in ["pytorch", *RUST]:
        prioritized = side(train_run, "cartpole_random", framework, 43, alpha=0.6)
        uniform = side(train_run, "cartpole_random", framework, 43, alpha=0.0)
        assert np.array_equal(prioritized["losses"][:1], uniform["losses"][:1])  # every priority 1 at first
        assert shared_prefix(prioritized["actions"], uniform["actions"]) < SHARED_PREFIX, framework
        assert not np.allclose(prioritized["losses"][:LOSS_UPDATES], uniform["losses"][:LOSS_UPDATES], rtol=LOSS_RTOL)


def test_recorded_episodes_are_what_the_actions_give(train_run: Path, rl_sets_dir: Path) -> None:
    assert_episodes_replay(train_run, rl_sets_dir, measured(train_run))


GOOD = {"task": "dqn", "repetitions": 1, "datasets": ["cartpole_random"],
        "algorithms": {"prioritized_dqn": {"total_timesteps": 100, "buffer_size": 50, "learning_starts": 10}}}


@pytest.mark.parametrize(("change", "message"), [
    ({"prioritized_dqn": {"alpha": 1.5}}, "alpha"),
    ({"prioritized_dqn": {"priority_eps": 0.0}}, "priority_eps"),
    ({"dqn": {"alpha": 0.6}}, "alpha"),  # a plain DQN has no priorities
])
def test_bad_prioritized_matrix(change: dict, message: str, tmp_path: Path, narrow_dir: Path) -> None:
    name, settings = next(iter(change.items()))
    matrix = GOOD | {"algorithms": {name: GOOD["algorithms"]["prioritized_dqn"] | settings}}
    assert_bad_matrix(matrix, message, tmp_path, narrow_dir)
