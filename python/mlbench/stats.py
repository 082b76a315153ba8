"""Statistical comparison of Rust and Python records (DESIGN.md section 5).

Pipeline: `load` the records into a tidy table (mlbench.tidy: one row per measured repetition, with
the process that measured it) -> `compare` (one row per task, algorithm, dataset, hyperparameters, hardware
profile and phase, Rust framework against Python framework) -> Holm correction within each phase
-> `summarize` per domain.

Measurements are hierarchical: repetitions within task processes, processes within a side. Two
runs of the same code differ more between processes than between repetitions of one process (the
A/A test in README), so every interval and test treats the process as the unit that replicates:
a two-level bootstrap for the ratio's CI (Kalibera & Jones 2013), Welch's t-test on per-process
log-medians for the p-value. Verdicts compare the CI with an equivalence band [1/(1+m), 1+m]
(m: the matrix's margin or the machine's measured noise floor, whichever is larger), in the
manner of two one-sided tests (Schuirmann 1987): `faster`, `slower`, `equivalent`, `inconclusive`.
Tests and corrections come from scipy and statsmodels; this module only chooses and documents.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from mlbench.config import load_task_spec
from mlbench.tidy import KEYS, LoadReport, environment, load, memory, phases, problems  # noqa: F401 (re-exported)

ALPHA = 0.05
POWER = 0.80
DEFAULT_MARGIN = 0.05  # equivalence margin m when neither the run nor a noise floor gives one
CV_WARNING = 0.10  # a side whose coefficient of variation exceeds this is too noisy to trust alone
TUKEY_K = 1.5  # Tukey (1977) fences: outside [Q1 - k IQR, Q3 + k IQR]
BOOTSTRAP_RESAMPLES = 9999  # for the geometric mean over comparisons
HIERARCHICAL_RESAMPLES = 4000  # per comparison; the percentile interval's ends move < 1% beyond this
SEED = 20240501  # fixed, so a report is reproducible to the digit
DEFAULT_QUALITY_TOLERANCE = 1e-3
PROCESS_PHASES = ("startup", "load")  # measured once per task process, not per repetition
HEADLINE_PHASES = ("fit", "train")  # each task's main phase: fit (classical), train (training tasks)


def resampled_medians(groups: list[np.ndarray], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of `resamples` two-level bootstrap samples of one side: draw processes with
    replacement, then within each drawn process its repetitions with replacement."""
    sizes = np.array([len(g) for g in groups])
    padded = np.full((len(groups), sizes.max()), np.nan)
    for i, g in enumerate(groups):
        padded[i, :len(g)] = g
    chosen = rng.integers(0, len(groups), (resamples, len(groups)))
    n = sizes[chosen][..., None]
    within = np.floor(rng.random((resamples, len(groups), sizes.max())) * n).astype(int)
    values = padded[chosen[..., None], within]
    if np.all(sizes == sizes[0]):
        return np.median(values.reshape(resamples, -1), axis=1)
    values[np.arange(sizes.max()) >= n] = np.nan  # positions past a shorter process's length
    return np.nanmedian(values.reshape(resamples, -1), axis=1)


