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

import itertools
import json
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from mlbench.config import load_task_spec
from mlbench.tidy import (  # noqa: F401 (re-exported)
    KEYS,
    LoadReport,
    deep_learning,
    environment,
    load,
    memory,
    phases,
    problems,
)

ALPHA = 0.05
POWER = 0.80
DEFAULT_MARGIN = 0.05  # equivalence margin m when neither the run nor a noise floor gives one
CV_WARNING = 0.10  # a side whose coefficient of variation exceeds this is too noisy to trust alone
TUKEY_K = 1.5  # Tukey (1977) fences: outside [Q1 - k IQR, Q3 + k IQR]
BOOTSTRAP_RESAMPLES = 9999  # for the geometric mean over comparisons
HIERARCHICAL_RESAMPLES = 4000  # per comparison; the percentile interval's ends move < 1% beyond this
RESAMPLE_BLOCK = 1000  # bootstrap samples drawn at a time (memory reuse; the results do not depend on it)
SEED = 20240501  # fixed, so a report is reproducible to the digit
DEFAULT_QUALITY_TOLERANCE = 1e-3
PROCESS_PHASES = ("startup", "load")  # measured once per task process, not per repetition
HEADLINE_PHASES = ("fit", "train", "step", "generate", "forward")  # the main phase: fit (classical), train
# (training), step (env_steps), generate (a language model's generation), forward (an encoder's)


