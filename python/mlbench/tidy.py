"""The tidy table: one row per measured repetition, read from run folders or records.jsonl files,
with the views on it that need no statistics (memory, problems, environment). mlbench.stats compares
on top of it."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlbench.config import params_key
from mlbench.records import read_jsonl

KEYS = ["task", "domain", "algorithm", "dataset", "params", "hardware_profile"]


@dataclass
class LoadReport:
    """What `load` read and what it skipped."""

    files: list[str] = field(default_factory=list)
    records: int = 0
    warmups_excluded: int = 0
    malformed: list[tuple[str, int]] = field(default_factory=list)
    quality_tolerance: dict[str, float] = field(default_factory=dict)
    margin: dict[str, float] = field(default_factory=dict)  # per task, from the matrices
    judging: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # task -> algorithm -> kind...
    noise_floor: dict[str, float] = field(default_factory=dict)  # per task, from `mlbench noise-floor`
    mode: str = "run"  # "noise-floor": each job against itself, even processes side A, odd side B
    target_ci: float | None = None
    gemm_peak_gflops: float | None = None  # the machine's float32 GEMM peak (meta.json), for training runs
    disturbed: int = 0  # measured repetitions whose process ran with fewer idle cores than threads
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> sizes (meta.json)


def records_file(path: Path) -> Path:
    return path / "records.jsonl" if path.is_dir() else path


def flatten(record: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    row = {k: record.get(k) for k in ("run", "job_id", "repetition", "task", "domain", "language", "framework",
                                      "framework_version", "algorithm", "dataset", "hardware_profile", "device",
                                      "threads", "precision", "status", "error")}
    row["process"] = record.get("process", 0)
    row["params"] = params_key(record.get("hyperparameters", {}), record.get("cv_folds", 0))
    row.update({f"time_{k}": v for k, v in (record.get("timings_s") or {}).items()})
    row.update({f"time_{k}": v for k, v in (record.get("process_timings_s") or {}).items() if v is not None})
    row["disturbed"] = bool((record.get("host") or {}).get("disturbed", False))
    row.update({f"metric_{k}": v for k, v in (record.get("metrics") or {}).items()})
    resources = record.get("resources") or {}
    row["peak_rss_mb"] = resources.get("peak_rss_mb")
    row["rss_start_mb"] = resources.get("rss_start_mb")
    row["cpu_time_s"] = resources.get("cpu_time_s")
    artifacts = record.get("artifacts") or {}
    # what agreement compares: labels, an agent's actions, a rollout's returns, generated tokens, an
    # encoder's outputs
    predictions = (artifacts.get("predictions") or artifacts.get("actions") or artifacts.get("returns")
                   or artifacts.get("tokens") or artifacts.get("outputs"))
    row["predictions"] = str(run_dir / predictions) if predictions else None
    for name in ("returns", "episode_ends"):  # an agent's return curve (plots.return_curves)
        row[f"{name}_file"] = str(run_dir / artifacts[name]) if name in artifacts and "actions" in artifacts else None
    row["series"] = record.get("series")  # training tasks: per-epoch seconds, loss, test accuracy
    row.update({f"throughput_{k}": v for k, v in (record.get("throughput") or {}).items()})
    reached = record.get("time_to_accuracy") or {}
    row["tta_epochs"], row["tta_seconds"] = reached.get("epochs"), reached.get("seconds")
    for key in ("gpu_peak_mem_mb", "gpu_mem_used_peak_mb", "gpu_util_percent", "gpu_energy_j"):
        row[key] = resources.get(key)
    return row


def load(paths: Iterable[str | Path]) -> tuple[pd.DataFrame, LoadReport]:
    """Tidy table of measured repetitions (warm-ups excluded) from records.jsonl files or run folders.

    Malformed or truncated lines are skipped with a warning naming file and line, never fatal.
    A run folder's `meta.json` (written by `mlbench run`) supplies per-task quality tolerances,
    margins, the noise floor it was measured against and the run's mode.
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
        meta_path = file.parent / "meta.json"
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            report.quality_tolerance.update(meta.get("quality_tolerance", {}))
            report.margin.update(meta.get("margin", {}))
            for task, algorithms in (meta.get("judging") or {}).items():
                report.judging.setdefault(task, {}).update(algorithms)
            floors = (meta.get("noise_floor") or {}).get("tasks", {})
            report.noise_floor.update({task: entry["floor"] for task, entry in floors.items()})
            report.mode = meta.get("mode", report.mode)
            report.target_ci = meta.get("target_ci", report.target_ci)
            report.gemm_peak_gflops = (meta.get("gemm_peak") or {}).get("gflops", report.gemm_peak_gflops)
            report.datasets.update(meta.get("datasets") or {})
    report.records = len(rows)
    table = pd.DataFrame(rows)
    if not table.empty:
        table["unit"] = table["job_id"].astype(str) + ":" + table["process"].astype(str)  # one task process
        report.disturbed = int(table["disturbed"].sum())
        if report.mode == "noise-floor":  # the two sides of an A/A comparison: even and odd processes
            side = np.where(table["process"] % 2 == 0, "A", "B")
            table["framework"] = table["framework"] + " [" + side + "]"
    return table, report


