"""The A/A noise floor: one implementation against itself, through the same machinery as a run.

`mlbench noise-floor MATRICES --hw HW` runs every job with twice its processes, even process
indices forming side A and odd ones side B, interleaved exactly as a real comparison's sides are.
Both sides are the same code on the same data, so every `faster` or `slower` verdict is false.
Per task it writes to the run folder's noise_floor.json:
- `false_share`: the share of comparisons with a false (non-equivalent, non-inconclusive) verdict;
- `floor`: the smallest ratio this machine resolves with this design: the median over the task's
  comparisons of the spurious difference between identical sides, exp(|log ratio|) - 1 (half of
  the A/A comparisons differ by more). Later runs on this profile judge with m = max(matrix
  margin, floor), and say so beside every ratio. The floor shrinks with more processes per side:
  measure it with the processes of the runs it will judge (`make noise-floor ARGS="--processes 5"`);
- `ci_excursion` (median of max(ci_high, 1/ci_low) - 1) and `p90` (90th percentile of the spurious
  difference), for reading only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from mlbench.errors import UsageError
from mlbench.paths import ROOT

FILE = "noise_floor.json"
FALSE_VERDICTS = ("faster", "slower")


def default_folder(hardware: str) -> Path:
    return ROOT / "results" / f"noise-floor-{hardware}"


def read_floor(hardware: str, path: Path | None = None) -> dict[str, Any] | None:
    """The noise floor measured for a hardware profile, or None if none was measured."""
    file = path or default_folder(hardware) / FILE
    if not file.is_file():
        return None
    try:
        floor = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"{file}: corrupt noise floor: {exc.msg} at line {exc.lineno}") from None
    if floor.get("hardware_profile") != hardware:
        return None
    return floor | {"path": str(file)}


def ci_excursion(row: Any) -> float:
    return max(row.ci_high, 1 / row.ci_low) - 1 if row.ci_low > 0 else math.nan


def spurious(ratio: float) -> float:
    """How far an A/A ratio is from 1, the same either way: 1.1 and 1/1.1 both give 0.1."""
    return math.expm1(abs(math.log(ratio))) if ratio > 0 else math.nan


def summary_row(task: str, phase: str, group: pd.DataFrame) -> dict[str, Any]:
    cvs = pd.concat([group["cv_python"], group["cv_rust"]])
    process_cvs = pd.concat([group["process_cv_python"], group["process_cv_rust"]])
    return {"task": task, "phase": phase, "comparisons": len(group), "false_verdicts": int(group["false"].sum()),
            "false_share": float(group["false"].mean()), "floor": float(group["spurious"].median()),
            "p90": float(group["spurious"].quantile(0.9)), "ci_excursion": float(group["ci_excursion"].median()),
            "median_process_cv": float(process_cvs.median()), "median_cv": float(cvs.median())}


def summarize(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Per task and phase, per task over its phases, and overall: comparisons, false verdicts,
    floor, and the median per-side CVs (between processes, and between repetitions)."""
    if comparisons.empty:
        return pd.DataFrame()
    frame = comparisons.assign(false=comparisons["verdict"].isin(FALSE_VERDICTS),
                               spurious=comparisons["ratio"].map(spurious),
                               ci_excursion=[ci_excursion(r) for r in comparisons.itertuples()])
    rows = [summary_row(task, phase, group) for (task, phase), group in frame.groupby(["task", "phase"])]
    rows += [summary_row(task, "all", group) for task, group in frame.groupby("task")]
    rows.append(summary_row("all", "all", frame))
    return pd.DataFrame(rows)


def entry(row: Any) -> dict[str, Any]:
    return {"comparisons": int(row.comparisons), "false_verdicts": int(row.false_verdicts),
            "false_share": float(row.false_share), "floor": float(row.floor), "p90": float(row.p90),
            "ci_excursion": float(row.ci_excursion)}


def write(run: Path, hardware: str, summary: pd.DataFrame, meta: dict[str, Any]) -> Path:
    """noise_floor.json in the run folder: per task (over its phases) the floor and false share."""
    per_task = summary[(summary["phase"] == "all") & (summary["task"] != "all")]
    overall = summary[summary["task"] == "all"].iloc[0]
    floor = {"hardware_profile": hardware, "measured_at": meta.get("written_at"), "run": str(run),
             "order": meta.get("order"), "git_commit": meta.get("git_commit"),
             "processes_per_side": meta.get("processes_per_side"),
             "tasks": {r.task: entry(r) for r in per_task.itertuples()}, "overall": entry(overall)}
    path = run / FILE
    path.write_text(json.dumps(floor, indent=2) + "\n")
    return path


def lines(summary: pd.DataFrame) -> list[str]:
    out = [f"{'task':<12}{'phase':<9}{'comparisons':>12}{'false':>7}{'share':>8}{'floor m':>9}{'p90':>7}"
           f"{'CI excursion':>13}{'process CV':>11}{'rep. CV':>9}"]
    for r in summary.itertuples():
        out.append(f"{r.task:<12}{r.phase:<9}{r.comparisons:>12}{r.false_verdicts:>7}{r.false_share:>8.1%}"
                   f"{r.floor:>9.3f}{r.p90:>7.3f}{r.ci_excursion:>13.3f}{r.median_process_cv:>11.3f}"
                   f"{r.median_cv:>9.3f}")
    return out
