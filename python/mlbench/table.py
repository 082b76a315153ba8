"""The terminal comparison: mlbench.stats rendered as a fixed-width table, for users without a notebook."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pandas as pd

from mlbench import stats


def number(value: float, spec: str = ".3g") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def chosen_phase(comparisons: pd.DataFrame, phase: str | None) -> pd.DataFrame:
    """`headline`: each task's main phase (fit for classical, train for training tasks, step for env_steps)."""
    if phase in (None, "all"):
        return comparisons
    if phase == "headline":
        return comparisons[comparisons["phase"].isin(stats.HEADLINE_PHASES)]
    return comparisons[comparisons["phase"] == phase]


def comparison_lines(comparisons: pd.DataFrame, phase: str | None = "headline") -> list[str]:
    if comparisons.empty:
        return ["no comparison: no algorithm has ok records in both languages"]
    rows = chosen_phase(comparisons, phase)
    rows = rows.assign(label=stats.param_labels(rows))
    header = (f"{'task':<12}{'algorithm':<17}{'dataset':<25}{'params':<27}{'rust':<10}{'phase':<8}{'procs':>6} "
              f"{'need':>5} {'py median s':>11} {'rs median s':>11} {'rs/py':>7} {'95% CI':>15} {'±m':>5} "
              f"{'p Holm':>8} {'quality py / rs':>30} {'agree':>6}  verdict")
    lines = [header, "-" * len(header)]
    for r in rows.itertuples():
        shape = ".1e" if r.quality_metric in stats.CROSS_SIDE_METRICS else ".5f"  # a distance near 1e-7
        quality = f"{r.quality_metric} {number(r.quality_python, shape)} / {number(r.quality_rust, shape)}"
        ci = f"[{number(r.ci_low)}, {number(r.ci_high)}]"
        procs = f"{r.processes_python}/{r.processes_rust}"
        lines.append(
            f"{r.task[:11]:<12}{r.algorithm[:16]:<17}{r.dataset[:24]:<25}{r.label[:26]:<27}{r.rust_framework[:9]:<10}"
            f"{r.phase[:7]:<8}{procs:>6} {number(r.processes_needed, '.0f'):>5} {number(r.median_python):>11} "
            f"{number(r.median_rust):>11} {number(r.ratio):>7} {ci:>15} {r.margin:>5.0%} {number(r.p_holm, '.2g'):>8} "
            f"{quality:>30} {number(r.agreement, '.3f'):>6}  {r.verdict}"
            + (f"  ({r.notes})" if r.notes else ""))
    return lines


def summary_lines(summary: pd.DataFrame) -> list[str]:
    lines = ["geometric-mean Rust/Python time ratio (< 1: Rust faster), quality mismatches left out; verdicts are "
             "Rust's, against the band [1/(1+m), 1+m]:"]
    for r in summary.itertuples():
        lines.append(f"  {r.scope:<10} {r.phase:<8} {number(r.geomean_ratio)} [{number(r.ci_low)}, "
                     f"{number(r.ci_high)}]  over {r.comparisons}: {r.faster} faster, {r.equivalent} equivalent, "
                     f"{r.inconclusive} inconclusive, {r.slower} slower, {r.quality_mismatch} quality mismatch"
                     + (f", {r.insufficient_data} insufficient data" if r.insufficient_data else ""))
    return lines


def report(paths: list[Path], phase: str | None = "headline") -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table, loaded = stats.load(paths)
    lines = [f"warning: {w.message}" for w in caught]
    if table.empty:
        return [*lines, "no measured records"]
    comparisons = stats.compare(table, loaded, phase=phase)
    if loaded.disturbed:
        lines.append(f"{loaded.disturbed} repetition(s) measured while the task's threads exceeded the idle cores: "
                     "left out of the verdicts below")
    lines += comparison_lines(comparisons, phase)
    if not comparisons.empty:
        lines += ["", *summary_lines(stats.summarize(chosen_phase(comparisons, phase)))]
    problems = stats.problems(table)
    if not problems.empty:
        lines += ["", "not ok:"]
        lines += [f"  {p.task}/{p.algorithm} {p.language}:{p.framework}: {p.status} in {p.jobs} job(s) "
                  f"({p.datasets}): {p.reason}" for p in problems.itertuples()]
    return lines