def phases(table: pd.DataFrame) -> list[str]:
    return sorted(c.removeprefix("time_") for c in table.columns if c.startswith("time_"))


def memory(table: pd.DataFrame) -> pd.DataFrame:
    """Median peak RSS per comparison and framework, and (where records carry the RSS at the start of
    the repetition) the workload's increment over that baseline: the interpreter or runtime's own
    footprint is in the peak, not in the increment."""
    ok = table[table["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame()
    wide = ok.pivot_table(index=KEYS, columns="framework", values="peak_rss_mb", aggfunc="median")
    out = wide.rename(columns=lambda c: f"peak_rss_mb_{c}")
    if "rss_start_mb" in ok and ok["rss_start_mb"].notna().any():
        increment = ok.assign(increment=ok["peak_rss_mb"] - ok["rss_start_mb"]).pivot_table(
            index=KEYS, columns="framework", values="increment", aggfunc="median")
        out = out.join(increment.rename(columns=lambda c: f"increment_mb_{c}"))
    return out.reset_index()


# The deep-learning figures per architecture and framework (`deep_learning`): column -> its label.
DEEP_LEARNING = {"time_epoch_first": "first epoch s", "time_epoch_steady": "steady epoch s",
                 "throughput_train_samples_per_s": "train samples/s", "throughput_train_gflops": "train GFLOP/s",
                 "tta_epochs": "epochs to target", "tta_seconds": "seconds to target",
                 "throughput_evaluate_samples_per_s": "evaluate samples/s", "peak_rss_mb": "peak RSS MiB",
                 "gpu_mem_used_peak_mb": "device peak MiB (NVML)", "gpu_peak_mem_mb": "device peak MiB (framework)"}


def deep_learning(table: pd.DataFrame, gemm_peak_gflops: float | None = None) -> pd.DataFrame:
    """Training tasks: one row per architecture, dataset, hyperparameters and framework, the median over
    measured repetitions of each figure in DEEP_LEARNING, inference latency per batch size (ms), and
    the achieved training GFLOP/s as a share of the machine's GEMM peak where the run measured it."""
    ok = table[(table["status"] == "ok") & table.get("time_train", pd.Series(index=table.index)).notna()
               & (table["domain"] == "deep_learning")]
    if ok.empty:
        return pd.DataFrame()
    columns = [c for c in DEEP_LEARNING if c in ok and ok[c].notna().any()]
    latency = sorted((c for c in ok if c.startswith("time_infer_b") and ok[c].notna().any()),
                     key=lambda c: int(c.removeprefix("time_infer_b")))
    grouped = ok.groupby(["task", "algorithm", "dataset", "params", "framework"], dropna=False)
    out = grouped[columns + latency].median()
    out[latency] = out[latency] * 1e3
    if gemm_peak_gflops and "throughput_train_gflops" in out:
        out["train % of GEMM peak"] = 100 * out["throughput_train_gflops"] / gemm_peak_gflops
    names = DEEP_LEARNING | {c: f"infer b{c.removeprefix('time_infer_b')} ms" for c in latency}
    return out.rename(columns=names).reset_index()


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
