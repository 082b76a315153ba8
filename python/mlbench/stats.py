"""Statistical comparison of Rust and Python records (DESIGN.md section 5).

Pipeline: `load` the records into a tidy table (one row per measured repetition) -> `compare`
(one row per task, algorithm, dataset, hyperparameters, hardware profile and phase, Rust framework
against Python framework) -> Holm correction within each phase -> `summarize` per domain.
Every test and correction comes from scipy or statsmodels; this module only chooses and documents.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower

from mlbench.config import load_task_spec
from mlbench.records import read_jsonl

ALPHA = 0.05
POWER = 0.80
DETECTABLE_DIFFERENCE = 0.05  # relative difference in medians the sample-size estimate aims to resolve
CV_WARNING = 0.10  # a side whose coefficient of variation exceeds this is too noisy to trust alone
TUKEY_K = 1.5  # Tukey (1977) fences: outside [Q1 - k IQR, Q3 + k IQR]
BOOTSTRAP_RESAMPLES = 9999
SEED = 20240501  # fixed, so a report is reproducible to the digit
# Asymptotic relative efficiency of Mann-Whitney against the t-test under normality, 3/pi
# (Lehmann 1975, Nonparametrics, ch. 2): a rank test needs about pi/3 times the t-test's n.
MANN_WHITNEY_ARE = 3 / math.pi
DEFAULT_QUALITY_TOLERANCE = 1e-3
KEYS = ["task", "domain", "algorithm", "dataset", "params", "hardware_profile"]


@dataclass
class LoadReport:
    """What `load` read and what it skipped."""

    files: list[str] = field(default_factory=list)
    records: int = 0
    warmups_excluded: int = 0
    malformed: list[tuple[str, int]] = field(default_factory=list)
    quality_tolerance: dict[str, float] = field(default_factory=dict)


def records_file(path: Path) -> Path:
    return path / "records.jsonl" if path.is_dir() else path


def flatten(record: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    row = {k: record.get(k) for k in ("run", "job_id", "repetition", "task", "domain", "language", "framework",
                                      "framework_version", "algorithm", "dataset", "hardware_profile", "device",
                                      "threads", "precision", "status", "error")}
    row["params"] = json.dumps(record.get("hyperparameters", {}), sort_keys=True)
    row.update({f"time_{k}": v for k, v in (record.get("timings_s") or {}).items()})
    row.update({f"metric_{k}": v for k, v in (record.get("metrics") or {}).items()})
    resources = record.get("resources") or {}
    row["peak_rss_mb"] = resources.get("peak_rss_mb")
    row["cpu_time_s"] = resources.get("cpu_time_s")
    row["predictions"] = str(run_dir / record["predictions"]) if record.get("predictions") else None
    return row


def load(paths: Iterable[str | Path]) -> tuple[pd.DataFrame, LoadReport]:
    """Tidy table of measured repetitions (warm-ups excluded) from records.jsonl files or run folders.

    Malformed or truncated lines are skipped with a warning naming file and line, never fatal.
    A run folder's `meta.json` (written by `mlbench run`) supplies per-task quality tolerances.
    """
    report = LoadReport()
    rows = []
    for path in map(Path, paths):
        file = records_file(path)
        content = read_jsonl(file)
        report.files.append(str(file))
        for line in content.bad_lines:
            warnings.warn(f"{file}:{line}: malformed record skipped", stacklevel=2)
            report.malformed.append((str(file), line))
        for record in content.records:
            if not isinstance(record.get("timings_s", {}), dict) or "language" not in record:
                warnings.warn(f"{file}: a record without language or timings skipped", stacklevel=2)
                continue
            if record.get("warmup") and record.get("status") == "ok":  # a failed warm-up still tells
                report.warmups_excluded += 1
                continue
            rows.append(flatten(record, file.parent))
        meta = file.parent / "meta.json"
        if meta.is_file():
            report.quality_tolerance.update(json.loads(meta.read_text()).get("quality_tolerance", {}))
    report.records = len(rows)
    return pd.DataFrame(rows), report


def phases(table: pd.DataFrame) -> list[str]:
    return sorted(c.removeprefix("time_") for c in table.columns if c.startswith("time_"))


def _ratio_of_medians(rs: np.ndarray, py: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(rs, axis=axis) / np.median(py, axis=axis)


def ratio_ci(rs: np.ndarray, py: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Bootstrap CI of median(rs) / median(py), each side resampled independently (BCa, Efron &
    Tibshirani 1993, ch. 14; percentile where BCa is undefined, e.g. constant samples)."""
    if len(rs) < 2 or len(py) < 2:
        return math.nan, math.nan
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.bootstrap((rs, py), _ratio_of_medians, vectorized=True, paired=False,
                                     confidence_level=confidence, n_resamples=BOOTSTRAP_RESAMPLES,
                                     method=method, rng=np.random.default_rng(SEED))
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return float(low), float(high)
    return math.nan, math.nan


