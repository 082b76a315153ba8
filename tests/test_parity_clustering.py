"""Clustering: scikit-learn against linfa-clustering and kodama on the same jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from conftest import load_run, run_matrix


@pytest.fixture(scope="module")
def clustering_run(tmp_path_factory: pytest.TempPathFactory, datasets_dir: Path,
                   rust_classical: list[Path]) -> Path:
    return run_matrix(tmp_path_factory.mktemp("clustering"), datasets_dir, {
        "task": "clustering", "repetitions": 1, "processes": 1, "warmup": 0, "datasets": ["synthetic_blobs"],
        "algorithms": {
            "kmeans": {"n_clusters": 4, "init": "first_k"},
            "dbscan": {"datasets": ["synthetic_moons"], "eps": 0.3, "min_samples": 5},
            "agglomerative": {"datasets": ["iris", "synthetic_blobs"], "n_clusters": 3,
                              "linkage": ["ward", "complete", "average"]},
            "gaussian_mixture": {"n_components": 4, "covariance_type": ["full", "spherical"]},
        }})


def sides(run: Path, algorithm: str, **params: Any) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for r in load_run(run):
        if r["algorithm"] == algorithm and all(r["hyperparameters"].get(k) == v for k, v in params.items()):
            found.setdefault(r["framework"], []).append(r)
    return found


def labels(run: Path, record: dict[str, Any]) -> np.ndarray:
    return np.load(run / record["artifacts"]["predictions"])


def test_kmeans_with_the_same_init_finds_the_same_clustering(clustering_run: Path) -> None:
    found = sides(clustering_run, "kmeans")
    [py], [rs] = found["scikit-learn"], found["linfa"]
    assert adjusted_rand_score(labels(clustering_run, py), labels(clustering_run, rs)) >= 0.99
    assert rs["metrics"]["inertia"] == pytest.approx(py["metrics"]["inertia"], rel=1e-6)
    assert rs["resolved"]["absolute_tol"] == pytest.approx(py["resolved"]["absolute_tol"], rel=1e-12)
    assert found["kodama"][0]["status"] == "unsupported"


def test_dbscan_labels_agree_exactly(clustering_run: Path) -> None:
    found = sides(clustering_run, "dbscan")
    py, rs = labels(clustering_run, found["scikit-learn"][0]), labels(clustering_run, found["linfa"][0])
    assert np.array_equal(py < 0, rs < 0), "noise points differ"
    assert adjusted_rand_score(py, rs) == 1.0
    assert len(np.unique(py[py >= 0])) == 2  # the two moons


@pytest.mark.parametrize("linkage", ["ward", "complete", "average"])
def test_agglomerative_labels_agree_exactly(clustering_run: Path, linkage: str) -> None:
    found = sides(clustering_run, "agglomerative", linkage=linkage)
    assert [r["status"] for r in found["linfa"]] == ["unsupported"] * 2
    for py, rs in zip(found["scikit-learn"], found["kodama"], strict=True):
        assert py["dataset"] == rs["dataset"]
        assert adjusted_rand_score(labels(clustering_run, py), labels(clustering_run, rs)) == 1.0, py["dataset"]


def test_gaussian_mixture_full_runs_and_other_covariances_are_unsupported(clustering_run: Path) -> None:
    full = sides(clustering_run, "gaussian_mixture", covariance_type="full")
    assert full["linfa"][0]["status"] == "ok"
    assert full["linfa"][0]["metrics"]["adjusted_rand"] > 0.9  # well-separated blobs
    spherical = sides(clustering_run, "gaussian_mixture", covariance_type="spherical")
    assert spherical["scikit-learn"][0]["status"] == "ok"
    assert spherical["linfa"][0]["status"] == "unsupported" and "full" in spherical["linfa"][0]["error"]


def test_records_are_schema_valid(clustering_run: Path) -> None:
    from test_record_schema import validate_all

    statuses = {r["status"] for r in validate_all(clustering_run / "records.jsonl")}
    assert statuses == {"ok", "unsupported"}
