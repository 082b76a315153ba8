"""DQN trained end to end under the `train_agent` protocol: PyTorch and its twins on tch and candle.

Every side loads the same initial weights and reads the same exploration draws, random actions and
replay rows, and CartPole and the chain are stepped by gymnasium on one side and the step-exact
ports on the other. So the sides take the same actions, step for step, until floating-point
rounding first flips a greedy choice between two near-equal Q-values; they must agree over a long
prefix, and the losses of the updates in that prefix must agree closely. A twin given double targets
where PyTorch has plain ones leaves the prefix soon after learning starts: the test can fail.

Outside either harness, each side's recorded actions are replayed here in plain gymnasium from the
same starts: the episodes (returns, lengths, end steps) each side recorded must be what those actions
give, so the protocol's bookkeeping is checked against an independent reference. LunarLander trains
in PyTorch only (no Rust Box2D: `unsupported`). Bad jobs and matrices are refused with one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import load_run, rust_binary
from mlbench import agents
from rl_checks import (
    agent_job,
    assert_episodes_replay,
    assert_refused,
    measured,
    outputs,
    program,
    quiet_run,
    shared_prefix,
)
from test_bad_input import assert_bad_matrix

gym = pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")
pytest.importorskip("torch", reason="the dl extra (torch) is not installed")

from mlbench import synthetic_env  # noqa: E402  (after the gymnasium skip)

synthetic_env.register()

STEPS = 1000
PARAMS = {"total_timesteps": STEPS, "buffer_size": 1000, "batch_size": 32, "learning_starts": 200, "train_freq": 1,
          "target_update_freq": 100, "epsilon_decay": 0.995, "learning_rate": 1e-3}
PORTED = ["cartpole_random", "chain_random"]
SETS = [*PORTED, "lunarlander_random"]
ALGORITHMS = ["dqn", "ddqn", "dueling_dqn"]
# where each runs (the variants on one environment each, to keep the test short)
DATASETS_OF = {"dqn": SETS, "ddqn": ["chain_random"], "dueling_dqn": ["cartpole_random"]}
CELLS = [(algorithm, dataset) for algorithm, sets in DATASETS_OF.items() for dataset in sets if dataset in PORTED]
# dueling DQN explores on stable-baselines3's linear schedule (both sides compute it), the others on
# the specification's multiplicative one
OWN_PARAMS = {"dueling_dqn": {"exploration": "linear", "exploration_fraction": 0.3}}
RUST = ["tch", "candle"]
SEEDS = 2
# Steps every twin must share with PyTorch (measured here: all 1,500 of a longer run, on every seed,
# algorithm and environment; in 10,000-step runs the earliest parting came 478 updates in; double
# targets against plain ones part at steps 244-262, 44-62 updates in).
SHARED_PREFIX = 500
# The first updates' losses agree to this. A greedy choice inside the targets (double DQN's argmax
# over the next state's actions) can flip by rounding too, before any acted choice does, and from
# then on the weights drift apart (measured: the earliest came at update 88, candle's dueling double
# DQN on CartPole; the plain networks' losses stayed within 2e-7 over 400 updates).
LOSS_UPDATES, LOSS_RTOL = 50, 1e-4


@pytest.fixture(scope="module")
def sets_dir(rl_sets_dir: Path) -> Path:
    return rl_sets_dir


@pytest.fixture(scope="module")
def train_run(tmp_path_factory: pytest.TempPathFactory, sets_dir: Path) -> Path:
    rust_binary("dqn")
    return quiet_run(tmp_path_factory.mktemp("dqn"), sets_dir, {
        "task": "dqn", "repetitions": SEEDS, "processes": 1, "warmup": 1, "datasets": PORTED,
        "algorithms": {name: PARAMS | OWN_PARAMS.get(name, {}) | {"datasets": DATASETS_OF[name]}
                       for name in ALGORITHMS}})


def by_side(run: Path) -> dict[tuple[str, str, str, int], dict[str, Any]]:
    return {(r["algorithm"], r["dataset"], r["framework"], r["seed"]): r for r in measured(run)}


def test_every_job_ran_or_is_unsupported_with_a_reason(train_run: Path) -> None:
    records = load_run(train_run)
    updates = len(agents.update_steps(PARAMS, STEPS))
    for r in records:
        if r["language"] == "rust" and r["dataset"] == "lunarlander_random":
            assert r["status"] == "unsupported" and "Box2D" in r["error"]
            continue
        assert r["status"] == "ok", r["error"]
        if r["warmup"]:  # stopped after its updates: every code path, not the whole run
            assert r["counts"]["update"] == agents.WARMUP_UPDATES
            continue
        assert r["counts"] == {"train": STEPS, "act": STEPS, "env": STEPS, "update": updates}
        assert r["throughput"]["update_samples_per_s"] == pytest.approx(updates / r["timings_s"]["update"])
        parts = sum(r["timings_s"][phase] for phase in ("act", "env", "update"))
        assert parts <= r["timings_s"]["train"]
        assert r["metrics"]["episodes"] >= 5 and r["metrics"]["final_return"] is not None
    counted = [r for r in records if not r["warmup"] or r["status"] == "unsupported"]
    # every side on the ported sets; LunarLander (dqn only): PyTorch's seeds and one record per Rust twin
    assert len(counted) == len(CELLS) * (1 + len(RUST)) * SEEDS + SEEDS + len(RUST)


@pytest.mark.parametrize("framework", RUST)
def test_twins_take_pytorchs_actions_and_losses(train_run: Path, framework: str) -> None:
    sides = by_side(train_run)
    for algorithm, dataset in CELLS:
        for seed in range(42 + 1, 42 + 1 + SEEDS):
            py = outputs(train_run, sides[(algorithm, dataset, "pytorch", seed)])
            rs = outputs(train_run, sides[(algorithm, dataset, framework, seed)])
            prefix = shared_prefix(py["actions"], rs["actions"])
            where = f"{framework} {algorithm} {dataset} seed {seed}"
            assert prefix >= SHARED_PREFIX, f"{where}: actions differ from step {prefix}"
            inside = min(len(agents.update_steps(PARAMS, prefix)), LOSS_UPDATES)
            np.testing.assert_allclose(rs["losses"][:inside], py["losses"][:inside], rtol=LOSS_RTOL, atol=1e-7,
                                       err_msg=where)
            done = int(np.searchsorted(py["episode_ends"], prefix, side="right"))
            assert np.array_equal(py["returns"][:done], rs["returns"][:done]), where


def test_double_targets_leave_the_prefix(train_run: Path) -> None:
    """The negative control: PyTorch's plain DQN against a twin's double DQN from the same weights
    and streams parts soon after learning starts, far inside the shared prefix asked above."""
    sides = by_side(train_run)
    for dataset in DATASETS_OF["ddqn"]:
        py = outputs(train_run, sides[("dqn", dataset, "pytorch", 43)])
        rs = outputs(train_run, sides[("ddqn", dataset, "tch", 43)])
        assert np.array_equal(py["actions"][:PARAMS["learning_starts"]], rs["actions"][:PARAMS["learning_starts"]])
        assert shared_prefix(py["actions"], rs["actions"]) < SHARED_PREFIX, dataset


def test_recorded_episodes_are_what_the_actions_give(train_run: Path, sets_dir: Path) -> None:
    assert_episodes_replay(train_run, sets_dir, [r for r in measured(train_run) if r["algorithm"] == "dqn"])


def test_lunarlander_trains_in_pytorch(train_run: Path) -> None:
    python = [r for r in measured(train_run) if r["dataset"] == "lunarlander_random"]
    assert {r["framework"] for r in python} == {"pytorch"} and len(python) == SEEDS


def test_the_judge_reads_the_episodes(train_run: Path) -> None:
    for r in measured(train_run):
        got = outputs(train_run, r)
        threshold = agents.SUCCESS_RETURN[{"cartpole_random": "CartPole-v1", "chain_random": "SyntheticChain-v0",
                                           "lunarlander_random": "LunarLander-v3"}[r["dataset"]]]
        last = got["returns"][-agents.WINDOW:]
        assert r["metrics"]["final_return"] == pytest.approx(float(np.mean(last)))
        assert r["metrics"]["success_rate"] == pytest.approx(float(np.mean(last >= threshold)))
        assert r["metrics"]["episodes"] == len(got["returns"])


def test_the_comparison_uses_the_seeds_iqm(train_run: Path, tmp_path: Path) -> None:
    """Same quality inside overlapping IQM CIs; one Rust side's returns raised far above PyTorch's
    on every seed is a quality mismatch."""
    from mlbench import stats

    table, loaded = stats.load([train_run])
    comparisons = stats.compare(table, loaded, phase="train")
    assert len(comparisons) == len(CELLS) * len(RUST)
    assert not comparisons["quality_mismatch"].any()
    assert (comparisons["agreement"] >= SHARED_PREFIX / STEPS).all()
    records = load_run(train_run)
    for r in records:
        if r["framework"] == "candle" and r["status"] == "ok":
            r["metrics"]["final_return"] += 1000.0
    run = tmp_path / "run"
    run.mkdir()
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    for name in ("meta.json",):
        (run / name).write_text((train_run / name).read_text())
    (run / "predictions").symlink_to(train_run / "predictions")
    table, loaded = stats.load([run])
    changed = stats.compare(table, loaded, phase="train")
    assert changed.loc[changed["rust_framework"] == "candle", "quality_mismatch"].all()
    assert not changed.loc[changed["rust_framework"] == "tch", "quality_mismatch"].any()


GOOD: dict[str, Any] = {"task": "dqn", "repetitions": 1, "processes": 1, "warmup": 0, "datasets": ["cartpole_random"],
                        "algorithms": {"dqn": {"total_timesteps": 100, "learning_starts": 10, "buffer_size": 50}}}
MATRIX_CASES = {
    "buffer of 0": ({"algorithms": {"dqn": {"buffer_size": 0}}}, "buffer_size: 0 is less than the minimum of 1"),
    "gamma 0": ({"algorithms": {"dqn": {"gamma": 0}}}, "gamma: 0 is less than or equal to the minimum of 0"),
    "gamma above 1": ({"algorithms": {"dqn": {"gamma": 1.5}}}, "gamma: 1.5 is greater than the maximum of 1"),
    "batch above the buffer": ({"algorithms": {"dqn": {"buffer_size": 50, "batch_size": 64}}},
                               "batch_size: 64 is above buffer_size 50"),
    "unknown environment": ({"datasets": ["mountaincar_random"]}, "datasets: unknown dataset 'mountaincar_random'"),
    "unknown algorithm": ({"algorithms": {"rainbow": {}}}, "rainbow"),
    "more steps than the set": ({"algorithms": {"dqn": {"total_timesteps": 501}}},
                                "total_timesteps: 501 is above the 500 steps"),
    "epsilon rising": ({"algorithms": {"dqn": {"epsilon_start": 0.1, "epsilon_end": 0.5}}},
                       "epsilon_end: 0.5 is above epsilon_start 0.1"),
}




@pytest.mark.parametrize("case", list(MATRIX_CASES))
def test_bad_dqn_matrix(case: str, tmp_path: Path, narrow_dir: Path) -> None:
    change, message = MATRIX_CASES[case]
    matrix = GOOD | change
    if "algorithms" in change and "dqn" in change["algorithms"]:
        matrix = GOOD | {"algorithms": {"dqn": GOOD["algorithms"]["dqn"] | change["algorithms"]["dqn"]}}
    assert_bad_matrix(matrix, message, tmp_path, narrow_dir)


PROGRAM_CASES = {
    "batch above the buffer": ({"batch_size": 64}, "batch_size: 64 is above buffer_size 50"),
    "gamma above 1": ({"gamma": 2.0}, "gamma"),
    "more steps than the set": ({"total_timesteps": 501}, "total_timesteps: 501 is above the 500 steps"),
    "no fixtures": ({}, "fixtures_dir"),
}


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["pytorch", *RUST])
@pytest.mark.parametrize("case", list(PROGRAM_CASES))
def test_dqn_program_refuses_bad_job(framework: str, case: str, tmp_path: Path, narrow_dir: Path) -> None:
    params, message = PROGRAM_CASES[case]
    small = {"buffer_size": 50, "batch_size": 8, "learning_starts": 10, "target_update_freq": 10}
    config = agent_job(tmp_path, narrow_dir, "dqn", "dqn", framework, **(small | params))
    assert_refused(program("dqn", framework), config, message)


def test_the_report_table_and_curves(train_run: Path) -> None:
    """The notebook's RL section: one row per cell and side with the seeds' IQM inside its CI, the time
    shares of a step below 1, and one return curve per side."""
    from mlbench import plots, stats

    table, _ = stats.load([train_run])
    rl = stats.reinforcement_learning(table)
    assert len(rl) == len(CELLS) * (1 + len(RUST)) + 1  # LunarLander: PyTorch only
    assert (rl["seeds"] == SEEDS).all()
    assert ((rl["IQM CI low"] <= rl["final return IQM"]) & (rl["final return IQM"] <= rl["IQM CI high"])).all()
    shares = rl["act share"] + rl["env share"] + rl["update share"]
    assert ((shares > 0.5) & (shares <= 1.0)).all()
    assert stats.deep_learning(table).empty  # agents are not the deep-learning section's training tasks
    figure = plots.return_curves(table)
    assert figure is not None
    assert {line.get_label().split(" ")[0] for ax in figure.axes for line in ax.get_lines()} == {"pytorch", *RUST}