def resampled_medians(groups: list[np.ndarray], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of `resamples` two-level bootstrap samples of one side: draw processes with
    replacement, then within each drawn process its repetitions with replacement. The second
    draw runs in blocks of RESAMPLE_BLOCK (the same random stream as one draw, in a third of the
    time: small arrays reuse memory where large ones fault in fresh pages)."""
    sizes = np.array([len(g) for g in groups])
    longest = sizes.max()
    padded = np.full((len(groups), longest), np.nan)
    for i, g in enumerate(groups):
        padded[i, :len(g)] = g
    chosen = rng.integers(0, len(groups), (resamples, len(groups)))
    equal = bool(np.all(sizes == sizes[0]))
    medians = []
    for start in range(0, resamples, RESAMPLE_BLOCK):
        block = chosen[start:start + RESAMPLE_BLOCK]
        n = sizes[block][..., None]
        within = (rng.random((len(block), len(groups), longest)) * n).astype(np.intp)  # floor: non-negative
        values = padded.ravel().take(block[..., None] * longest + within)  # = padded[block[..., None], within]
        if equal:
            medians.append(row_medians(values.reshape(len(block), -1)))
            continue
        values[np.arange(longest) >= n] = np.nan  # positions past a shorter process's length
        medians.append(np.nanmedian(values.reshape(len(block), -1), axis=1))
    return np.concatenate(medians)


def row_medians(values: np.ndarray) -> np.ndarray:
    """np.median(values, axis=1) for a NaN-free 2-D array, by one partition (a fifth of its cost here)."""
    n = values.shape[1]
    half = n // 2
    if n % 2:
        return np.partition(values, half, axis=1)[:, half]
    middle = np.partition(values, [half - 1, half], axis=1)
    return (middle[:, half - 1] + middle[:, half]) / 2


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
    result = stats.ttest_ind_from_stats(np.mean(a), np.std(a, ddof=1), len(a), np.mean(b), np.std(b, ddof=1), len(b),
                                        equal_var=False)  # = ttest_ind(a, b, equal_var=False), a tenth the cost
    return float(result.pvalue)


def cliffs_delta(rs: np.ndarray, py: np.ndarray) -> float:
    """Cliff's delta = P(rs > py) - P(rs < py) over all pairs of repetitions (Cliff 1993), from
    counting the pairs directly (equal to 2U/(n1 n2) - 1 with scipy's Mann-Whitney U, as
    tests/test_stats.py checks). Positive: Rust takes longer."""
    if len(rs) < 1 or len(py) < 1:
        return math.nan
    greater = np.sum(rs[:, None] > py[None, :])  # every pair, as the definition (U = greater + ties/2)
    less = np.sum(rs[:, None] < py[None, :])
    return float((greater - less) / (len(rs) * len(py)))


def tukey_outliers(values: np.ndarray) -> int:
    """Count of values outside Tukey's fences; reported, never dropped."""
    if len(values) < 4:
        return 0
    q1, q3 = np.percentile(values, [25, 75])
    spread = TUKEY_K * (q3 - q1)
    return int(np.sum((values < q1 - spread) | (values > q3 + spread)))


def iqr(values: np.ndarray) -> float:
    if not len(values):
        return math.nan
    q1, q3 = np.percentile(values, [25, 75])  # scipy.stats.iqr's default (linear interpolation)
    return float(q3 - q1)


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


# Kinds whose outputs come from each side's own random generator: no agreement is computed.
UNCOMPARED_KINDS = ("sampled_generation",)


def judging_kind(task: str, algorithm: str, context: LoadReport) -> str:
    """From the run's meta.json; a bare records file (no meta.json) falls back to the task spec."""
    judged = context.judging.get(task, {}).get(algorithm)
    return judged["kind"] if judged else load_task_spec(task).kind_of(algorithm)


def quality_tolerance(task: str, overrides: dict[str, float]) -> float:
    if task in overrides:
        return float(overrides[task])
    tolerance = load_task_spec(task).quality_tolerance
    return float(DEFAULT_QUALITY_TOLERANCE if tolerance is None else tolerance)


def margin_for(task: str, context: LoadReport) -> float:
    """m for a task: the larger of the run's margin and the machine's measured noise floor (a noise
    floor run itself is judged against its margin alone)."""
    margin = float(context.margin.get(task, DEFAULT_MARGIN))
    if context.mode == "noise-floor":
        return margin
    return max(margin, float(context.noise_floor.get(task, 0.0)))


def selected_phases(names: list[str], phase: str | None) -> list[str]:
    """The phases a caller asked for: None or `all`: every one; `headline`: each task's main phase
    (fit for classical tasks, train for training tasks, step for environment stepping); else the one named."""
    if phase in (None, "all"):
        return names
    if phase == "headline":
        return [p for p in names if p in HEADLINE_PHASES]
    return [p for p in names if p == phase]


def compare(table: pd.DataFrame, context: LoadReport | None = None, alpha: float = ALPHA,
            phase: str | None = None) -> pd.DataFrame:
    """One row per comparison and phase: each Rust framework against the Python framework on the
    `ok` repetitions (in a noise-floor run: each framework's side B against its side A). `phase`
    limits the work to the phases asked for (`selected_phases`); Holm's family is each phase."""
    context = context or LoadReport()
    if table.empty:
        return pd.DataFrame()
    wanted = selected_phases(phases(table), phase)
    columns = [*KEYS, "language", "framework", "process", "repetition", "unit", "disturbed", "predictions",
               *(c for c in table.columns if c.startswith("metric_")), *(f"time_{p}" for p in wanted)]
    ok = table.loc[table["status"] == "ok", [c for c in columns if c in table]]  # only what is compared
    names = phases(ok)  # the phases asked for that these records have
    by_side: dict[tuple[Any, ...], list[tuple[str, str, pd.DataFrame]]] = {}
    for key, side in ok.groupby([*KEYS, "language", "framework"], sort=True):  # one split, not one per group
        by_side.setdefault(key[:len(KEYS)], []).append((key[-2], key[-1], side))
    work = []
    for key, group in by_side.items():
        identity = dict(zip(KEYS, key, strict=True))
        metric = primary_metric(identity["task"], identity["algorithm"], context)
        kind = judging_kind(identity["task"], identity["algorithm"], context)
        settings = (metric, quality_tolerance(identity["task"], context.quality_tolerance),
                    margin_for(identity["task"], context), kind)
        work += [(identity, baseline, candidate, settings) for baseline, candidate in sides(group, context.mode)]
    comparisons = pd.DataFrame(compare_all(work, names))
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


Work = list[tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, tuple[str, float, float, str]]]
PARALLEL_MIN = 200  # comparisons from which `compare_all` spreads them over the CPU cores
_WORK: tuple[Work, list[str]] = ([], [])  # what forked workers read (fork shares it; nothing is pickled)


