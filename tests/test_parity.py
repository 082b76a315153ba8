"""Python vs Rust on the same jobs: same coefficients, same quality, same solver iterations.

Coefficients are recovered from each side's saved test-set predictions: predictions of a linear
model are exactly [X_test, 1] @ [w, b], and X_test has more rows than columns and full rank, so
least squares returns (w, b) to rounding. No side needs to export its model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import mlbench, write_yaml
from mlbench import datasets as ds

DATASETS = ["diabetes", "synthetic_linear", "synthetic_sparse"]
# Ridge at alpha 10 as well as 1: a changed alpha mapping moves these coefficients far past tolerance.
ALGORITHMS = {"linear": {}, "ridge": {"alpha": [1.0, 10.0]}, "lasso": {"alpha": 0.1},
              "elastic_net": {"alpha": 0.1, "l1_ratio": 0.5}}
COEF_RTOL = 1e-6  # max |w_py - w_rs| relative to max |w_py|; ridge's L-BFGS (tol 1e-4) lands ~1e-9
R2_TOL = 1e-3


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory: pytest.TempPathFactory, datasets_dir: Path, rust_regression: Path) -> Path:
    folder = tmp_path_factory.mktemp("parity")
    matrix = write_yaml(folder / "matrix.yaml", {"task": "regression", "repetitions": 1, "processes": 1, "warmup": 0,
                                                 "datasets": DATASETS, "algorithms": ALGORITHMS})
    result = mlbench("run", matrix, "--out", folder / "run", "--datasets-dir", datasets_dir, "--no-table")
    assert result.returncode == 0, result.stderr + result.stdout
    return folder / "run"


def load_records(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]


def pairs(run: Path) -> dict[tuple[str, str, str], dict[str, dict[str, Any]]]:
    grouped: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for r in load_records(run):
        key = (r["dataset"], r["algorithm"], json.dumps(r["hyperparameters"], sort_keys=True))
        grouped.setdefault(key, {})[r["language"]] = r
    return grouped


def coefficients(run: Path, record: dict[str, Any], X_test: np.ndarray) -> np.ndarray:
    predictions = np.load(run / record["artifacts"]["predictions"])
    design = np.hstack([X_test, np.ones((len(X_test), 1))])
    solution, *_ = np.linalg.lstsq(design, predictions, rcond=None)
    return solution


def test_every_pair_ran_on_both_sides(parity_run: Path) -> None:
    grouped = pairs(parity_run)
    assert len(grouped) == len(DATASETS) * 5
    assert all(set(sides) == {"python", "rust"} for sides in grouped.values())
    assert all(r["status"] == "ok" for sides in grouped.values() for r in sides.values())


def test_coefficients_and_r2_agree(parity_run: Path, datasets_dir: Path) -> None:
    failures = []
    grouped = pairs(parity_run)
    assert len(grouped) == len(DATASETS) * 5  # every pair below is checked: none can pass by absence
    for (dataset, algorithm, params), sides in sorted(grouped.items()):
        X_test = ds.load_split(dataset, datasets_dir).X_test
        w_py = coefficients(parity_run, sides["python"], X_test)
        w_rs = coefficients(parity_run, sides["rust"], X_test)
        rel = np.max(np.abs(w_py - w_rs)) / np.max(np.abs(w_py))
        r2_gap = abs(sides["python"]["metrics"]["r2"] - sides["rust"]["metrics"]["r2"])
        if rel > COEF_RTOL or r2_gap > R2_TOL:
            failures.append(f"{dataset} {algorithm} {params}: coef rel diff {rel:.2e}, r2 gap {r2_gap:.2e}")
    assert not failures, "\n".join(failures)


def test_the_alpha_mapping_is_observable(parity_run: Path, datasets_dir: Path) -> None:
    """The ridge parity above can only catch a wrong alpha mapping if alpha moves the coefficients."""
    X_test = ds.load_split("diabetes", datasets_dir).X_test
    grouped = pairs(parity_run)
    by_alpha = {json.loads(p)["alpha"]: s["python"] for (d, a, p), s in grouped.items()
                if d == "diabetes" and a == "ridge"}
    w1 = coefficients(parity_run, by_alpha[1.0], X_test)
    w10 = coefficients(parity_run, by_alpha[10.0], X_test)
    assert np.max(np.abs(w1 - w10)) / np.max(np.abs(w1)) > 1000 * COEF_RTOL


def test_coordinate_descent_runs_the_same_iterations(parity_run: Path) -> None:
    checked = 0
    for (_, algorithm, _), sides in pairs(parity_run).items():
        if algorithm in ("lasso", "elastic_net"):
            assert sides["python"]["solver"]["n_iter"] == sides["rust"]["solver"]["n_iter"]
            checked += 1
    assert checked == len(DATASETS) * 2