def mann_whitney(rs: np.ndarray, py: np.ndarray) -> tuple[float, float]:
    """Two-sided Mann-Whitney U (exact where scipy can: small samples without ties), and Cliff's
    delta = 2U/(n1 n2) - 1 = P(rs > py) - P(rs < py) (Cliff 1993). Positive: Rust takes longer."""
    if len(rs) < 1 or len(py) < 1:
        return math.nan, math.nan
    result = stats.mannwhitneyu(rs, py, alternative="two-sided", method="auto")
    return float(result.pvalue), float(2 * result.statistic / (len(rs) * len(py)) - 1)


def tukey_outliers(values: np.ndarray) -> int:
    """Count of values outside Tukey's fences; reported, never dropped."""
    if len(values) < 4:
        return 0
    q1, q3 = np.percentile(values, [25, 75])
    spread = TUKEY_K * (q3 - q1)
    return int(np.sum((values < q1 - spread) | (values > q3 + spread)))


def iqr(values: np.ndarray) -> float:
    return float(stats.iqr(values)) if len(values) else math.nan


def cv(values: np.ndarray) -> float:
    """Coefficient of variation, sample standard deviation over mean."""
    if len(values) < 2 or np.mean(values) == 0:
        return math.nan
    return float(np.std(values, ddof=1) / np.mean(values))


def min_exact_p(n1: int, n2: int) -> float:
    """Smallest two-sided p an exact Mann-Whitney test can return: 2 / C(n1 + n2, n1)."""
    return min(1.0, 2 / math.comb(n1 + n2, n1)) if n1 and n2 else 1.0


def repetitions_needed(cv_rs: float, cv_py: float, alpha: float, difference: float = DETECTABLE_DIFFERENCE,
                       power: float = POWER) -> int:
    """Repetitions per side to resolve a relative `difference` at `alpha` and `power`.

    t-test sample size (statsmodels) for effect size difference / pooled CV, inflated by the
    Mann-Whitney ARE; never below the n at which the exact test can reach `alpha` at all.
    """
    floor = next(n for n in range(2, 1000) if min_exact_p(n, n) <= alpha)
    pooled = math.sqrt((cv_rs**2 + cv_py**2) / 2) if np.isfinite(cv_rs) and np.isfinite(cv_py) else math.nan
    if not np.isfinite(pooled):
        return floor
    if pooled == 0:
        return floor
    effect = difference / pooled
    # Normal approximation first: where it asks for under 4 per side, statsmodels' root finder
    # (bracketed from n = 2) cannot solve, and the exact-test floor decides anyway.
    n_t = 2 * ((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) / effect) ** 2
    if n_t >= 4:
        n_t = TTestIndPower().solve_power(effect_size=effect, alpha=alpha, power=power)
    return max(floor, math.ceil(n_t / MANN_WHITNEY_ARE))