def compare_all(work: Work, names: list[str]) -> list[dict[str, Any]]:
    """Every pair's rows, in order. Each comparison seeds its own bootstrap, so the rows are the same
    serial or spread over processes (forked, up to 8, never more than this process may use;
    MLBENCH_ANALYSIS_WORKERS=1 keeps it serial)."""
    global _WORK
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    workers = min(len(os.sched_getaffinity(0)), 8, int(os.environ.get("MLBENCH_ANALYSIS_WORKERS", "8")))
    if workers < 2 or len(work) < PARALLEL_MIN or "fork" not in multiprocessing.get_all_start_methods():
        return compare_slice((0, len(work)), work, names)
    _WORK = (work, names)
    bounds = np.linspace(0, len(work), workers * 4 + 1).astype(int)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            parts = pool.map(compare_slice, itertools.pairwise(bounds))
            return [row for part in parts for row in part]
    finally:
        _WORK = ([], [])


def compare_slice(bounds: tuple[int, int], work: Work | None = None, names: list[str] | None = None
                  ) -> list[dict[str, Any]]:
    work, names = (work, names) if work is not None and names is not None else _WORK
    start, stop = bounds
    return [row for identity, baseline, candidate, settings in work[start:stop]
            for row in compare_pair(identity, baseline, candidate, *settings, names)]


def sides(group: list[tuple[str, str, pd.DataFrame]], mode: str) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(baseline, candidate) pairs of one comparison group, given as (language, framework, rows) sorted
    by language and framework: Python against each Rust framework, or in a noise-floor run each
    framework's side A against its side B."""
    if mode == "noise-floor":
        by_name = {framework: side for _, framework, side in group}
        return [(side, by_name[framework.removesuffix("[A]") + "[B]"]) for framework, side in by_name.items()
                if framework.endswith("[A]") and framework.removesuffix("[A]") + "[B]" in by_name]
    python = [side for language, _, side in group if language == "python"]
    if not python:
        return []
    py = python[0] if len(python) == 1 else pd.concat(python)
    return [(py, side) for language, _, side in group if language == "rust"]


def median_metric(side: pd.DataFrame, metric: str) -> float:
    column = f"metric_{metric}"
    if column not in side:
        return math.nan
    values = side[column].to_numpy(float)
    values = values[~np.isnan(values)]
    return float(np.median(values)) if len(values) else math.nan


def by_process(side: pd.DataFrame, phase: str) -> list[np.ndarray]:
    """One array of per-call times per task process; a per-process phase has one value each."""
    column = f"time_{phase}"
    if column not in side:
        return []
    values = side[column].to_numpy(float)
    units = side["unit"].to_numpy()
    present = ~np.isnan(values)
    values, units = values[present], units[present]
    if phase in PROCESS_PHASES:
        units, first = np.unique(units, return_index=True)
        values = values[first]
    if not len(values):
        return []
    codes = pd.factorize(units, sort=True)[0]
    order = np.argsort(codes, kind="stable")
    return np.split(values[order], np.cumsum(np.bincount(codes))[:-1])


def compare_pair(identity: dict[str, Any], py: pd.DataFrame, rs: pd.DataFrame, metric: str, tolerance: float,
                 margin: float, kind: str, names: list[str]) -> list[dict[str, Any]]:
    """One row per phase in `names` for one candidate (Rust framework) against the baseline (Python)."""
    if not names:
        return []
    if metric in SEED_DISTRIBUTION_METRICS:  # an agent's return: a distribution over seeds
        (q_py, low_py, high_py), (q_rs, low_rs, high_rs) = iqm_ci(per_seed(py, metric)), iqm_ci(per_seed(rs, metric))
        mismatch = not (low_py <= high_rs and low_rs <= high_py)  # CIs apart; NaN on either side too
        quality_cis = {"quality_ci_python": [low_py, high_py], "quality_ci_rust": [low_rs, high_rs]}
    elif metric in CROSS_SIDE_METRICS:  # the Python side is the reference: its own distance is 0
        q_py, q_rs = 0.0, output_error(py, rs)
        mismatch = not (q_rs <= tolerance)  # NaN (outputs missing or of another shape) is a mismatch too
        quality_cis = {}
    else:
        q_py, q_rs = median_metric(py, metric), median_metric(rs, metric)
        mismatch = not (abs(q_py - q_rs) <= tolerance)  # NaN on either side is a mismatch too
        quality_cis = {}
    agreement = output_agreement(py, rs, metric, kind) if kind not in UNCOMPARED_KINDS else math.nan
    disturbed = int(py["disturbed"].sum() + rs["disturbed"].sum())
    if disturbed:
        py, rs = py[~py["disturbed"]], rs[~rs["disturbed"]]  # counted, kept in the records, not judged
    rows = []
    for phase in names:
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
        } | quality_cis)
    return rows


