"""Estimate a deep-learning grid's cost on hardware it has not run on (README: "On one GPU").

Counts what the grid trains (configurations, trainings, optimizer steps, FLOPs from the tasks' own
counts, mlbench.flops) under a hardware profile's batch sizes, and prices each training step as
`--step-ms` of fixed cost (launches and host overhead, the floor a small net never goes below) plus
its FLOPs at `--tflops`, and each task process at `--process-s` (start, data upload, inference
timing). A model with stated inputs, not a measurement:

    .venv/bin/python benchmarks/grid_estimate.py configs/deep_learning/cnn.yaml --hw gpu

`--calibrate RUN` prices the grid instead from a finished run's own records (e.g. the small grid's,
`results/cnn_small-cpu`): each side's measured training and evaluation GFLOP/s for that algorithm,
and its measured per-process start, load and build, so each side gets its own hours. The rates come
from the run's shapes and batch sizes, and a CPU's GFLOP/s moves with both, so the figure is a model
too: checked against single trainings at shapes the small grid does not use (README, "The CNN
grid"), it was within ~26% for ResNet-18, 7-27% low for LeNet at batch 16, 2.0-2.5x high for
PyTorch's and tch's MobileNetV2 and 1.3-1.7x high for two bidirectional layers of 128 RNN units:

    .venv/bin/python benchmarks/grid_estimate.py configs/deep_learning/cnn.yaml --hw cpu \
        --calibrate results/cnn_small-cpu
"""

from __future__ import annotations

import argparse
import importlib
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "python")]

from mlbench import datasets as ds  # noqa: E402
from mlbench.config import excluded, expand_grid, load_hardware, load_matrix, matrix_defaults  # noqa: E402
from mlbench.records import read_jsonl  # noqa: E402
from mlbench.training import shape_of  # noqa: E402

Cell = tuple[str, str, dict[str, Any], list[tuple[dict[str, Any], dict[str, float]]]]


def configurations(matrix: dict[str, Any], spec: Any, task: Any, names: list[str], datasets: Path) -> Iterator[Cell]:
    """Each (algorithm, dataset) cell of the grid: the dataset's sizes, and each configuration the grid
    keeps (exclusions applied) with its FLOP counts (the task's own)."""
    for algorithm, grid in matrix["algorithms"].items():
        for dataset in grid.get("datasets", names):
            shape, size = shape_of(ds.read_meta(dataset, datasets)), ds.sizes(dataset, datasets)
            combos = [c for c in expand_grid(grid, spec.algorithms[algorithm])
                      if not excluded(algorithm, c, matrix.get("exclude", []))]
            yield algorithm, dataset, size, [(c, task.ALGORITHMS[algorithm].flops(c, shape)) for c in combos]


def measured_rates(run: Path) -> dict[tuple[str, str], dict[str, float]]:
    """Per (algorithm, side): median train/evaluate GFLOP/s and per-process fixed seconds of `run`."""
    path = run / "records.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path}: no records.jsonl (is {run} a finished run folder?)")
    samples: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    content = read_jsonl(path)
    if content.bad_lines:  # a truncated last line: a killed run
        print(f"{path}: skipped malformed line(s) {content.bad_lines}", file=sys.stderr)
    for record in content.records:
        if record.get("status") == "ok" and not record.get("warmup"):
            samples[(record["algorithm"], record["framework"])].append(record)
    rates = {}
    for key, records in samples.items():
        gflops = [r["throughput"].get("train_gflops") for r in records]
        evaluate = [r["throughput"].get("evaluate_gflops") for r in records]
        if not all(gflops):
            continue
        fixed = [sum((r.get("process_timings_s") or {}).values()) + r["timings_s"].get("build", 0.0)
                 for r in records]
        rates[key] = {"train_gflops": statistics.median(gflops),
                      "evaluate_gflops": statistics.median(evaluate) if all(evaluate) else math.inf,
                      "process_s": statistics.median(fixed)}
    if not rates:
        raise SystemExit(f"{path}: no ok record with train_gflops to calibrate from")
    return rates


