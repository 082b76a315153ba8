"""REINFORCE trained end to end under the on-policy loop of the `train_agent` protocol: PyTorch and
its twins on tch and candle.

Every side loads the same initial weights and samples its policy from the same uniform draws, and
CartPole and the chain are stepped by gymnasium on one side and the step-exact ports on the other.
So the sides take the same actions, step for step, until floating-point rounding first moves a
cumulative probability across a draw; they must agree over a long prefix, and the losses of the
episodes' updates in that prefix must agree closely. A twin that weights its log-probabilities by
the raw returns where PyTorch standardises them leaves the prefix soon: the test can fail. The
recorded episodes are replayed in plain gymnasium from the same starts (an independent reference
for the bookkeeping). Bad jobs and matrices are refused with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import load_run, rust_binary
from mlbench import agents, policy
from rl_checks import (
    agent_job,
    assert_episodes_replay,
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


STEPS = 1000
PARAMS = {"total_timesteps": STEPS, "learning_rate": 1e-2, "hidden_size": 32}
PORTED = ["cartpole_random", "chain_random"]
RUST = ["tch", "candle"]
SEEDS = 2
# Steps every twin must share with PyTorch (measured: all 1,000, every seed, environment and side),
# and the updates (episodes) whose losses must agree: within 1e-4 relative, or 1e-5 absolute, since
# standardised weights sum to zero and a loss can sit near 0 (measured: raw-returns losses within
# 3.3e-7 relative; standardised ones up to 1.3e-4 relative of a loss near zero).
SHARED_PREFIX = 800
LOSS_UPDATES, LOSS_RTOL, LOSS_ATOL = 20, 1e-4, 1e-5


@pytest.fixture(scope="module")
def train_run(tmp_path_factory: pytest.TempPathFactory, rl_sets_dir: Path) -> Path:
    rust_binary("reinforce")
    return quiet_run(tmp_path_factory.mktemp("reinforce"), rl_sets_dir, {
        "task": "reinforce", "repetitions": SEEDS, "processes": 1, "warmup": 1,
        "datasets": [*PORTED, "lunarlander_random"],
        # standardised returns, and the negative control's raw returns
        "algorithms": {"reinforce": PARAMS | {"normalize_returns": [True, False]}}})


def test_every_job_ran_or_is_unsupported_with_a_reason(train_run: Path) -> None:
    records = load_run(train_run)
    for r in records:
        if r["language"] == "rust" and r["dataset"] == "lunarlander_random":
            assert r["status"] == "unsupported" and "Box2D" in r["error"]
            continue
        assert r["status"] == "ok", r["error"]
        if r["warmup"]:  # stopped after its updates: every code path, not the whole run
            assert r["counts"]["update"] <= agents.WARMUP_UPDATES
            continue
        assert r["counts"]["train"] == STEPS and r["counts"]["update"] == r["metrics"]["episodes"] >= 5
        assert r["solver"]["name"].startswith("REINFORCE")
        parts = sum(r["timings_s"][phase] for phase in ("act", "env", "update"))
        assert parts <= r["timings_s"]["train"]


@pytest.mark.parametrize("framework", RUST)
def test_twins_take_pytorchs_actions_and_losses(train_run: Path, framework: str) -> None:
    for dataset in PORTED:
        for seed in range(42 + 1, 42 + 1 + SEEDS):
            py, rs = side(train_run, dataset, "pytorch", seed, normalize_returns=True), side(
                train_run, dataset, framework, seed, normalize_returns=True)
            prefix = shared_prefix(py["actions"], rs["actions"])
            where = f"{framework} {dataset} seed {seed}"
            assert prefix >= SHARED_PREFIX, f"{where}: actions differ from step {prefix}"
            done = int(np.searchsorted(py["episode_ends"], prefix, side="right"))  # episodes inside the prefix
            assert done >= 5, where
            inside = min(done, LOSS_UPDATES)
            np.testing.assert_allclose(rs["losses"][:inside], py["losses"][:inside], rtol=LOSS_RTOL, atol=LOSS_ATOL,
                                       err_msg=where)
            assert np.array_equal(py["returns"][:done], rs["returns"][:done]), where


def test_raw_returns_leave_the_prefix(train_run: Path) -> None:
    """The negative control: standardised against raw returns from the same weights and draws take
    the same first episode, then part after its update (the losses differ at once)."""
    for framework in ["pytorch", *RUST]:
        standard = side(train_run, "cartpole_random", framework, 43, normalize_returns=True)
        raw = side(train_run, "cartpole_random", framework, 43, normalize_returns=False)
        first = int(standard["episode_ends"][0])
        assert np.array_equal(standard["actions"][:first], raw["actions"][:first])
        assert shared_prefix(standard["actions"], raw["actions"]) < SHARED_PREFIX, framework
        assert not np.isclose(standard["losses"][0], raw["losses"][0], rtol=LOSS_RTOL)


def test_recorded_episodes_are_what_the_actions_give(train_run: Path, rl_sets_dir: Path) -> None:
    assert_episodes_replay(train_run, rl_sets_dir, measured(train_run))


def test_the_comparison_uses_the_seeds_iqm(train_run: Path) -> None:
    from mlbench import stats

    table, loaded = stats.load([train_run])
    comparisons = stats.compare(table, loaded, phase="train")
    assert len(comparisons) == len(PORTED) * 2 * len(RUST)  # standardised and raw returns
    assert not comparisons["quality_mismatch"].any()
    assert (comparisons["agreement"] >= SHARED_PREFIX / STEPS).all()
    rl = stats.reinforcement_learning(table)
    assert set(rl["framework"]) == {"pytorch", *RUST}


def test_sampling_and_weights_match_numpy() -> None:
    """The loop's inverse-CDF draw and returns-to-go against numpy's own reading of them."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        p = rng.dirichlet(np.ones(4)).astype(np.float32)
        u = float(rng.random())
        expected = min(int(np.searchsorted(np.cumsum(p.astype(np.float64)), u, side="right")), 3)
        assert policy.sample_action(p, u) == expected
    rewards = rng.normal(size=50).tolist()
    gamma = 0.9
    discounts = gamma ** np.arange(50)
    returns = np.array([np.sum(rewards[k:] * discounts[:50 - k]) for k in range(50)])
    np.testing.assert_allclose(policy.step_weights(rewards, gamma, False), returns, rtol=1e-6)
    standard = (returns - returns.mean()) / (returns.std() + policy.STANDARDISE_EPS)
    np.testing.assert_allclose(policy.step_weights(rewards, gamma, True), standard, rtol=1e-5, atol=1e-6)


