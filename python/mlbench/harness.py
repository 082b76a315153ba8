"""The task side of the contract: `<task>.py --config JOB.yaml --out RECORDS.jsonl`.

A task file declares its algorithms; this module owns the loop, the clock, the records and the
errors. Mirrors rust/bench-core/src/harness.rs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlbench import datasets as ds
from mlbench import envinfo, records
from mlbench.config import Job, load_job
from mlbench.errors import UsageError
from mlbench.measure import PhaseTimer, cpu_time_s, peak_rss_mb, reset_peak_rss


class Estimator(Protocol):
    def fit(self, X: np.ndarray, y: np.ndarray) -> Any: ...
    def predict(self, X: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Solver:
    """What the fitted model says about how it stopped (the record's `solver` block)."""

    name: str
    stopping_rule: str
    n_iter: int | None = None


@dataclass(frozen=True)
class Supervised:
    """A fit/predict algorithm: build the estimator from hyperparameters and seed; describe its solver."""

    build: Callable[[dict[str, Any], int], Estimator]
    solver: Callable[[Any], Solver]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run one mlbench job and append its records.")
    parser.add_argument("--config", required=True, type=Path, help="job file (YAML) written by `mlbench run`")
    parser.add_argument("--out", required=True, type=Path, help="JSON Lines file to append records to")
    return parser.parse_args(argv)


def run_supervised(algorithms: dict[str, Supervised], framework_version: str, libraries: list[str],
                   argv: list[str] | None = None) -> None:
    """Entry point of a fit/predict task: exit 2 with one line on bad input."""
    args = parse_args(argv)
    try:
        job = load_job(args.config)
        if job.language != "python":
            raise UsageError(f"{args.config}: language: this is the Python task, job says {job.language!r}")
        if job.algorithm not in algorithms:
            raise UsageError(f"{args.config}: algorithm: {job.algorithm!r} is not implemented in Python")
        try:
            dataset_sha256 = ds.verify(job.dataset, Path(job.datasets_dir))
        except UsageError as exc:
            raise UsageError(f"{args.config}: dataset: {exc}") from None
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    from threadpoolctl import threadpool_limits

    env = envinfo.capture(libraries)
    with threadpool_limits(limits=job.threads):
        for repetition in range(job.n_records):
            record = records.identity(job, repetition, framework_version, dataset_sha256)
            record.update(measure_repetition(job, algorithms[job.algorithm], repetition))
            record["env"] = env
            records.append_line(args.out, record)


def measure_repetition(job: Job, algorithm: Supervised, repetition: int) -> dict[str, Any]:
    reset_peak_rss()
    cpu_start = cpu_time_s()
    timer = PhaseTimer()
    with timer.phase("load"):
        data = ds.load_split(job.dataset, Path(job.datasets_dir))
    estimator = algorithm.build(job.hyperparameters, job.seed + repetition)
    with timer.phase("fit"):
        estimator.fit(data.X_train, data.y_train)
    with timer.phase("predict"):
        predictions = estimator.predict(data.X_test)
    cpu = cpu_time_s() - cpu_start
    path = predictions_path(job, repetition)
    np.save(path, np.asarray(predictions, dtype=np.float64))
    solver = algorithm.solver(estimator)
    return {
        "timings_s": timer.timings_s,
        "throughput": {"predict_samples_per_s": len(data.X_test) / max(timer.timings_s["predict"], 1e-12)},
        "metrics": {},
        "predictions": str(path),
        "solver": {"name": solver.name, "stopping_rule": solver.stopping_rule, "n_iter": solver.n_iter},
        "resources": {"peak_rss_mb": peak_rss_mb(), "cpu_time_s": cpu},
        "status": "ok",
        "error": None,
    }


def predictions_path(job: Job, repetition: int) -> Path:
    folder = Path(job.predictions_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{job.job_id}-{job.language}-{repetition}.npy"
