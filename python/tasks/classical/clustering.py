"""Clustering with scikit-learn: k-means, DBSCAN, agglomerative, Gaussian mixture (Rust twin: rust/clustering)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a plain script, too

import mlbench.lean  # noqa: F401  (before scikit-learn: keeps pandas out)

import sklearn
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans
from sklearn.mixture import GaussianMixture

from mlbench.harness import Clustering, Solver, run_task

LLOYD_RULE = "Lloyd: squared centre shift <= tol * mean feature variance, or max_iter"
EM_RULE = "EM: change of the mean log-likelihood lower bound < tol, or max_iter"


def first_k(X: np.ndarray, n_clusters: int, random_state: Any) -> np.ndarray:
    """The first n_clusters points as initial centres: a deterministic init both languages share."""
    return X[:n_clusters].copy()


def kmeans(params: dict[str, Any], seed: int) -> KMeans:
    init = first_k if params["init"] == "first_k" else "k-means++"
    return KMeans(n_clusters=params["n_clusters"], init=init, n_init=params["n_init"], max_iter=params["max_iter"],
                  tol=params["tol"], algorithm="lloyd", random_state=seed)


def dbscan(params: dict[str, Any], seed: int) -> DBSCAN:
    return DBSCAN(eps=params["eps"], min_samples=params["min_samples"])


def agglomerative(params: dict[str, Any], seed: int) -> AgglomerativeClustering:
    return AgglomerativeClustering(n_clusters=params["n_clusters"], linkage=params["linkage"])


def gaussian_mixture(params: dict[str, Any], seed: int) -> GaussianMixture:
    return GaussianMixture(n_components=params["n_components"], covariance_type=params["covariance_type"],
                           tol=params["tol"], max_iter=params["max_iter"], n_init=params["n_init"],
                           reg_covar=params["reg_covar"], init_params="kmeans", random_state=seed)


def kmeans_tolerance(model: KMeans) -> dict[str, float]:
    return {"absolute_tol": float(model._tol)}  # tol * mean feature variance, as compared


ALGORITHMS = {
    "kmeans": Clustering(kmeans, lambda m: Solver("Lloyd (scikit-learn)", LLOYD_RULE, int(m.n_iter_)),
                         predict=lambda m, X: m.predict(X), resolved=kmeans_tolerance),
    "dbscan": Clustering(dbscan, lambda m: Solver("DBSCAN (scikit-learn, auto neighbours)", "exact")),
    "agglomerative": Clustering(agglomerative, lambda m: Solver("agglomerative (scikit-learn)", "exact")),
    "gaussian_mixture": Clustering(gaussian_mixture, lambda m: Solver("EM (scikit-learn)", EM_RULE, int(m.n_iter_)),
                                   labels=lambda m, X: m.predict(X), predict=lambda m, X: m.predict(X)),
}


if __name__ == "__main__":
    run_task(ALGORITHMS, sklearn.__version__, ["scikit-learn", "numpy", "scipy"])