def calibrated(matrix: dict[str, Any], spec: Any, task: Any, names: list[str], datasets: Path,
               rates: dict[tuple[str, str], dict[str, float]], run: Path) -> dict[str, float]:
    """Print the grid's hours per side, priced at `rates` (measured_rates), and return them."""
    trainings = matrix["processes"] * matrix["repetitions"]
    sides = sorted({side for _, side in rates})
    print(f"{trainings} trainings per job; rates measured in {run}")
    print(f"{'algorithm':<14} {'dataset':<22} {'configs':>7} " + " ".join(f"{s + ' h':>9}" for s in sides))
    totals = dict.fromkeys(sides, 0.0)
    configs = 0
    for algorithm, dataset, size, combos in configurations(matrix, spec, task, names, datasets):
        configs += len(combos)
        row = []
        for side in sides:
            rate = rates.get((algorithm, side))
            if rate is None:
                raise SystemExit(f"{run}: no ok {side} record of {algorithm} to calibrate from")
            seconds = 0.0
            for params, flops in combos:
                train = flops["train_per_sample"] * params["epochs"] * size["n_train"]
                evaluate = flops["forward_per_sample"] * params["epochs"] * (size["n_test"] or 0)
                seconds += (train / (rate["train_gflops"] * 1e9)
                            + evaluate / (rate["evaluate_gflops"] * 1e9)) * trainings
                seconds += matrix["processes"] * rate["process_s"]
            totals[side] += seconds / 3600
            row.append(f"{seconds / 3600:>9.2f}")
        print(f"{algorithm:<14} {dataset:<22} {len(combos):>7} " + " ".join(row))
    print(f"total: {configs} configurations, {configs * len(sides)} jobs, ~{sum(totals.values()):.1f} hours: "
          + ", ".join(f"{side} {hours:.1f}" for side, hours in totals.items()))
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("matrix", type=Path)
    parser.add_argument("--hw", default="gpu", help="hardware profile (default: gpu)")
    parser.add_argument("--datasets", type=Path, default=ROOT / "datasets")
    parser.add_argument("--step-ms", type=float, default=2.2,
                        help="fixed cost per training step (default 2.2: PyTorch's LeNet at batch 128 on an H200)")
    parser.add_argument("--tflops", type=float, default=20.0,
                        help="sustained float32 rate of the training FLOPs (default 20: ~30%% of an H100's "
                             "67 TFLOP/s IEEE float32, no TF32)")
    parser.add_argument("--process-s", type=float, default=10.0,
                        help="fixed cost per task process (default 10: the same H200 run took ~15 s a process, "
                             "~7 s of it training)")
    parser.add_argument("--frameworks", type=int, default=4, help="sides per configuration (default 4)")
    parser.add_argument("--calibrate", type=Path, metavar="RUN",
                        help="price each side at the GFLOP/s and process costs measured in this run folder")
    args = parser.parse_args()

    matrix, spec = load_matrix(args.matrix, load_hardware(args.hw))
    matrix = matrix_defaults() | matrix
    task = importlib.import_module(f"tasks.{spec.domain}.{spec.task}")
    names = list(matrix["datasets"]) + [n for n in matrix.get("optional_datasets", [])
                                        if ds.is_prepared(n, args.datasets)]
    if args.calibrate:
        calibrated(matrix, spec, task, names, args.datasets, measured_rates(args.calibrate), args.calibrate)
        return 0
    trainings_per_job = matrix["processes"] * matrix["repetitions"]
    print(f"{args.matrix} under {args.hw}: {trainings_per_job} trainings per job "
          f"({matrix['processes']} processes x {matrix['repetitions']} repetitions), {args.frameworks} sides; "
          f"{args.step_ms} ms per step + FLOPs at {args.tflops} TFLOP/s + {args.process_s} s per process")
    print(f"{'algorithm':<14} {'dataset':<22} {'configs':>7} {'steps/training':>15} {'TFLOP/training':>15} "
          f"{'hours (all sides)':>18}")
    total_configs = total_hours = 0.0
    for algorithm, dataset, size, combos in configurations(matrix, spec, task, names, args.datasets):
        n_train = size["n_train"]
        steps = flops = seconds = 0.0
        for params, counts in combos:
            n_steps = params["epochs"] * math.ceil(n_train / params["batch_size"])
            training_flops = counts["train_per_sample"] * params["epochs"] * n_train
            steps, flops = steps + n_steps, flops + training_flops
            seconds += (n_steps * args.step_ms / 1e3 + training_flops / (args.tflops * 1e12)) * trainings_per_job
            seconds += matrix["processes"] * args.process_s
        hours = seconds * args.frameworks / 3600
        total_configs, total_hours = total_configs + len(combos), total_hours + hours
        print(f"{algorithm:<14} {dataset:<22} {len(combos):>7} {steps / len(combos):>15.0f} "
              f"{flops / len(combos) / 1e12:>15.2f} {hours:>18.2f}")
    print(f"total: {total_configs:.0f} configurations, {total_configs * args.frameworks:.0f} jobs, "
          f"~{total_hours:.1f} hours")
    return 0


if __name__ == "__main__":
    sys.exit(main())
