"""Support vector machines with scikit-learn: SVC, NuSVC, LinearSVC, SVR (Rust twin: rust/svm)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a plain script, too

import mlbench.lean  # noqa: F401  (before scikit-learn: keeps pandas out)

import sklearn
from sklearn.svm import SVC, SVR, LinearSVC, NuSVC

from mlbench.harness import Solver, Supervised, run_task

SMO_RULE = "SMO (LIBSVM): maximal KKT violation < tol"
LIBLINEAR_RULE = "liblinear dual coordinate descent: projected-gradient gap < tol, or max_iter"


def kernel_args(params: dict[str, Any]) -> dict[str, Any]:
    return {"kernel": params["kernel"], "gamma": params["gamma"], "degree": params["degree"],
            "coef0": params["coef0"], "tol": params["tol"], "cache_size": params["cache_size"],
            "shrinking": params["shrinking"]}


def svc(params: dict[str, Any], seed: int) -> SVC:
    # One-vs-one, as LIBSVM trains it; decision values are kept per pair (see ovo_scores).
    return SVC(C=params["C"], decision_function_shape="ovo", probability=params["probability"], random_state=seed,
               **kernel_args(params))


def nusvc(params: dict[str, Any], seed: int) -> NuSVC:
    return NuSVC(nu=params["nu"], decision_function_shape="ovo", probability=params["probability"],
                 random_state=seed, **kernel_args(params))


def linearsvc(params: dict[str, Any], seed: int) -> LinearSVC:
    return LinearSVC(C=params["C"], tol=params["tol"], max_iter=params["max_iter"], random_state=seed)


def svr(params: dict[str, Any], seed: int) -> SVR:
    return SVR(C=params["C"], epsilon=params["epsilon"], **kernel_args(params))


def ovo_scores(model: SVC | NuSVC, X: np.ndarray) -> np.ndarray:
    """Decision values per class pair in LIBSVM's order and sign (positive: the pair's lower class).
    scikit-learn flips the sign of the single binary value, so it is flipped back here."""
    values = model.decision_function(X)
    return -values[:, None] if values.ndim == 1 else values


def probabilities(model: SVC | NuSVC, X: np.ndarray) -> np.ndarray | None:
    """Platt-scaled class probabilities (sorted classes), where the model was fitted for them."""
    return model.predict_proba(X) if model.probability else None


def binary_scores(model: LinearSVC, X: np.ndarray) -> np.ndarray | None:
    """liblinear is one-vs-rest: only a binary problem has a pairwise value to save."""
    return -model.decision_function(X)[:, None] if len(model.classes_) == 2 else None


def smo(model: SVC | NuSVC | SVR) -> Solver:
    return Solver("SMO (LIBSVM inside scikit-learn)", SMO_RULE, int(np.sum(model.n_iter_)))


def gamma_used(model: SVC | NuSVC | SVR) -> dict[str, float]:
    return {"gamma": float(model._gamma)}


ALGORITHMS = {
    "svc": Supervised(svc, smo, scores=ovo_scores, probabilities=probabilities, resolved=gamma_used),
    "nusvc": Supervised(nusvc, smo, scores=ovo_scores, probabilities=probabilities, resolved=gamma_used),
    "linearsvc": Supervised(linearsvc, lambda m: Solver("liblinear (squared hinge, L2)", LIBLINEAR_RULE,
                                                        int(m.n_iter_)), scores=binary_scores),
    "svr": Supervised(svr, smo, resolved=gamma_used),
}

if __name__ == "__main__":
    run_task(ALGORITHMS, sklearn.__version__, ["scikit-learn", "numpy", "scipy"])
