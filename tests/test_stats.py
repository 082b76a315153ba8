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
           status: str = "ok", dataset: str = "diabetes", process: int = 0, disturbed: bool = False) -> dict:
    return {"run": "t", "job_id": f"{language}{dataset}".ljust(16, "0")[:16], "process": process,
            "repetition": repetition, "host": {"disturbed": disturbed},
            "warmup": warmup, "task": "regression", "domain": "classical", "language": language,
            "framework": "scikit-learn" if language == "python" else "linfa", "framework_version": "1",
            "algorithm": "ridge", "dataset": dataset, "hardware_profile": "cpu", "device": "cpu", "threads": 1,
            "precision": "float64", "hyperparameters": {"alpha": 1.0}, "timings_s": {"fit": fit_s},
            "metrics": {"r2": r2}, "resources": {"peak_rss_mb": 100.0, "cpu_time_s": fit_s},
            "status": status, "error": None if status == "ok" else "boom"}


def write(path: Path, rows: list[dict], extra: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + extra)
    return path


def sample(rng: np.random.Generator, centre: float, n: int = 20, processes: int = 5,
           between: float = 0.01, within: float = 0.02) -> np.ndarray:
    """n repetitions in `processes` processes (n // processes each): log-normal noise between
    processes and within them, median `centre`."""
    shifts = np.repeat(rng.normal(0.0, between, processes), n // processes)
    return centre * np.exp(shifts + rng.normal(0.0, within, len(shifts)))


def rows_of(language: str, values: np.ndarray, processes: int = 5, **extra: object) -> list[dict]:
    per = len(values) // processes
    return [record(language, t, repetition=i % per, process=i // per, **extra) for i, t in enumerate(values)]


def comparison(tmp_path: Path, py: np.ndarray, rs: np.ndarray, r2_rs: float = 0.9) -> pd.Series:
    rows = rows_of("python", py) + rows_of("rust", rs, r2=r2_rs)
    table, loaded = stats.load([write(tmp_path / "r.jsonl", rows)])
    result = stats.compare(table, loaded)
    assert len(result) == 1
    return result.iloc[0]


def test_identical_distributions_are_equivalent(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    row = comparison(tmp_path, sample(rng, 1.0), sample(rng, 1.0))
    assert row.ci_low < 1 < row.ci_high
    assert row.p_holm > 0.05
    assert row.ci_low >= 1 / 1.05 and row.ci_high <= 1.05
    assert row.verdict == "equivalent" and row.margin == stats.DEFAULT_MARGIN
    assert (row.processes_python, row.processes_rust) == (5, 5)


def test_a_twofold_shift_gives_a_ci_around_two(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    row = comparison(tmp_path, sample(rng, 1.0), sample(rng, 2.0))
    assert 1.8 < row.ci_low < 2 < row.ci_high < 2.2
    assert row.ratio == pytest.approx(2, rel=0.05)
    assert row.p_holm < 1e-4 and row.cliffs_delta == 1.0
    assert row.verdict == "slower"


@pytest.mark.parametrize(("low", "high", "expected"), [
    (0.50, 0.90, "faster"), (1.10, 1.30, "slower"), (0.97, 1.03, "equivalent"),
    (0.90, 1.02, "inconclusive"), (0.96, 1.06, "inconclusive"), (0.90, 0.96, "inconclusive"),
    (math.nan, 1.0, "insufficient-data")])
def test_verdicts_read_the_ci_against_the_band(low: float, high: float, expected: str) -> None:
    row = pd.Series({"quality_mismatch": False, "ci_low": low, "ci_high": high, "margin": 0.05})
    assert stats.verdict(row) == expected


def hierarchical_coverage(trials: int, processes: int, between: float, within: float,
                          hierarchical: bool = True) -> float:
    """Share of simulated comparisons whose 95% CI covers the true ratio 1.3."""
    rng = np.random.default_rng(7)
    covered = 0
    for trial in range(trials):
        def side(centre: float) -> list[np.ndarray]:
            shifts = rng.normal(0.0, between, processes)
            return [centre * np.exp(s + rng.normal(0.0, within, 5)) for s in shifts]

        rs, py = side(1.3), side(1.0)
        if not hierarchical:  # every repetition as if from one process: the old, naive bootstrap
            rs, py = [np.concatenate(rs)], [np.concatenate(py)]
        low, high = stats.hierarchical_ratio_ci(rs, py, resamples=1000, seed=trial)
        covered += low <= 1.3 <= high
    return covered / trials


def test_the_hierarchical_ci_covers_the_truth_at_its_nominal_rate() -> None:
    """Simulation with a known process-level variance component (Kalibera & Jones 2013): the
    two-level bootstrap covers the true ratio about 95% of the time (resampling both levels is
    slightly conservative), where pooling every repetition covers it far less often."""
    for between, within in ((0.05, 0.05), (0.08, 0.02)):
        coverage = hierarchical_coverage(300, 5, between, within)
        assert 0.92 <= coverage <= 0.995, (between, within, coverage)
    assert hierarchical_coverage(300, 5, 0.08, 0.02, hierarchical=False) < 0.8  # measured: 0.71


def test_processes_needed_follows_the_normal_approximation() -> None:
    # sigma = sqrt(0.05^2 + 0.05^2) = 0.0707; ((1.96 + 0.8416) 0.0707 / ln 1.05)^2 = 16.5 -> 17
    assert stats.processes_needed(0.05, 0.05, 0.05) == 17
    assert stats.processes_needed(0.001, 0.001, 0.05) == 2
    assert math.isnan(stats.processes_needed(math.nan, 0.05, 0.05))


def test_one_process_per_side_is_flagged(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    rows = rows_of("python", sample(rng, 1.0, processes=1), processes=1)
    rows += rows_of("rust", sample(rng, 1.0, processes=1), processes=1)
    table, loaded = stats.load([write(tmp_path / "r.jsonl", rows)])
    row = stats.compare(table, loaded).iloc[0]
    assert row.underpowered and "cannot see drift between processes" in row.notes


def test_disturbed_repetitions_are_counted_and_left_out(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    rows = rows_of("python", sample(rng, 1.0)) + rows_of("rust", sample(rng, 1.0))
    rows += [record("rust", 50.0, repetition=9, process=p, disturbed=True) for p in range(5)]
    table, loaded = stats.load([write(tmp_path / "r.jsonl", rows)])
    row = stats.compare(table, loaded).iloc[0]
    assert loaded.disturbed == 5 and row.disturbed_excluded == 5
    assert row.median_rust < 2 and row.verdict == "equivalent"
    assert "5 disturbed repetition(s) left out" in row.notes


def test_a_noise_floor_run_compares_each_framework_with_itself(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    rows = rows_of("python", sample(rng, 1.0, n=40, processes=10), processes=10)
    rows += rows_of("rust", sample(rng, 0.5, n=40, processes=10), processes=10)
    path = write(tmp_path / "records.jsonl", rows)
    (tmp_path / "meta.json").write_text(json.dumps({"mode": "noise-floor", "margin": {"regression": 0.05}}))
    table, loaded = stats.load([path])
    result = stats.compare(table, loaded)
    assert sorted(zip(result.python_framework, result.rust_framework, strict=True)) == [
        ("linfa [A]", "linfa [B]"), ("scikit-learn [A]", "scikit-learn [B]")]
    assert set(result.processes_python) == set(result.processes_rust) == {5}
    assert set(result.verdict) <= {"equivalent", "inconclusive"}


def test_the_margin_is_the_larger_of_the_matrix_margin_and_the_noise_floor() -> None:
    context = stats.LoadReport(margin={"regression": 0.05, "svm": 0.2}, noise_floor={"regression": 0.08, "svm": 0.1})
    assert stats.margin_for("regression", context) == 0.08
    assert stats.margin_for("svm", context) == 0.2
    assert stats.margin_for("clustering", context) == stats.DEFAULT_MARGIN


def test_holm_matches_the_textbook_step_down() -> None:
    # Holm (1979): sorted p 0.005, 0.01, 0.03, 0.04 times m, m-1, ... = 0.02, 0.03, 0.06, 0.04,
    # made monotone: 0.02, 0.03, 0.06, 0.06.
    p = [0.01, 0.04, 0.03, 0.005]
    frame = pd.DataFrame({"phase": "fit", "p_value": p, "processes_rust": 10, "processes_python": 10,
                          "processes_needed": 4.0, "cv_rust": 0.01, "cv_python": 0.01, "quality_mismatch": False,
                          "ci_low": 0.5, "ci_high": 0.9, "margin": 0.05, "disturbed_excluded": 0,
                          "outliers_python": 0, "outliers_rust": 0, "quality_metric": "r2",
                          "quality_python": 1.0, "quality_rust": 1.0})
    result = stats.finish(frame, alpha=0.05)
    np.testing.assert_allclose(result["p_holm"], [0.03, 0.06, 0.06, 0.02])
    assert set(result["family_size"]) == {4}
    assert not result["underpowered"].any() and set(result["verdict"]) == {"faster"}


def test_underpowered_comparisons_are_flagged(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    row = comparison(tmp_path, sample(rng, 1.0, between=0.2), sample(rng, 2.0, between=0.2))
    assert row.processes_needed > 5
    assert row.underpowered and "underpowered (5 processes per side" in row.notes


def test_tukey_outliers_are_counted_not_dropped() -> None:
    assert stats.tukey_outliers(np.array([1.0, 1.0, 1.1, 0.9, 1.0, 9.0])) == 1
    assert stats.tukey_outliers(np.array([1.0, 1.01, 0.99, 1.0, 1.02, 0.98])) == 0


def test_cv_warning(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    noisy = sample(rng, 1.0, within=0.5)
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
        rows += rows_of("python", sample(rng, 1.0), dataset=dataset)
        rows += rows_of("rust", sample(rng, factor), dataset=dataset)
    table, loaded = stats.load([write(tmp_path / "r.jsonl", rows)])
    summary = stats.summarize(stats.compare(table, loaded))
    overall = summary[summary["scope"] == "overall"].iloc[0]
    assert (overall.faster, overall.equivalent, overall.slower, overall.inconclusive) == (1, 1, 1, 0)
    assert overall.geomean_ratio == pytest.approx(1.0, rel=0.05)
    assert not math.isnan(overall.ci_low)


def test_the_fast_paths_equal_the_library_they_replace() -> None:
    """compare's shortcuts, found profiling a full grid, give the library's numbers exactly."""
    from scipy.stats import mannwhitneyu, ttest_ind
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 24, 25):
        values = rng.random((50, n))
        assert np.array_equal(stats.row_medians(values), np.median(values, axis=1))
    for _ in range(300):
        a, b = rng.integers(-1, int(rng.integers(1, 6)), 40), rng.integers(0, int(rng.integers(1, 6)), 40)
        assert stats.adjusted_rand(a, b) == adjusted_rand_score(a, b)
        assert stats.adjusted_rand(a, a) == 1.0
    for _ in range(50):
        rs, py = rng.random(int(rng.integers(1, 9))), np.round(rng.random(int(rng.integers(1, 9))), 1)
        u = mannwhitneyu(rs, py, alternative="two-sided", method="asymptotic").statistic
        assert stats.cliffs_delta(rs, py) == pytest.approx(2 * u / (len(rs) * len(py)) - 1, abs=1e-12)
        values = rng.random(12)
        assert stats.iqr(values) == pytest.approx(np.subtract(*np.percentile(values, [75, 25])))
    a, b = rng.random(5), rng.random(4) + 0.3
    assert stats.process_test(a, b) == pytest.approx(ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)


def test_compare_is_the_same_serial_and_spread_over_processes(tmp_path: Path, monkeypatch) -> None:
    rng = np.random.default_rng(5)
    rows = [record(language, float(rng.lognormal(0, 0.1)) * (1.2 if language == "rust" else 1.0),
                   repetition=r, process=p, dataset=f"d{d}")
            for d in range(60) for language in ("python", "rust") for p in range(3) for r in range(3)]
    table, loaded = stats.load([write(tmp_path / "records.jsonl", rows)])
    monkeypatch.setattr(stats, "PARALLEL_MIN", 10)
    spread = stats.compare(table, loaded)
    monkeypatch.setenv("MLBENCH_ANALYSIS_WORKERS", "1")
    serial = stats.compare(table, loaded)
    assert len(serial) == 60
    pd.testing.assert_frame_equal(spread, serial)


def test_compare_computes_only_the_phases_asked_for(tmp_path: Path) -> None:
    rows = [record(language, 1.0, repetition=r, process=p) | {"timings_s": {"fit": 1.0 + r / 10, "predict": 0.1}}
            for language in ("python", "rust") for p in range(2) for r in range(3)]
    table, loaded = stats.load([write(tmp_path / "records.jsonl", rows)])
    assert set(stats.compare(table, loaded)["phase"]) == {"fit", "predict"}
    assert set(stats.compare(table, loaded, phase="headline")["phase"]) == {"fit"}
    assert set(stats.compare(table, loaded, phase="predict")["phase"]) == {"predict"}


def training_record(framework: str, repetition: int, train_s: float) -> dict:
    language = "python" if framework == "pytorch" else "rust"
    return {"run": "t", "job_id": "0" * 16, "process": 0, "repetition": repetition, "warmup": False,
            "task": "rnn", "domain": "deep_learning", "language": language, "framework": framework,
            "framework_version": "1", "algorithm": "lstm", "dataset": "adding_tiny", "hardware_profile": "cpu",
            "device": "cpu", "threads": 1, "precision": "float32", "hyperparameters": {"hidden_size": 8},
            "timings_s": {"train": train_s, "epoch_first": train_s / 2, "epoch_steady": train_s / 2,
                          "infer_b1": 0.002, "infer_b16": 0.004},
            "throughput": {"train_samples_per_s": 128 / train_s, "train_gflops": 2.0 / train_s},
            "time_to_accuracy": {"target": 0.5, "epochs": 2, "seconds": train_s},
            "metrics": {"accuracy": 0.5}, "resources": {"peak_rss_mb": 50.0, "cpu_time_s": train_s,
                                                        "gpu_peak_mem_mb": None},
            "status": "ok", "error": None}


def test_the_deep_learning_table_has_one_row_per_framework_of_medians(tmp_path: Path) -> None:
    rows = [training_record("pytorch", i, t) for i, t in enumerate([1.0, 2.0, 3.0])]
    rows += [training_record("burn", i, t) for i, t in enumerate([4.0, 4.0])]
    table, _ = stats.load([write(tmp_path / "r.jsonl", rows)])
    out = stats.deep_learning(table, gemm_peak_gflops=10.0).set_index("framework")
    assert list(out.index) == ["burn", "pytorch"]
    assert out.loc["pytorch", "steady epoch s"] == 1.0  # the median of 0.5, 1.0, 1.5
    assert out.loc["pytorch", "train samples/s"] == 64.0
    assert out.loc["burn", "seconds to target"] == 4.0 and out.loc["burn", "epochs to target"] == 2
    assert out.loc["pytorch", "infer b1 ms"] == pytest.approx(2.0)
    assert list(out.columns).index("infer b1 ms") < list(out.columns).index("infer b16 ms")
    assert out.loc["pytorch", "train % of GEMM peak"] == pytest.approx(10.0)  # 1 GFLOP/s of 10
    assert "device peak MiB (framework)" not in out  # no side reported one
    assert stats.deep_learning(table[table["framework"] == "none"]).empty