# Metrics judged as a distribution over seeds: the interquartile mean (IQM: the mean of the middle
# half, rliable's robust aggregate, Agarwal et al. 2021) with a 95% percentile-bootstrap CI over the
# seeds (rliable's stratified bootstrap, which for one task is this bootstrap); two sides are the
# same quality when their CIs overlap. Computed with scipy (rliable 1.2 pins old numpy and arch).
SEED_DISTRIBUTION_METRICS = ("final_return",)
IQM_RESAMPLES = 2000


def per_seed(side: pd.DataFrame, metric: str) -> np.ndarray:
    """One value per seed (repetition i has seed + i in every process; a deterministic side gives the
    same value in each, so the median over processes is that value)."""
    column = f"metric_{metric}"
    if column not in side:
        return np.zeros(0)
    values = side[["repetition", column]].dropna().groupby("repetition")[column].median()
    return values.to_numpy(float)


def iqm(values: np.ndarray) -> float:
    return float(stats.trim_mean(values, 0.25))


def iqm_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """The IQM of the seeds' values and its percentile-bootstrap CI (NaN without values; a point for
    one seed or identical values)."""
    if not len(values):
        return math.nan, math.nan, math.nan
    centre = iqm(values)
    if len(values) < 2 or np.ptp(values) == 0:
        return centre, centre, centre
    result = stats.bootstrap((values,), lambda x, axis: stats.trim_mean(x, 0.25, axis=axis),
                             confidence_level=confidence, n_resamples=IQM_RESAMPLES, method="percentile",
                             rng=np.random.default_rng(SEED))
    return centre, float(result.confidence_interval.low), float(result.confidence_interval.high)


# Metrics measured between the two sides' outputs, not on each side: an encoder's seeded head has
# no meaningful accuracy, so its quality is how far the Rust side's outputs lie from the Python side's.
CROSS_SIDE_METRICS = ("output_error",)
SPAN_MAX_TOKENS = 30  # the longest answer span (transformers' question-answering pipeline's default)
EMBEDDING_COSINE = 0.9999


def output_pairs(py: pd.DataFrame, rs: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
    """Both sides' saved outputs, repetition by repetition (the lowest process that saved each)."""
    if "predictions" not in py or "predictions" not in rs:
        return []
    first_py, first_rs = first_by_repetition(py), first_by_repetition(rs)
    pairs = []
    for repetition in sorted(first_py.keys() & first_rs.keys()):
        try:
            pairs.append((np.load(first_py[repetition]), np.load(first_rs[repetition])))
        except (OSError, ValueError, TypeError):
            continue
    return pairs


def output_error(py: pd.DataFrame, rs: pd.DataFrame) -> float:
    """The largest absolute difference between the two sides' outputs relative to the Python side's
    largest magnitude, over the repetitions (NaN where outputs are missing or differ in shape)."""
    errors = []
    for a, b in output_pairs(py, rs):
        if a.shape != b.shape:
            return math.nan
        a, b = a.astype(np.float64), b.astype(np.float64)
        errors.append(float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), np.finfo(np.float64).tiny)))
    return max(errors) if errors else math.nan