def quality_tolerance(task: str, overrides: dict[str, float]) -> float:
    if task in overrides:
        return float(overrides[task])
    return float(load_task_spec(task).quality_tolerance or DEFAULT_QUALITY_TOLERANCE)


def compare(table: pd.DataFrame, quality_tolerances: dict[str, float] | None = None,
            alpha: float = ALPHA) -> pd.DataFrame:
    """One row per comparison and phase: Rust against Python on the `ok` repetitions."""
    overrides = quality_tolerances or {}
    if table.empty:
        return pd.DataFrame()
    ok = table[table["status"] == "ok"]
    rows = []
    for key, group in ok.groupby(KEYS, sort=True):
        identity = dict(zip(KEYS, key, strict=True))
        py = group[group["language"] == "python"]
        metric = load_task_spec(identity["task"]).primary_metric(identity["algorithm"])
        tolerance = quality_tolerance(identity["task"], overrides)
        rust = group[group["language"] == "rust"]
        for rust_framework, rs in rust.groupby("framework", sort=True):
            if py.empty:
                continue
            rows += compare_pair(identity, py, rs, str(rust_framework), metric, tolerance)
    comparisons = pd.DataFrame(rows)
    return comparisons if comparisons.empty else finish(comparisons, alpha)


def median_metric(side: pd.DataFrame, metric: str) -> float:
    column = f"metric_{metric}"
    if column not in side or not side[column].notna().any():
        return math.nan
    return float(np.median(side[column].dropna()))


def compare_pair(identity: dict[str, Any], py: pd.DataFrame, rs: pd.DataFrame, rust_framework: str, metric: str,
                 tolerance: float) -> list[dict[str, Any]]:
    """One row per phase for one Rust framework against the Python framework."""
    q_py, q_rs = median_metric(py, metric), median_metric(rs, metric)
    mismatch = not (abs(q_py - q_rs) <= tolerance)  # NaN on either side is a mismatch too
    agreement = output_agreement(py, rs, metric)
    rows = []
    for phase in phases(pd.concat([py, rs])):
        t_py = py[f"time_{phase}"].dropna().to_numpy(float) if f"time_{phase}" in py else np.array([])
        t_rs = rs[f"time_{phase}"].dropna().to_numpy(float) if f"time_{phase}" in rs else np.array([])
        if not len(t_py) or not len(t_rs):
            continue
        low, high = ratio_ci(t_rs, t_py)
        p, delta = mann_whitney(t_rs, t_py)
        rows.append(identity | {
            "phase": phase, "python_framework": py["framework"].iloc[0], "rust_framework": rust_framework,
            "n_python": len(t_py), "n_rust": len(t_rs),
            "median_python": float(np.median(t_py)), "median_rust": float(np.median(t_rs)),
            "iqr_python": iqr(t_py), "iqr_rust": iqr(t_rs),
            "ratio": float(np.median(t_rs) / np.median(t_py)), "ci_low": low, "ci_high": high,
            "p_value": p, "cliffs_delta": delta,
            "outliers_python": tukey_outliers(t_py), "outliers_rust": tukey_outliers(t_rs),
            "cv_python": cv(t_py), "cv_rust": cv(t_rs),
            "quality_metric": metric, "quality_python": q_py, "quality_rust": q_rs,
            "quality_tolerance": tolerance, "quality_mismatch": mismatch, "agreement": agreement,
        })
    return rows


