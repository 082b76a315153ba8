"""The size sweep: nested seeded subsamples of one pool, and the log-log slope of time on rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mlbench import datasets as ds
from mlbench import stats
from mlbench.tidy import LoadReport


def test_sweep_sizes_are_nested_subsamples_of_one_pool() -> None:
    small, large = ds.BUILDERS["synthetic_linear_1k"](False), ds.BUILDERS["synthetic_linear_10k"](False)
    assert small.X.shape == (1000, 50) and large.X.shape == (10000, 50)
    np.testing.assert_array_equal(large.X[:1000], small.X)
    assert small.sweep == large.sweep == "synthetic_linear"
    again = ds.BUILDERS["synthetic_linear_1k"](False)
    np.testing.assert_array_equal(again.y, small.y)


def test_a_sweep_dataset_says_so_in_meta_json(tmp_path: Path) -> None:
    ds.prepare(["synthetic_classification_1k"], tmp_path, log=lambda _: None)
    meta = json.loads((tmp_path / "synthetic_classification_1k" / "meta.json").read_text())
    assert meta["sweep"] == {"pool": "synthetic_classification", "n_samples": 1000}
    assert ds.sizes("synthetic_classification_1k", tmp_path) == {"n_train": 750, "n_test": 250,
                                                                  "sweep": meta["sweep"]}


def test_the_slope_recovers_a_known_growth_and_its_ci_covers_it() -> None:
    """Times that grow as n^1 (Python) and n^2 (Rust) with 5% noise: slopes near 1 and 2."""
    rng = np.random.default_rng(3)
    sizes = {f"pool_{n}": n for n in (1000, 4000, 16000)}
    rows = []
    for name, n in sizes.items():
        for language, framework, power in (("python", "scikit-learn", 1), ("rust", "linfa", 2)):
            for rep in range(20):
                rows.append({"task": "regression", "algorithm": "ridge", "params": "{}", "language": language,
                             "framework": framework, "dataset": name, "status": "ok", "repetition": rep,
                             "time_fit": 1e-6 * n ** power * rng.lognormal(0, 0.05)})
    context = LoadReport(datasets={name: {"n_train": n, "sweep": {"pool": "pool", "n_samples": n}}
                                   for name, n in sizes.items()})
    sweep = stats.size_sweep(pd.DataFrame(rows), context)
    slopes = sweep.drop_duplicates("framework").set_index("framework")
    for framework, truth in (("scikit-learn", 1.0), ("linfa", 2.0)):
        row = slopes.loc[framework]
        assert abs(row["slope"] - truth) < 0.05
        assert row["slope_ci_low"] <= truth <= row["slope_ci_high"]
    assert stats.size_sweep(pd.DataFrame(rows), LoadReport()).empty  # no sweep datasets in meta: nothing
