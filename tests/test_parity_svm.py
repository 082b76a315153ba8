"""SVMs: scikit-learn against libsvm-rs (both LIBSVM) and linfa-svm on the same jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import load_run, run_matrix

BINARY_DECISION_ATOL = 1e-8  # same SMO path: agreement to rounding
# Multiclass: LIBSVM orders classes by first appearance, scikit-learn's copy sorts them, so each pair's
# SMO runs with its labels' signs swapped and stops at another point inside the KKT tolerance (1e-3).
MULTICLASS_DECISION_RTOL = 1e-2


@pytest.fixture(scope="module")
def svm_run(tmp_path_factory: pytest.TempPathFactory, datasets_dir: Path, rust_classical: list[Path]) -> Path:
    return run_matrix(tmp_path_factory.mktemp("svm"), datasets_dir, {
        "task": "svm", "repetitions": 1, "processes": 1, "warmup": 0, "datasets": ["iris", "breast_cancer"],
        "algorithms": {"svc": {"kernel": ["rbf", "linear", "poly"], "gamma": ["scale", 0.1]},
                       "nusvc": {"nu": 0.3, "probability": [False, True]}, "linearsvc": {},
                       "svr": {"datasets": ["diabetes"], "C": 10.0, "gamma": ["scale", "auto"]}}})


def by_job(run: Path) -> dict[tuple[str, str, str], dict[str, dict[str, Any]]]:
    grouped: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for r in load_run(run):
        key = (r["algorithm"], r["dataset"], json.dumps(r["hyperparameters"], sort_keys=True))
        grouped.setdefault(key, {})[r["framework"]] = r
    return grouped


def test_svc_decision_values_and_accuracy_match_libsvm_rs(svm_run: Path) -> None:
    failures, checked = [], 0
    for (algorithm, dataset, params), sides in by_job(svm_run).items():
        if algorithm not in ("svc", "nusvc"):
            continue
        checked += 1
        py, rs = sides["scikit-learn"], sides["libsvm-rs"]
        d_py, d_rs = np.load(svm_run / py["artifacts"]["scores"]), np.load(svm_run / rs["artifacts"]["scores"])
        binary = d_py.shape[1] == 1
        allowed = BINARY_DECISION_ATOL if binary else MULTICLASS_DECISION_RTOL * max(1.0, np.abs(d_py).max())
        gap = float(np.abs(d_py - d_rs).max())
        n_test = len(np.load(svm_run / py["artifacts"]["predictions"]))
        if gap > allowed or abs(py["metrics"]["accuracy"] - rs["metrics"]["accuracy"]) > 1 / n_test:
            failures.append(f"{algorithm} {dataset} {params}: decision gap {gap:.2e} (allowed {allowed:.1e}), "
                            f"accuracy {py['metrics']['accuracy']:.4f} vs {rs['metrics']['accuracy']:.4f}")
    assert not failures, "\n".join(failures)
    assert checked == 2 * (3 * 2 + 2)  # datasets x (svc kernels x gammas + nusvc without and with probability)


def test_gamma_is_resolved_identically_on_every_side(svm_run: Path) -> None:
    checked = 0
    for (algorithm, dataset, params), sides in by_job(svm_run).items():
        gammas = {fw: r["resolved"]["gamma"] for fw, r in sides.items() if r["status"] == "ok" and "resolved" in r}
        if algorithm == "linearsvc":
            continue
        checked += 1
        ran = {fw for fw, r in sides.items() if r["status"] == "ok"}  # linfa declines probability outputs
        assert set(gammas) == ran >= {"scikit-learn", "libsvm-rs"}, (algorithm, dataset)
        reference = gammas["scikit-learn"]
        assert all(abs(g - reference) <= 1e-12 * reference for g in gammas.values()), (algorithm, dataset, gammas)
        if json.loads(params).get("gamma") == 0.1:
            assert reference == 0.1
    assert checked == 2 * (3 * 2 + 2) + 2  # svc and nusvc (with and without probability) on two datasets, svr x2


def test_linfa_mapping_reproduces_scikit_learn_on_rbf_and_poly(svm_run: Path) -> None:
    """linfa's Gaussian eps = 1/gamma and the sqrt(gamma) scaling for poly: the binary problem's
    decision values agree with scikit-learn's within the solvers' tolerance."""
    checked = 0
    for (algorithm, dataset, params), sides in by_job(svm_run).items():
        kernel = json.loads(params).get("kernel")
        if algorithm != "svc" or dataset != "breast_cancer" or kernel not in ("rbf", "poly"):
            continue
        d_py = np.load(svm_run / sides["scikit-learn"]["artifacts"]["scores"])
        d_linfa = np.load(svm_run / sides["linfa"]["artifacts"]["scores"])
        assert np.abs(d_py - d_linfa).max() <= 1e-2 * max(1.0, np.abs(d_py).max()), params
        checked += 1
    assert checked == 2 * 2  # rbf and poly, each with gamma scale and 0.1


def test_svr_agrees(svm_run: Path) -> None:
    checked = 0
    for (algorithm, _, params), sides in by_job(svm_run).items():
        if algorithm == "svr":
            r2 = {fw: r["metrics"]["r2"] for fw, r in sides.items()}
            assert len(r2) == 3 and max(r2.values()) - min(r2.values()) < 1e-3, (params, r2)
            checked += 1
    assert checked == 2  # gamma scale and auto


def test_linearsvc_is_unsupported_in_rust_with_a_reason(svm_run: Path) -> None:
    checked = 0
    for (algorithm, _, _), sides in by_job(svm_run).items():
        if algorithm == "linearsvc":
            assert sides["scikit-learn"]["status"] == "ok"
            for framework in ("linfa", "libsvm-rs"):
                assert sides[framework]["status"] == "unsupported"
                assert "liblinear" in sides[framework]["error"]
            checked += 1
    assert checked == 2  # iris and breast_cancer


# Platt scaling fits its sigmoid on LIBSVM's internal 5-fold cross-validation, whose fold assignment
# each side draws from its own generator: the probabilities agree closely, not to rounding.
LOG_LOSS_ATOL = 0.02


def test_platt_probabilities_match_libsvm_rs_and_linfa_declines(svm_run: Path) -> None:
    checked = 0
    for (algorithm, dataset, params), sides in by_job(svm_run).items():
        if algorithm != "nusvc" or not json.loads(params)["probability"]:
            assert "probabilities" not in (sides.get("scikit-learn", {}).get("artifacts") or {})
            continue
        py, rs = sides["scikit-learn"], sides["libsvm-rs"]
        p_py = np.load(svm_run / py["artifacts"]["probabilities"])
        p_rs = np.load(svm_run / rs["artifacts"]["probabilities"])
        assert p_py.shape == p_rs.shape and np.allclose(p_rs.sum(axis=1), 1.0)
        assert abs(py["metrics"]["log_loss"] - rs["metrics"]["log_loss"]) < LOG_LOSS_ATOL, (dataset, py["metrics"],
                                                                                          rs["metrics"])
        assert abs(py["metrics"]["brier"] - rs["metrics"]["brier"]) < LOG_LOSS_ATOL
        assert np.mean(p_py.argmax(axis=1) == p_rs.argmax(axis=1)) > 0.95  # the same class order
        assert sides["linfa"]["status"] == "unsupported" and "Platt" in sides["linfa"]["error"]
        checked += 1
    assert checked == 2  # iris and breast_cancer


def test_records_are_schema_valid(svm_run: Path) -> None:
    from test_record_schema import validate_all

    statuses = {r["status"] for r in validate_all(svm_run / "records.jsonl")}
    assert statuses == {"ok", "unsupported"}
