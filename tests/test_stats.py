"""mlbench.stats against known answers."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlbench import stats


def record(language: str, fit_s: float, r2: float = 0.9, repetition: int = 0, warmup: bool = False,
           status: str = "ok", dataset: str = "diabetes") -> dict:
    return {"run": "t", "job_id": f"{language}{dataset}".ljust(16, "0")[:16], "repetition": repetition,
            "warmup": warmup, "task": "regression", "domain": "classical", "language": language,
            "framework": "scikit-learn" if language == "python" else "linfa", "framework_version": "1",
            "algorithm": "ridge", "dataset": dataset, "hardware_profile": "cpu", "device": "cpu", "threads": 1,
            "precision": "float64", "hyperparameters": {"alpha": 1.0}, "timings_s": {"fit": fit_s},
            "metrics": {"r2": r2}, "resources": {"peak_rss_mb": 100.0, "cpu_time_s": fit_s},
            "status": status, "error": None if status == "ok" else "boom"}


def write(path: Path, rows: list[dict], extra: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + extra)
    return path


def sample(rng: np.random.Generator, centre: float, n: int = 20) -> np.ndarray:
    return centre * rng.lognormal(0.0, 0.05, n)


def comparison(tmp_path: Path, py: np.ndarray, rs: np.ndarray, r2_rs: float = 0.9) -> pd.Series:
    rows = [record("python", t, repetition=i) for i, t in enumerate(py)]
    rows += [record("rust", t, r2=r2_rs, repetition=i) for i, t in enumerate(rs)]
    table, _ = stats.load([write(tmp_path / "r.jsonl", rows)])
    result = stats.compare(table)
    assert len(result) == 1
    return result.iloc[0]


def test_identical_distributions_give_a_ci_containing_one_and_no_significance(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    row = comparison(tmp_path, sample(rng, 1.0), sample(rng, 1.0))
    assert row.ci_low < 1 < row.ci_high
    assert row.p_holm > 0.05
    assert row.verdict == "tie"


def test_a_twofold_shift_gives_a_ci_around_two(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    row = comparison(tmp_path, sample(rng, 1.0), sample(rng, 2.0))
    assert 1.8 < row.ci_low < 2 < row.ci_high < 2.2
    assert row.ratio == pytest.approx(2, rel=0.05)
    assert row.p_holm < 1e-6 and row.cliffs_delta == 1.0
    assert row.verdict == "python-faster"


def test_holm_matches_the_textbook_step_down() -> None:
    # Holm (1979): sorted p 0.005, 0.01, 0.03, 0.04 times m, m-1, ... = 0.02, 0.03, 0.06, 0.04,
    # made monotone: 0.02, 0.03, 0.06, 0.06.
    p = [0.01, 0.04, 0.03, 0.005]
    frame = pd.DataFrame({"phase": "fit", "p_value": p, "n_rust": 10, "n_python": 10, "cv_rust": 0.01,
                          "cv_python": 0.01, "quality_mismatch": False, "ci_low": 0.5, "ci_high": 0.9,
                          "outliers_python": 0, "outliers_rust": 0, "quality_metric": "r2",
                          "quality_python": 1.0, "quality_rust": 1.0})
    result = stats.finish(frame, alpha=0.05)
    np.testing.assert_allclose(result["p_holm"], [0.03, 0.06, 0.06, 0.02])
    assert set(result["family_size"]) == {4}


def test_exact_mann_whitney_with_five_per_side_cannot_beat_alpha_over_seven() -> None:
    assert stats.min_exact_p(5, 5) == pytest.approx(2 / 252)
    assert stats.min_exact_p(5, 5) < 0.05 / 6
    assert stats.min_exact_p(5, 5) > 0.05 / 7
    assert stats.repetitions_needed(0.0, 0.0, 0.05 / 7) == 6


def test_repetitions_needed_grows_with_noise() -> None:
    quiet = stats.repetitions_needed(0.02, 0.02, 0.05)
    noisy = stats.repetitions_needed(0.20, 0.20, 0.05)
    assert quiet < noisy
    # t-test n for d = 0.05 / 0.2 = 0.25 at alpha 0.05, power 0.8 is about 252; / (3/pi) is about 264
    assert 255 <= noisy <= 270


def test_underpowered_comparisons_are_flagged(tmp_path: Path) -> None:
    row = comparison(tmp_path, np.array([1.0, 1.1, 0.9]), np.array([2.0, 2.1, 1.9]))
    assert row.underpowered and "underpowered" in row.notes


def test_tukey_outliers_are_counted_not_dropped() -> None:
    assert stats.tukey_outliers(np.array([1.0, 1.0, 1.1, 0.9, 1.0, 9.0])) == 1
    assert stats.tukey_outliers(np.array([1.0, 1.01, 0.99, 1.0, 1.02, 0.98])) == 0


def test_cv_warning(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    noisy = 1.0 * rng.lognormal(0, 0.5, 20)
    row = comparison(tmp_path, noisy, sample(rng, 1.0))
    assert row.cv_python > stats.CV_WARNING and "cv python" in row.notes


def test_speed_up_under_a_quality_mismatch_is_not_a_win(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    row = comparison(tmp_path, sample(rng, 2.0), sample(rng, 1.0), r2_rs=0.5)
    assert row.ci_high < 1
    assert row.quality_mismatch and row.verdict == "quality-mismatch"
    assert "quality-mismatch" in row.notes


def test_malformed_and_truncated_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    rows = [record("python", 1.0), record("rust", 1.0)]
    path = write(tmp_path / "r.jsonl", rows, extra='not json\n{"run": "t", "job_id": "tru')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table, report = stats.load([path])
    assert len(table) == 2
    assert report.malformed == [(str(path), 3), (str(path), 4)]
    assert any(f"{path}:3" in str(w.message) for w in caught)


def test_warmups_are_excluded_but_failures_are_kept(tmp_path: Path) -> None:
    rows = [record("python", 9.0, warmup=True), record("python", 1.0, repetition=1),
            record("rust", 0.0, warmup=True, status="failed")]
    table, report = stats.load([write(tmp_path / "r.jsonl", rows)])
    assert report.warmups_excluded == 1
    assert list(table["status"]) == ["ok", "failed"]
    assert len(stats.problems(table)) == 1


def test_geometric_mean_of_reciprocal_ratios_is_one() -> None:
    centre, low, high = stats.geometric_mean_ci(np.array([0.5, 2.0, 0.5, 2.0]))
    assert centre == pytest.approx(1.0)
    assert low < 1 < high


def test_summary_counts_wins_ties_losses(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    rows = []
    for dataset, factor in (("a", 0.5), ("b", 1.0), ("c", 2.0)):
        rows += [record("python", t, dataset=dataset, repetition=i) for i, t in enumerate(sample(rng, 1.0))]
        rows += [record("rust", t, dataset=dataset, repetition=i) for i, t in enumerate(sample(rng, factor))]
    table, _ = stats.load([write(tmp_path / "r.jsonl", rows)])
    summary = stats.summarize(stats.compare(table))
    overall = summary[summary["scope"] == "overall"].iloc[0]
    assert (overall.rust_faster, overall.ties, overall.python_faster) == (1, 1, 1)
    assert overall.geomean_ratio == pytest.approx(1.0, rel=0.05)
    assert not math.isnan(overall.ci_low)