def output_agreement(py: pd.DataFrame, rs: pd.DataFrame, metric: str) -> float:
    """How alike the two sides' outputs are, repetition by repetition (median): for clustering the
    adjusted Rand index between the two labelings, for classification the share of equal labels.
    NaN where outputs are missing or the task is a regression."""
    from sklearn.metrics import adjusted_rand_score

    if metric not in ("adjusted_rand", "accuracy") or "predictions" not in py or "predictions" not in rs:
        return math.nan
    pairs = py[["repetition", "predictions"]].merge(rs[["repetition", "predictions"]], on="repetition")
    values = []
    for a, b in zip(pairs["predictions_x"], pairs["predictions_y"], strict=True):
        try:
            labels_py, labels_rs = np.load(a), np.load(b)
        except (OSError, ValueError, TypeError):
            continue
        if labels_py.shape != labels_rs.shape:
            continue
        values.append(adjusted_rand_score(labels_py, labels_rs) if metric == "adjusted_rand"
                      else float(np.mean(labels_py == labels_rs)))
    return float(np.median(values)) if values else math.nan


def param_labels(frame: pd.DataFrame) -> pd.Series:
    """Short hyperparameter labels: only the keys whose values vary within a task and algorithm."""
    parsed = frame["params"].map(json.loads)
    labels = pd.Series("-", index=frame.index)
    for _, group in frame.groupby(["task", "algorithm"]):
        values = parsed[group.index]
        keys = sorted({k for p in values for k in p})
        varying = [k for k in keys if len({json.dumps(p.get(k)) for p in values}) > 1]
        labels[group.index] = values.map(lambda p, v=varying: ",".join(f"{k}={p.get(k)}" for k in v) or "-")
    return labels