def best_spans(logits: np.ndarray) -> np.ndarray:
    """Each row's answer span from its start and end logits (rows x tokens x 2): the (start, end)
    with start <= end < start + SPAN_MAX_TOKENS of the largest summed logit (the first on a tie)."""
    start, end = logits[..., 0].astype(np.float64), logits[..., 1].astype(np.float64)
    n = start.shape[1]
    offsets = np.arange(n)[None, :] - np.arange(n)[:, None]  # end - start
    allowed = (offsets >= 0) & (offsets < SPAN_MAX_TOKENS)
    scores = np.where(allowed[None], start[:, :, None] + end[:, None, :], -np.inf)
    flat = scores.reshape(len(scores), -1).argmax(axis=1)
    return np.stack([flat // n, flat % n], axis=1)


def encoder_agreement(a: np.ndarray, b: np.ndarray, kind: str) -> float:
    """How alike two encoder outputs are, by kind (mlbench.evaluate's `encoding_*` and `embedding`)."""
    if kind == "encoding_spans":
        return float(np.mean(np.all(best_spans(a) == best_spans(b), axis=1)))
    if kind == "embedding":  # rows x (CLS, mean) x hidden
        a, b = a.astype(np.float64), b.astype(np.float64)
        cosine = np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
        return float(np.mean(np.all(cosine >= EMBEDDING_COSINE, axis=1)))
    return float(np.mean(a.argmax(axis=-1) == b.argmax(axis=-1)))


def output_agreement(py: pd.DataFrame, rs: pd.DataFrame, metric: str, kind: str = "") -> float:
    """How alike the two sides' outputs are, repetition by repetition (median): for clustering the
    adjusted Rand index between the two labelings, for classification the share of equal labels, for
    a rollout the share of episodes with the same return, in order (an episode only one side
    completed counts as different), for a trained agent the share of steps with the same action, in
    order (both sides act alike until rounding first flips a greedy choice), for generation the
    share of generated tokens equal position by position, for an encoder its head's (encoder_agreement).
    NaN where outputs are missing or the task is a regression."""
    if metric in CROSS_SIDE_METRICS:
        values = [encoder_agreement(a, b, kind) for a, b in output_pairs(py, rs) if a.shape == b.shape]
        return float(np.median(values)) if values else math.nan
    if metric not in ("adjusted_rand", "accuracy", "mean_return", "final_return", "mean_nll") or \
            "predictions" not in py or "predictions" not in rs:
        return math.nan
    # Repetition i has seed + i in every process, so one process per side gives every seed's pair
    # (the lowest process that saved predictions for it): each file is read once.
    first_py, first_rs = first_by_repetition(py), first_by_repetition(rs)
    values = []
    for repetition in sorted(first_py.keys() & first_rs.keys()):
        try:
            labels_py, labels_rs = np.load(first_py[repetition]), np.load(first_rs[repetition])
        except (OSError, ValueError, TypeError):
            continue
        if metric in ("mean_return", "final_return"):  # returns in episode order, or actions in step order
            n = min(len(labels_py), len(labels_rs))
            same = int(np.sum(labels_py[:n] == labels_rs[:n]))
            values.append(same / max(len(labels_py), len(labels_rs), 1))
            continue
        if labels_py.shape != labels_rs.shape:
            continue
        values.append(float(np.mean(labels_py == labels_rs)) if metric in ("accuracy", "mean_nll")
                      else adjusted_rand(labels_py, labels_rs))
    return float(np.median(values)) if values else math.nan


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index (Hubert & Arabie 1985) of two labelings, by scikit-learn's formula from the
    pair confusion matrix, on a dense contingency table: equal to sklearn.metrics.adjusted_rand_score
    to the bit (tests/test_stats.py), without its input checks, which cost ~4 ms a call and made
    agreement the slowest part of `compare` on a full grid."""
    _, rows = np.unique(a, return_inverse=True)
    _, columns = np.unique(b, return_inverse=True)
    n_columns = int(columns.max()) + 1 if len(columns) else 1
    contingency = np.bincount(rows * n_columns + columns).astype(np.int64)
    contingency = np.pad(contingency, (0, (-len(contingency)) % n_columns)).reshape(-1, n_columns)
    n = len(a)
    n_c, n_k = contingency.sum(axis=1), contingency.sum(axis=0)
    sum_squares = int((contingency**2).sum())
    tp = sum_squares - n
    fp = int((contingency @ n_k).sum()) - sum_squares
    fn = int((contingency.T @ n_c).sum()) - sum_squares
    tn = n**2 - fp - fn - sum_squares
    if fn == 0 and fp == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def first_by_repetition(side: pd.DataFrame) -> dict[int, str]:
    """The predictions file of each repetition from the lowest process that saved one."""
    chosen: dict[int, str] = {}
    for _process, repetition, path in sorted(zip(side["process"], side["repetition"], side["predictions"],
                                                 strict=True), key=lambda row: (row[0], row[1])):
        if isinstance(path, str):
            chosen.setdefault(repetition, path)
    return chosen


def param_labels(frame: pd.DataFrame) -> pd.Series:
    """Short hyperparameter labels: only the keys whose values vary within a task and algorithm (a key
    a job lacks, e.g. `cv_folds` of a plain fit, is left out of its label)."""
    parsed = frame["params"].map(json.loads)
    labels = pd.Series("-", index=frame.index)
    for _, group in frame.groupby(["task", "algorithm"]):
        values = parsed[group.index]
        keys = sorted({k for p in values for k in p})
        varying = [k for k in keys if len({json.dumps(p.get(k)) for p in values}) > 1]
        labels[group.index] = values.map(lambda p, v=varying: ",".join(f"{k}={p[k]}" for k in v if k in p) or "-")
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


def summarize_groups(comparisons: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of `keys` (e.g. task, algorithm, Rust framework, phase): the geometric-mean ratio
    with its bootstrap CI over the group's comparisons (quality mismatches left out) and the counts
    of each verdict; the forest plot of a run too large to draw comparison by comparison."""
    rows = []
    for key, group in comparisons.groupby(keys, sort=True):
        fair = group[~group["quality_mismatch"]]
        centre, low, high = geometric_mean_ci(fair["ratio"].to_numpy(float))
        counts = group["verdict"].value_counts()
        rows.append(dict(zip(keys, key, strict=True)) | {
            "comparisons": len(group), "geomean_ratio": centre, "ci_low": low, "ci_high": high,
            "margin": float(group["margin"].max())} | {v.replace("-", "_"): int(counts.get(v, 0)) for v in VERDICTS})
    return pd.DataFrame(rows)


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


def size_sweep(table: pd.DataFrame, context: LoadReport, resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Time against data size, for the datasets a run's meta.json marks as size-sweep members: per
    pool, task, algorithm, hyperparameters and framework, one row per size with the median headline
    time, and the series' slope of log(time) on log(n_train) (1: time grows linearly with the rows,
    2: quadratically) with a 95% CI from resampling each size's repetitions. Series with one size
    have no slope."""
    sizes = {name: d for name, d in context.datasets.items() if "sweep" in d and d.get("n_train")}
    if table.empty or not sizes:
        return pd.DataFrame()
    ok = table[(table["status"] == "ok") & table["dataset"].isin(sizes)].copy()
    if ok.empty:
        return pd.DataFrame()
    phase = "train" if "time_train" in ok and ok["time_train"].notna().any() else "fit"
    ok = ok[ok[f"time_{phase}"].notna()]
    ok["pool"] = ok["dataset"].map(lambda d: sizes[d]["sweep"]["pool"])
    ok["n_train"] = ok["dataset"].map(lambda d: sizes[d]["n_train"])
    rng = np.random.default_rng(seed)
    rows = []
    for (pool, task, algorithm, params, language, framework), series in ok.groupby(
            ["pool", "task", "algorithm", "params", "language", "framework"], sort=True):
        by_size = [(n, group[f"time_{phase}"].to_numpy(float)) for n, group in series.groupby("n_train")]
        n = np.log([s for s, _ in by_size])
        slope = low = high = math.nan
        if len(by_size) > 1:
            slope = float(np.polyfit(n, np.log([np.median(t) for _, t in by_size]), 1)[0])
            draws = np.array([[np.median(rng.choice(t, len(t))) for _, t in by_size] for _ in range(resamples)])
            fitted = np.polyfit(n, np.log(draws).T, 1)[0]
            low, high = (float(v) for v in np.percentile(fitted, [2.5, 97.5]))
        for size, times in by_size:
            rows.append({"pool": pool, "task": task, "algorithm": algorithm, "params": params, "language": language,
                         "framework": framework, "phase": phase, "n_train": int(size),
                         "median_s": float(np.median(times)),
                         "repetitions": len(times), "slope": slope, "slope_ci_low": low, "slope_ci_high": high})
    frame = pd.DataFrame(rows)
    return frame.assign(label=param_labels(frame))


# The RL figures per algorithm, environment, hyperparameters and framework (`reinforcement_learning`).
REINFORCEMENT_LEARNING = {"throughput_train_samples_per_s": "steps/s", "throughput_update_samples_per_s": "updates/s",
                          "metric_success_rate": "success rate", "metric_convergence_step": "convergence step",
                          "metric_mean_length": "mean episode length", "peak_rss_mb": "peak RSS MiB"}


def reinforcement_learning(table: pd.DataFrame) -> pd.DataFrame:
    """Agent tasks: one row per algorithm, environment, hyperparameters and framework: the seeds, the
    IQM of the final return over them with its bootstrap CI (the quality rule's figure), the median
    of each figure in REINFORCEMENT_LEARNING (convergence step over the seeds that converged, with
    how many did), and how a step's time splits into acting, environment and update (shares of
    `train`), and the time per 10,000 steps and per update."""
    if "metric_final_return" not in table:
        return pd.DataFrame()
    ok = table[(table["status"] == "ok") & table["metric_final_return"].notna()]
    rows = []
    for key, group in ok.groupby(["task", "algorithm", "dataset", "params", "framework"], dropna=False):
        seeds = group.groupby("repetition")
        final = per_seed(group, "final_return")
        centre, low, high = iqm_ci(final)
        row = dict(zip(["task", "algorithm", "dataset", "params", "framework"], key, strict=True))
        row |= {"seeds": len(final), "final return IQM": centre, "IQM CI low": low, "IQM CI high": high}
        for column, label in REINFORCEMENT_LEARNING.items():
            if column in group:
                row[label] = float(seeds[column].median().median()) if group[column].notna().any() else None
        if "metric_convergence_step" in group:
            row["converged seeds"] = int(seeds["metric_convergence_step"].median().notna().sum())
        train = group["time_train"].median()
        for phase in ("act", "env", "update"):
            if f"time_{phase}" in group:
                row[f"{phase} share"] = float(group[f"time_{phase}"].median() / train) if train else None
        steps = group["throughput_train_samples_per_s"].median() if "throughput_train_samples_per_s" in group else None
        row["s per 10k steps"] = 1e4 / steps if steps else None
        updates = group["throughput_update_samples_per_s"].median() if "throughput_update_samples_per_s" in group \
            else None
        row["ms per update"] = 1e3 / updates if updates else None
        rows.append(row)
    out = pd.DataFrame(rows)
    if not out.empty:  # only the hyperparameters that vary, as the comparison table shows them
        out["params"] = param_labels(out)
    return out


LANGUAGE_MODELS = {"throughput_decode_samples_per_s": "decode tokens/s",
                   "throughput_generate_samples_per_s": "generate tokens/s",
                   "throughput_prefill_samples_per_s": "prefill tokens/s",
                   "metric_perplexity": "held-out perplexity", "peak_rss_mb": "peak RSS MiB"}


def token_bleu(python_tokens: np.ndarray, rust_tokens: np.ndarray) -> float:
    """BLEU (sacrebleu's corpus BLEU, 0 to 1, tokenize none) of one side's generated ids against the
    Python side's, each row a sentence of ids: 1 when identical. NaN without sacrebleu (the llm extra)."""
    try:
        import sacrebleu
    except ImportError:
        return math.nan
    sentences = [[" ".join(map(str, row)) for row in tokens] for tokens in (python_tokens, rust_tokens)]
    return float(sacrebleu.corpus_bleu(sentences[1], [sentences[0]], tokenize="none").score) / 100


def greedy_bleu(python: pd.DataFrame, rust: pd.DataFrame) -> float:
    """The median over repetitions (paired by seed, as `output_agreement` pairs them) of token_bleu."""
    first_py, first_rs = first_by_repetition(python), first_by_repetition(rust)
    values = [token_bleu(np.load(first_py[r]), np.load(first_rs[r])) for r in sorted(first_py.keys() & first_rs.keys())]
    return float(np.median(values)) if values else math.nan


def language_models(table: pd.DataFrame, comparisons: pd.DataFrame | None = None) -> pd.DataFrame:
    """Generation tasks: one row per algorithm, model set, hyperparameters and framework, medians over
    the measured repetitions: batch size and new tokens, time to first token (the prefill), one decode
    step's p50/p90/p99 (each repetition's percentile over its steps), tokens/s of decode, of the whole
    generation and of the prefill (prompt tokens read), the held-out perplexity, the peak resident set,
    each Rust side's token agreement with the Python side (the comparisons' `generate` row) and the
    BLEU of its greedy output against the Python side's (sacrebleu, on token ids: 1 when identical)."""
    if "time_decode_p50" not in table:
        return pd.DataFrame()
    ok = table[(table["status"] == "ok") & table["time_decode_p50"].notna()]
    keys = ["task", "algorithm", "dataset", "params", "language", "framework"]
    rows = []
    for key, group in ok.groupby(keys, dropna=False):
        params = json.loads(key[3])
        row = dict(zip(keys, key, strict=True)) | {"batch": params.get("batch_size"),
                                                   "new tokens": params.get("max_new_tokens"),
                                                   "repetitions": len(group),
                                                   "TTFT ms": 1e3 * float(group["time_prefill"].median())}
        for q in (50, 90, 99):
            row[f"decode p{q} ms"] = 1e3 * float(group[f"time_decode_p{q}"].median())
        for column, label in LANGUAGE_MODELS.items():
            if column in group:
                row[label] = float(group[column].median()) if group[column].notna().any() else None
        python = ok[(ok["language"] == "python") & (ok["task"] == key[0]) & (ok["algorithm"] == key[1])
                    & (ok["dataset"] == key[2]) & (ok["params"] == key[3])]
        compared = judging_kind(key[0], key[1], LoadReport()) not in UNCOMPARED_KINDS  # sampled: not compared
        row["greedy BLEU vs Python"] = greedy_bleu(python, group) if key[4] == "rust" and len(python) and compared \
            else None
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    if comparisons is not None and not comparisons.empty and "agreement" in comparisons:
        generate = comparisons[comparisons["phase"] == "generate"]
        agreement = {(r.task, r.algorithm, r.dataset, r.params, r.rust_framework): r.agreement
                     for r in generate.itertuples()}
        out["token agreement"] = [agreement.get((r.task, r.algorithm, r.dataset, r.params, r.framework))
                                  for r in out.itertuples()]
    out["params"] = param_labels(out)
    return out


ENCODERS = {"throughput_forward_samples_per_s": "sequences/s", "peak_rss_mb": "peak RSS MiB"}


def encoders(table: pd.DataFrame, comparisons: pd.DataFrame | None = None) -> pd.DataFrame:
    """Encoding tasks (mlbench.encoding): one row per head, set, hyperparameters and framework, medians
    over the measured repetitions: batch size and sequence length, the forward pass's latency and
    sequences/s, the tokenisation's latency (a set with sentences), the peak resident set, and each
    Rust side's output distance from the Python side's and agreement (the comparisons' `forward` row)."""
    if "time_forward" not in table:
        return pd.DataFrame()
    ok = table[(table["status"] == "ok") & table["time_forward"].notna()]
    keys = ["task", "algorithm", "dataset", "params", "language", "framework"]
    rows = []
    for key, group in ok.groupby(keys, dropna=False):
        params = json.loads(key[3])
        row = dict(zip(keys, key, strict=True)) | {
            "batch": params.get("batch_size"), "sequence length": params.get("sequence_length"),
            "repetitions": len(group), "forward ms": 1e3 * float(group["time_forward"].median())}
        if "time_tokenize" in group and group["time_tokenize"].notna().any():
            row["tokenize ms"] = 1e3 * float(group["time_tokenize"].median())
        for column, label in ENCODERS.items():
            if column in group:
                row[label] = float(group[column].median()) if group[column].notna().any() else None
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    if comparisons is not None and not comparisons.empty and "agreement" in comparisons:
        forward = comparisons[comparisons["phase"] == "forward"]
        by_key = {(r.task, r.algorithm, r.dataset, r.params, r.rust_framework): r for r in forward.itertuples()}
        found = [by_key.get((r.task, r.algorithm, r.dataset, r.params, r.framework)) for r in out.itertuples()]
        out["output distance vs Python"] = [None if r is None else r.quality_rust for r in found]
        out["agreement"] = [None if r is None else r.agreement for r in found]
    out["params"] = param_labels(out)
    return out