GOOD: dict[str, Any] = {"task": "reinforce", "repetitions": 1, "processes": 1, "warmup": 0,
                        "datasets": ["cartpole_random"], "algorithms": {"reinforce": {"total_timesteps": 100}}}
MATRIX_CASES = {
    "gamma 0": ({"gamma": 0}, "gamma: 0 is less than or equal to the minimum of 0"),
    "a replay setting": ({"buffer_size": 100}, "buffer_size"),
    "more steps than the set": ({"total_timesteps": 501}, "total_timesteps: 501 is above the 500 steps"),
    "not a boolean": ({"normalize_returns": "yes"}, "normalize_returns"),
}


@pytest.mark.parametrize("case", list(MATRIX_CASES))
def test_bad_reinforce_matrix(case: str, tmp_path: Path, narrow_dir: Path) -> None:
    change, message = MATRIX_CASES[case]
    matrix = GOOD | {"algorithms": {"reinforce": GOOD["algorithms"]["reinforce"] | change}}
    assert_bad_matrix(matrix, message, tmp_path, narrow_dir)


PROGRAM_CASES = {
    "gamma above 1": ({"gamma": 2.0}, "gamma"),
    "more steps than the set": ({"total_timesteps": 501}, "total_timesteps: 501 is above the 500 steps"),
    "no fixtures": ({}, "fixtures_dir"),
}


@pytest.mark.parametrize("framework", ["pytorch", *RUST])
@pytest.mark.parametrize("case", list(PROGRAM_CASES))
def test_reinforce_program_refuses_bad_job(framework: str, case: str, tmp_path: Path, narrow_dir: Path) -> None:
    params, message = PROGRAM_CASES[case]
    config = agent_job(tmp_path, narrow_dir, "reinforce", "reinforce", framework, **params)
    assert_refused(program("reinforce", framework), config, message)


def test_the_report_shows_performance_profiles(train_run: Path) -> None:
    """One panel per cell (CartPole, the chain and LunarLander, each with standardised and raw
    returns), one curve per side: the share of seeds above tau, falling to 0 past the best seed."""
    from mlbench import plots, stats

    table, _ = stats.load([train_run])
    figure = plots.performance_profiles(table)
    assert figure is not None and len(figure.axes) == (len(PORTED) + 1) * 2
    for ax in figure.axes:
        sides = {line.get_label().split(" ")[0] for line in ax.get_lines()}
        assert sides == ({"pytorch"} if "lunarlander" in ax.get_title(loc="left") else {"pytorch", *RUST})
        for line in ax.get_lines():
            share = np.asarray(line.get_ydata())
            assert 0 <= share[0] <= 1 and share[-1] == 0 and (np.diff(share) <= 0).all()