def hierarchical_ratio_ci(rs: list[np.ndarray], py: list[np.ndarray], confidence: float = 0.95,
                          resamples: int = HIERARCHICAL_RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """Percentile CI of median(rs) / median(py) by a two-level bootstrap, each side resampled
    independently: processes with replacement, then repetitions within them (Kalibera & Jones
    2013, "Rigorous benchmarking in reasonable time", sec. 5; Davison & Hinkley 1997, sec. 3.8).
    Resampling both levels slightly overstates the variance (conservative); with a single process
    per side it reduces to the ordinary bootstrap, which cannot see process-to-process drift."""
    rs, py = [g for g in rs if len(g)], [g for g in py if len(g)]
    if sum(map(len, rs)) < 2 or sum(map(len, py)) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    ratios = resampled_medians(rs, resamples, rng) / resampled_medians(py, resamples, rng)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def log_medians(groups: list[np.ndarray]) -> np.ndarray:
    """log of each process's median time (NaN where a median is not positive)."""
    medians = np.array([np.median(g) for g in groups if len(g)], dtype=float)
    logs = np.full(len(medians), np.nan)
    positive = medians > 0
    logs[positive] = np.log(medians[positive])
    return logs


def process_test(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Welch t-test on per-process log-medians (`log_medians`): the process is the
    replicate, so the test has the degrees of freedom of processes, not of repetitions. NaN with
    < 2 processes."""
    if len(a) < 2 or len(b) < 2 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return math.nan
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def cliffs_delta(rs: np.ndarray, py: np.ndarray) -> float:
    """Cliff's delta = P(rs > py) - P(rs < py) over all pairs of repetitions (Cliff 1993), from
    scipy's Mann-Whitney U (delta = 2U/(n1 n2) - 1). Positive: Rust takes longer."""
    if len(rs) < 1 or len(py) < 1:
        return math.nan
    result = stats.mannwhitneyu(rs, py, alternative="two-sided", method="asymptotic")
    return float(2 * result.statistic / (len(rs) * len(py)) - 1)


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


def process_cv(logs: np.ndarray) -> float:
    """Spread between processes: standard deviation of per-process log-medians (`log_medians`;
    about the CV of a process's median)."""
    if len(logs) < 2 or not np.all(np.isfinite(logs)):
        return math.nan
    return float(np.std(logs, ddof=1))


def processes_needed(cv_rs: float, cv_py: float, margin: float, alpha: float = ALPHA,
                     power: float = POWER) -> float:
    """Processes per side for the ratio's CI to fit inside the equivalence band when the sides
    are equal, with probability `power`: n = ((z_(1-alpha/2) + z_power) sigma / log(1+m))^2 with
    sigma^2 = the two sides' between-process variances of log time (normal approximation,
    Chow, Shao & Wang 2008, sec. 3.2). At least 2; NaN when a side has one process."""
    if not (np.isfinite(cv_rs) and np.isfinite(cv_py)):
        return math.nan
    if margin <= 0:
        return math.inf  # no number of processes puts a CI inside an empty band
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    sigma = math.sqrt(cv_rs**2 + cv_py**2)
    return float(max(2, math.ceil((z * sigma / math.log1p(margin)) ** 2)))


def primary_metric(task: str, algorithm: str, context: LoadReport) -> str:
    """From the run's meta.json; a bare records file (no meta.json) falls back to the task spec."""
    judged = context.judging.get(task, {}).get(algorithm)
    return judged["primary_metric"] if judged else load_task_spec(task).primary_metric(algorithm)


def quality_tolerance(task: str, overrides: dict[str, float]) -> float:
    if task in overrides:
        return float(overrides[task])
    return float(load_task_spec(task).quality_tolerance or DEFAULT_QUALITY_TOLERANCE)


def margin_for(task: str, context: LoadReport) -> float:
    """m for a task: the larger of the run's margin and the machine's measured noise floor (a noise
    floor run itself is judged against its margin alone)."""
    margin = float(context.margin.get(task, DEFAULT_MARGIN))
    if context.mode == "noise-floor":
        return margin
    return max(margin, float(context.noise_floor.get(task, 0.0)))


def compare(table: pd.DataFrame, context: LoadReport | None = None, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per comparison and phase: each Rust framework against the Python framework on the
    `ok` repetitions (in a noise-floor run: each framework's side B against its side A)."""
    context = context or LoadReport()
    if table.empty:
        return pd.DataFrame()
    ok = table[table["status"] == "ok"]
    rows = []
    for key, group in ok.groupby(KEYS, sort=True):
        identity = dict(zip(KEYS, key, strict=True))
        metric = primary_metric(identity["task"], identity["algorithm"], context)
        settings = (metric, quality_tolerance(identity["task"], context.quality_tolerance),
                    margin_for(identity["task"], context))
        for baseline, candidate in sides(group, context.mode):
            rows += compare_pair(identity, baseline, candidate, *settings)
    comparisons = pd.DataFrame(rows)
    if comparisons.empty:
        return comparisons
    comparisons = finish(comparisons, alpha)
    if context.target_ci is not None:  # --target-ci: say which comparisons reached it
        comparisons["target_reached"] = comparisons["ci_halfwidth"] <= context.target_ci
        missed = ~comparisons["target_reached"]
        comparisons.loc[missed, "notes"] = [
            ", ".join(filter(None, [n, f"CI ±{w:.1%} wider than the target ±{context.target_ci:.0%}"]))
            for n, w in zip(comparisons.loc[missed, "notes"], comparisons.loc[missed, "ci_halfwidth"], strict=True)]
    return comparisons


def sides(group: pd.DataFrame, mode: str) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(baseline, candidate) pairs of one comparison group: Python against each Rust framework,
    or in a noise-floor run each framework's side A against its side B."""
    if mode == "noise-floor":
        pairs = []
        for _, same in group.groupby(group["framework"].str.removesuffix(" [A]").str.removesuffix(" [B]")):
            a, b = same[same["framework"].str.endswith("[A]")], same[same["framework"].str.endswith("[B]")]
            if not a.empty and not b.empty:
                pairs.append((a, b))
        return pairs
    py = group[group["language"] == "python"]
    if py.empty:
        return []
    return [(py, rs) for _, rs in group[group["language"] == "rust"].groupby("framework", sort=True)]


def median_metric(side: pd.DataFrame, metric: str) -> float:
    column = f"metric_{metric}"
    if column not in side or not side[column].notna().any():
        return math.nan
    return float(np.median(side[column].dropna()))


def by_process(side: pd.DataFrame, phase: str) -> list[np.ndarray]:
    """One array of per-call times per task process; a per-process phase has one value each."""
    column = f"time_{phase}"
    if column not in side:
        return []
    frame = side[["job_id", "process", column]].dropna()
    if phase in PROCESS_PHASES:
        frame = frame.drop_duplicates(["job_id", "process"])
    if frame.empty:
        return []
    codes, _ = pd.factorize(frame["job_id"] + ":" + frame["process"].astype(str), sort=True)
    order = np.argsort(codes, kind="stable")
    return np.split(frame[column].to_numpy(float)[order], np.cumsum(np.bincount(codes))[:-1])


def compare_pair(identity: dict[str, Any], py: pd.DataFrame, rs: pd.DataFrame, metric: str, tolerance: float,
                 margin: float) -> list[dict[str, Any]]:
    """One row per phase for one candidate (Rust framework) against the baseline (Python)."""
    q_py, q_rs = median_metric(py, metric), median_metric(rs, metric)
    mismatch = not (abs(q_py - q_rs) <= tolerance)  # NaN on either side is a mismatch too
    agreement = output_agreement(py, rs, metric)
    disturbed = int(py["disturbed"].sum() + rs["disturbed"].sum())
    py, rs = py[~py["disturbed"]], rs[~rs["disturbed"]]  # counted, kept in the records, not judged
    rows = []
    for phase in phases(pd.concat([py, rs])):
        g_py, g_rs = by_process(py, phase), by_process(rs, phase)
        if not g_py or not g_rs:
            continue
        t_py, t_rs = np.concatenate(g_py), np.concatenate(g_rs)
        low, high = hierarchical_ratio_ci(g_rs, g_py)
        ratio = float(np.median(t_rs) / np.median(t_py))
        logs_py, logs_rs = log_medians(g_py), log_medians(g_rs)
        pcv_py, pcv_rs = process_cv(logs_py), process_cv(logs_rs)
        rows.append(identity | {
            "phase": phase, "python_framework": py["framework"].iloc[0], "rust_framework": rs["framework"].iloc[0],
            "n_python": len(t_py), "n_rust": len(t_rs), "processes_python": len(g_py), "processes_rust": len(g_rs),
            "median_python": float(np.median(t_py)), "median_rust": float(np.median(t_rs)),
            "iqr_python": iqr(t_py), "iqr_rust": iqr(t_rs),
            "ratio": ratio, "ci_low": low, "ci_high": high,
            "ci_halfwidth": math.sqrt(high / low) - 1 if low > 0 else math.nan,
            "margin": margin, "p_value": process_test(logs_rs, logs_py), "cliffs_delta": cliffs_delta(t_rs, t_py),
            "outliers_python": tukey_outliers(t_py), "outliers_rust": tukey_outliers(t_rs),
            "cv_python": cv(t_py), "cv_rust": cv(t_rs), "process_cv_python": pcv_py, "process_cv_rust": pcv_rs,
            "processes_needed": processes_needed(pcv_rs, pcv_py, margin),
            "disturbed_excluded": disturbed,
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
    have = comparisons[["processes_python", "processes_rust"]].min(axis=1)
    comparisons["underpowered"] = ~(have >= comparisons["processes_needed"])  # NaN (one process): underpowered
    comparisons["verdict"] = [verdict(row) for row in comparisons.itertuples()]
    comparisons["notes"] = [", ".join(notes(row)) for row in comparisons.itertuples()]
    return comparisons


VERDICTS = ("faster", "equivalent", "inconclusive", "slower", "quality-mismatch", "insufficient-data")


def verdict(row: Any) -> str:
    """The candidate's (Rust's) side, read off the CI against the band [1/(1+m), 1+m]: `faster` or
    `slower` when the whole CI lies beyond the band, `equivalent` when it lies inside, else
    `inconclusive`. A speed-up under a quality mismatch is never a win."""
    if row.quality_mismatch:
        return "quality-mismatch"
    if not (np.isfinite(row.ci_low) and np.isfinite(row.ci_high)):
        return "insufficient-data"
    upper = 1 + row.margin
    if row.ci_high < 1 / upper:
        return "faster"
    if row.ci_low > upper:
        return "slower"
    if row.ci_low >= 1 / upper and row.ci_high <= upper:
        return "equivalent"
    return "inconclusive"


def notes(row: Any) -> list[str]:
    out = []
    if row.quality_mismatch:
        out.append(f"quality-mismatch ({row.quality_metric} {row.quality_python:.4g} vs {row.quality_rust:.4g})")
    for side in ("python", "rust"):
        if getattr(row, f"cv_{side}") > CV_WARNING:
            out.append(f"cv {side} {getattr(row, f'cv_{side}'):.0%}")
        if getattr(row, f"outliers_{side}"):
            out.append(f"{getattr(row, f'outliers_{side}')} outlier(s) {side}")
    if min(row.processes_python, row.processes_rust) < 2:
        out.append("1 process per side: the CI cannot see drift between processes")
    elif row.underpowered:
        out.append(f"underpowered ({min(row.processes_python, row.processes_rust)} processes per side, "
                   f"need {row.processes_needed:.0f} for ±{row.margin:.0%})")
    if row.disturbed_excluded:
        out.append(f"{row.disturbed_excluded} disturbed repetition(s) left out")
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
                         "ci_low": low, "ci_high": high}
                        | {v.replace("-", "_"): int(counts.get(v, 0)) for v in VERDICTS})
    return pd.DataFrame(rows)