def finish(comparisons: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Holm within each phase (the family), power flags, verdicts."""
    comparisons["p_holm"] = math.nan
    comparisons["family_size"] = 0
    for _, family in comparisons.groupby("phase"):
        tested = family[family["p_value"].notna()]
        if tested.empty:
            continue
        _, adjusted, _, _ = multipletests(tested["p_value"], alpha=alpha, method="holm")
        comparisons.loc[tested.index, "p_holm"] = adjusted
        comparisons.loc[family.index, "family_size"] = len(tested)
    m = comparisons["family_size"].clip(lower=1)
    comparisons["underpowered"] = [min_exact_p(a, b) > alpha / k for a, b, k in
                                   zip(comparisons["n_rust"], comparisons["n_python"], m, strict=True)]
    comparisons["repetitions_needed"] = [repetitions_needed(r, p, alpha / k) for r, p, k in
                                         zip(comparisons["cv_rust"], comparisons["cv_python"], m, strict=True)]
    comparisons["verdict"] = [verdict(row) for row in comparisons.itertuples()]
    comparisons["notes"] = [", ".join(notes(row, alpha)) for row in comparisons.itertuples()]
    return comparisons


def verdict(row: Any) -> str:
    """Rust's side of the comparison: a speed-up under a quality mismatch is never a win."""
    if row.quality_mismatch:
        return "quality-mismatch"
    if not (np.isfinite(row.ci_low) and np.isfinite(row.ci_high)):
        return "insufficient-data"
    if row.ci_high < 1:
        return "rust-faster"
    if row.ci_low > 1:
        return "python-faster"
    return "tie"


def notes(row: Any, alpha: float) -> list[str]:
    out = []
    if row.quality_mismatch:
        out.append(f"quality-mismatch ({row.quality_metric} {row.quality_python:.4g} vs {row.quality_rust:.4g})")
    for side in ("python", "rust"):
        if getattr(row, f"cv_{side}") > CV_WARNING:
            out.append(f"cv {side} {getattr(row, f'cv_{side}'):.0%}")
        if getattr(row, f"outliers_{side}"):
            out.append(f"{getattr(row, f'outliers_{side}')} outlier(s) {side}")
    if row.underpowered:
        out.append(f"underpowered (n={row.n_rust}/{row.n_python}, need {row.repetitions_needed})")
    elif np.isfinite(row.p_holm) and row.p_holm >= alpha and row.verdict in ("rust-faster", "python-faster"):
        out.append("not significant after Holm")
    return out


def geometric_mean_ci(ratios: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Geometric mean of ratios with a bootstrap (BCa) CI over comparisons."""
    logs = np.log(ratios[np.isfinite(ratios) & (ratios > 0)])
    if not len(logs):
        return math.nan, math.nan, math.nan
    centre = float(np.exp(np.mean(logs)))
    if len(logs) < 3 or np.all(logs == logs[0]):
        return centre, math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.bootstrap((logs,), np.mean, confidence_level=confidence, n_resamples=BOOTSTRAP_RESAMPLES,
                                 method="BCa", rng=np.random.default_rng(SEED))
    return centre, float(np.exp(result.confidence_interval.low)), float(np.exp(result.confidence_interval.high))


def summarize(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Per domain and overall, per phase: geometric-mean Rust/Python time ratio with CI, and counts.

    Comparisons under a quality mismatch are counted but left out of the mean.
    """
    if comparisons.empty:
        return pd.DataFrame()
    rows = []
    scopes = [(d, comparisons[comparisons["domain"] == d]) for d in sorted(comparisons["domain"].unique())]
    for scope, frame in [*scopes, ("overall", comparisons)]:
        for phase, group in frame.groupby("phase"):
            fair = group[~group["quality_mismatch"]]
            centre, low, high = geometric_mean_ci(fair["ratio"].to_numpy(float))
            counts = group["verdict"].value_counts()
            rows.append({"scope": scope, "phase": phase, "comparisons": len(group), "geomean_ratio": centre,
                         "ci_low": low, "ci_high": high, "rust_faster": int(counts.get("rust-faster", 0)),
                         "ties": int(counts.get("tie", 0)), "python_faster": int(counts.get("python-faster", 0)),
                         "quality_mismatch": int(counts.get("quality-mismatch", 0)),
                         "insufficient_data": int(counts.get("insufficient-data", 0))})
    return pd.DataFrame(rows)


def memory(table: pd.DataFrame) -> pd.DataFrame:
    """Median peak RSS per comparison and framework."""
    ok = table[table["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame()
    wide = ok.pivot_table(index=KEYS, columns="framework", values="peak_rss_mb", aggfunc="median")
    return wide.rename(columns=lambda c: f"peak_rss_mb_{c}").reset_index()


def problems(table: pd.DataFrame) -> pd.DataFrame:
    """Records whose status is not `ok` (unsupported pairs; failed, timed-out or killed jobs), one row
    per task, algorithm, framework, status and reason, with the jobs and datasets it covers."""
    if table.empty:
        return table
    bad = table[table["status"] != "ok"].assign(reason=lambda f: f["error"].fillna("").str.split("\n").str[0])
    keys = ["task", "algorithm", "language", "framework", "status", "reason"]
    grouped = bad.groupby(keys, sort=True).agg(jobs=("job_id", "nunique"),
                                               datasets=("dataset", lambda d: ", ".join(sorted(set(d)))))
    return grouped.reset_index()


def environment(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per language and framework: the machine, runtime, libraries, threads and build flags."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for path in map(Path, paths):
        for record in read_jsonl(records_file(path)).records:
            env = record.get("env") or {}
            key = (record.get("language", "?"), record.get("framework", "?"))
            if key in seen or not env or record.get("framework_version") is None:
                continue
            build = env.get("build") or {}
            seen[key] = {
                "language": key[0], "framework": key[1], "framework_version": record.get("framework_version"),
                "cpu_model": env.get("cpu_model"), "cores": env.get("cores"), "os": env.get("os"),
                "runtime": env.get("runtime"), "threads": record.get("threads"),
                "libraries": ", ".join(f"{k} {v}" for k, v in (env.get("libraries") or {}).items()),
                "thread_env": ", ".join(f"{k}={v}" for k, v in (env.get("thread_env") or {}).items()),
                "rust_build": " ".join(filter(None, [build.get("profile"), build.get("rustflags")])) or "-",
                "git_commit": (env.get("git_commit") or "-")[:12],
            }
    return pd.DataFrame(list(seen.values()))
