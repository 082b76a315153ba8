"""Shared fixtures: datasets generated into a temporary folder, CLI runners, the Rust build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from mlbench import datasets as ds  # noqa: E402
from mlbench.paths import RUST_TARGET, TASK_SPECS  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
TEST_DATASETS = ["diabetes", "synthetic_linear", "synthetic_nonlinear", "synthetic_sparse", "iris", "breast_cancer",
                 "synthetic_blobs", "synthetic_moons"]


# The rollouts sets of the RL tests: every environment (Acrobot's ported dynamics, LunarLander's
# Python-only Box2D), prepared once per session.
RL_SETS = ["cartpole_random", "acrobot_random", "chain_random", "lunarlander_random"]


@pytest.fixture(scope="session")
def rl_sets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")
    folder = tmp_path_factory.mktemp("rollouts")
    ds.prepare(RL_SETS, folder, log=lambda _: None)
    return folder


@pytest.fixture(scope="session")
def narrow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CartPole rollouts set of 500 steps and 2 copies, for the limits' bad-input cases."""
    pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")
    from mlbench import rollouts

    folder = tmp_path_factory.mktemp("narrow")
    ds.write("cartpole_random", rollouts.random_rollouts("CartPole-v1", seed=5, steps=500, n_envs=2), folder)
    return folder


@pytest.fixture(scope="session")
def datasets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("datasets")
    ds.prepare(TEST_DATASETS, folder, log=lambda _: None)
    return folder


def rust_binary(name: str) -> Path:
    binary = RUST_TARGET / name
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run `make build` (make test builds it first)")
    return binary


@pytest.fixture(scope="session")
def rust_regression() -> Path:
    return rust_binary("regression")


@pytest.fixture(scope="session")
def rust_classical() -> list[Path]:
    return [rust_binary(name) for name in ("regression", "svm", "clustering")]


def run_matrix(folder: Path, datasets_dir: Path, matrix: dict) -> Path:
    """Run a matrix (all languages and frameworks) into folder/run and return the run folder."""
    path = write_yaml(folder / "matrix.yaml", matrix)
    result = mlbench("run", path, "--out", folder / "run", "--datasets-dir", datasets_dir, "--no-table")
    assert result.returncode == 0, result.stderr + result.stdout
    return folder / "run"


def load_run(run: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]


@pytest.fixture(scope="session")
def fault_specs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real task specs plus the fault-injection task, for MLBENCH_TASK_SPECS."""
    folder = tmp_path_factory.mktemp("task_specs")
    for spec in TASK_SPECS.glob("*.yaml"):
        shutil.copy(spec, folder)
    fault = yaml.safe_load((FIXTURES / "fault.yaml").read_text())
    fault["python"]["script"] = str(FIXTURES / "fault_task.py")
    fault["rust"]["binary"] = str(FIXTURES / "fault_task_rust.sh")
    (folder / "fault.yaml").write_text(yaml.safe_dump(fault))
    return folder


def mlbench(*args: str | Path, specs: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = os.environ.copy()
    if specs is not None:
        env["MLBENCH_TASK_SPECS"] = str(specs)
    return subprocess.run([sys.executable, "-m", "mlbench", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=timeout)


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
