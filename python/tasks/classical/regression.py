"""Regression with scikit-learn: linear, ridge, lasso, elastic net (Rust twin: rust/regression)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a plain script, too

import mlbench.lean  # noqa: F401  (before scikit-learn: keeps pandas out)

import sklearn
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, Ridge

from mlbench.harness import Solver, Supervised, run_task

CD_RULE = "coordinate descent: max|dw|/max|w| < tol, then duality gap < tol * ||y - mean(y)||^2"


def coordinate_descent(model: Lasso | ElasticNet) -> Solver:
    return Solver("coordinate_descent (cyclic)", CD_RULE, int(model.n_iter_))


def linear(params: dict[str, Any], seed: int) -> LinearRegression:
    return LinearRegression()


def ridge(params: dict[str, Any], seed: int) -> Ridge:
    # Cholesky solves the normal equations exactly; tol and max_iter apply to iterative solvers only.
    return Ridge(alpha=params["alpha"], solver="cholesky")


def lasso(params: dict[str, Any], seed: int) -> Lasso:
    return Lasso(alpha=params["alpha"], tol=params["tol"], max_iter=params["max_iter"], random_state=seed)


def elastic_net(params: dict[str, Any], seed: int) -> ElasticNet:
    return ElasticNet(alpha=params["alpha"], l1_ratio=params["l1_ratio"], tol=params["tol"],
                      max_iter=params["max_iter"], random_state=seed)


ALGORITHMS = {
    "linear": Supervised(linear, lambda m: Solver("least squares (scipy.linalg.lstsq)", "exact")),
    "ridge": Supervised(ridge, lambda m: Solver("cholesky", "exact")),
    "lasso": Supervised(lasso, coordinate_descent),
    "elastic_net": Supervised(elastic_net, coordinate_descent),
}

if __name__ == "__main__":
    run_task(ALGORITHMS, sklearn.__version__, ["scikit-learn", "numpy", "scipy"])
