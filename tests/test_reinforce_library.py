"""The REINFORCE library comparison (`reinforce_library`): no Python library that installs beside the
pinned stack runs plain REINFORCE, so the library side records `unsupported` with the reason, and the
Rust twins run the `reinforce` task's algorithm from the same shared weights and draws.

The reason is checked against torchrl itself (its ReinforceLoss still needs a critic: when a release
drops that, this test fails and the rule must be revisited); every job runs or is unsupported with a
reason; the twins' episodes in this task are, action for action, the ones they take in the
`reinforce` task from the same seed (so the cells a reader compares across the two tasks are the
same work); the recorded episodes replay in plain gymnasium; no comparison is made without a
library side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import load_run, rust_binary
from mlbench import stats
from mlbench.config import load_task_spec
from rl_checks import assert_episodes_replay, measured, quiet_run, side

pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")
torch = pytest.importorskip("torch", reason="the dl extra (torch) is not installed")
pytest.importorskip("torchrl", reason="the rl extra (torchrl) is not installed")

STEPS = 1000
PARAMS = {"total_timesteps": STEPS, "learning_rate": 1e-2, "hidden_size": 32}
PORTED = ["cartpole_random", "chain_random"]
RUST = ["tch", "candle"]
SEEDS = 2


def matrix(task: str, datasets: list[str]) -> dict[str, object]:
    return {"task": task, "repetitions": SEEDS, "processes": 1, "warmup": 0, "datasets": datasets,
            "algorithms": {"reinforce": PARAMS}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, rl_sets_dir: Path) -> tuple[Path, Path]:
    rust_binary("reinforce")
    library = quiet_run(tmp_path_factory.mktemp("reinforce_library"), rl_sets_dir,
                        matrix("reinforce_library", [*PORTED, "lunarlander_random"]))
    task = quiet_run(tmp_path_factory.mktemp("reinforce"), rl_sets_dir, matrix("reinforce", PORTED))
    return library, task


def test_torchrls_reinforce_loss_still_needs_a_critic() -> None:
    """The unsupported rule's reason, read from torchrl: its ReinforceLoss cannot be built from a
    policy alone."""
    from tensordict.nn import TensorDictModule
    from torchrl.modules import ProbabilisticActor
    from torchrl.objectives import ReinforceLoss

    net = TensorDictModule(torch.nn.Linear(4, 2), in_keys=["observation"], out_keys=["logits"])
    actor = ProbabilisticActor(net, in_keys=["logits"], distribution_class=torch.distributions.Categorical)
    with pytest.raises(TypeError, match="critic_network"):
        ReinforceLoss(actor)
    reason = next(rule["reason"] for rule in load_task_spec("reinforce_library").unsupported
                  if rule["frameworks"] == ["torchrl"])
    assert "critic" in reason and "returns-to-go" in reason


def test_every_job_ran_or_is_unsupported_with_a_reason(runs: tuple[Path, Path]) -> None:
    library, _ = runs
    records = load_run(library)
    assert {r["framework"] for r in records} == {"torchrl", *RUST}
    for r in records:
        if r["framework"] == "torchrl":
            assert r["status"] == "unsupported" and "critic" in r["error"], r
        elif r["dataset"] == "lunarlander_random":
            assert r["status"] == "unsupported" and "Box2D" in r["error"]
        else:
            assert r["status"] == "ok", r["error"]
            assert r["counts"]["train"] == STEPS and r["counts"]["update"] == r["metrics"]["episodes"] >= 5
            assert r["solver"]["name"].startswith("REINFORCE")
    assert len(measured(library)) == len(PORTED) * len(RUST) * SEEDS


@pytest.mark.parametrize("framework", RUST)
def test_the_twins_run_the_reinforce_tasks_episodes(runs: tuple[Path, Path], framework: str) -> None:
    library, task = runs
    for dataset in PORTED:
        for seed in sorted({r["seed"] for r in measured(library)}):
            here, there = side(library, dataset, framework, seed), side(task, dataset, framework, seed)
            where = f"{framework} {dataset} seed {seed}"
            assert np.array_equal(here["actions"], there["actions"]), where
            np.testing.assert_array_equal(here["losses"], there["losses"], err_msg=where)
            assert np.array_equal(here["returns"], there["returns"]), where


def test_recorded_episodes_are_what_the_actions_give(runs: tuple[Path, Path], rl_sets_dir: Path) -> None:
    library, _ = runs
    assert_episodes_replay(library, rl_sets_dir, measured(library))


def test_no_comparison_without_a_library_side(runs: tuple[Path, Path]) -> None:
    library, _ = runs
    table, loaded = stats.load([library])
    assert len(stats.compare(table, loaded, phase="train")) == 0
    assert set(stats.reinforcement_learning(table)["framework"]) == set(RUST)
