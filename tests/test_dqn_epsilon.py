"""Exploration schedules: the Python harness's (mlbench.exploration) and the Rust twin (bench-core's
exploration.rs, run by `dqn epsilon`) give the same float64 epsilon at every step, bit for bit: the specification's
multiplicative schedule over its grid (start 1.0 and 0.8, end 0.01 and 0.05, decay 0.995 and 0.999)
and stable-baselines3's linear one. The multiplicative schedule must reach its floor and stay
there; the linear one must run from start to end over its fraction of the steps."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import rust_binary
from mlbench import exploration

ADVANCES = 5000


def rust_schedule(tmp_path: Path, *args: str) -> np.ndarray:
    out = tmp_path / "epsilon.npy"
    done = subprocess.run([str(rust_binary("dqn")), "epsilon", *args, "--out", str(out)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return np.load(out)


@pytest.mark.parametrize(("start", "end", "decay"), list(itertools.product([1.0, 0.8], [0.01, 0.05], [0.995, 0.999])))
def test_multiplicative_schedules_are_identical(start: float, end: float, decay: float, tmp_path: Path) -> None:
    epsilon = exploration.MultiplicativeEpsilon(start, end, decay)
    values = [epsilon.value]
    for _ in range(ADVANCES):
        epsilon.advance()
        values.append(epsilon.value)
    rust = rust_schedule(tmp_path, "--schedule", "multiplicative", "--start", repr(start), "--end", repr(end),
                         "--decay", repr(decay), "--advances", str(ADVANCES))
    assert np.array_equal(rust, np.asarray(values)), np.flatnonzero(rust != np.asarray(values))[:5]
    floor = np.flatnonzero(rust == end)
    assert len(floor) and np.all(rust[floor[0]:] == end), "the schedule must reach its floor and stay there"
    assert np.all(np.diff(rust) <= 0)


@pytest.mark.parametrize(("start", "end", "fraction", "total"), [(1.0, 0.05, 0.1, 10_000), (1.0, 0.01, 0.5, 777)])
def test_linear_schedules_are_identical(start: float, end: float, fraction: float, total: int, tmp_path: Path) -> None:
    values = np.asarray([exploration.linear_epsilon(start, end, fraction, step, total) for step in range(total + 1)])
    rust = rust_schedule(tmp_path, "--schedule", "linear", "--start", repr(start), "--end", repr(end), "--fraction",
                         repr(fraction), "--total-steps", str(total))
    assert np.array_equal(rust, values)
    assert values[0] == start and values[-1] == end
    assert np.all(values[int(np.ceil(fraction * total)) + 1:] == end)


@pytest.mark.parametrize(("start", "end", "fraction", "total"), [(1.0, 0.05, 0.1, 10_000), (1.0, 0.01, 0.5, 777)])
def test_linear_schedule_is_stable_baselines3s(start: float, end: float, fraction: float, total: int) -> None:
    """The linear schedule is the library's own: its get_linear_fn at the progress its DQN passes."""
    utils = pytest.importorskip("stable_baselines3.common.utils", reason="the rl extra is not installed")
    library = utils.get_linear_fn(start, end, fraction)
    expected = np.asarray([library(1.0 - float(step) / float(total)) for step in range(total + 1)])
    ours = np.asarray([exploration.linear_epsilon(start, end, fraction, step, total) for step in range(total + 1)])
    assert np.array_equal(ours, expected)
