"""Analysis at scale: a synthetic run the size of the full classical grid, then `mlbench compare` and
`mlbench report` on it, timed.

    .venv/bin/python benchmarks/analysis_scale.py [--out results/scale] [--skip-report]

It expands the shipped matrices (configs/classical by default) exactly as `mlbench run` would,
and writes for every job, process and repetition (warm-ups included) a record of schema 3 with
made-up timings (log-normal around a per-job base, Rust a little faster or slower per job), the
metrics of the task's kind and a predictions artifact (an .npy of the test-set size, as a real run
writes), plus the run's meta.json. No task program runs, so the file takes seconds, not the
~40 CPU-hours of the real grid. Then it times the two analysis commands as a user runs them and
prints wall times and the HTML's size. A benchmark, not a test: the issue's targets (compare at
most 30 s, report at most 2 minutes and 10 MB) are read off its output.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from mlbench import datasets as ds  # noqa: E402
from mlbench import records, runner  # noqa: E402
from mlbench.config import expand_matrix, load_hardware, load_task_spec  # noqa: E402
from mlbench.paths import DATASETS  # noqa: E402

METRICS = {"regression": "r2", "classification": "accuracy", "clustering": "adjusted_rand"}


def job_rng(job_id: str) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(job_id.encode()).hexdigest()[:8], 16))


def generate(out: Path, matrices: list[Path], n_test: int) -> int:
    """Write the synthetic run into `out`; returns the number of records."""
    if out.exists():
        shutil.rmtree(out)
    (out / "predictions").mkdir(parents=True)
    options = runner.RunOptions(matrices=matrices, hardware="cpu", languages=["python", "rust"], out=out,
                                use_floor=False)
    runner.write_run_meta(options)
    hardware = load_hardware("cpu")
    count = 0
    with (out / "records.jsonl").open("w") as f:
        for matrix in runner.matrix_files(matrices):
            jobs, _ = expand_matrix(matrix, hardware, ["python", "rust"], out.name, out, DATASETS)
            for job in jobs:
                kind = load_task_spec(job.task).kind_of(job.algorithm)
                pair = job_rng(f"{job.task}{job.algorithm}{job.dataset}{json.dumps(job.hyperparameters)}")
                base = float(np.exp(pair.uniform(np.log(1e-4), np.log(2.0))))
                rust_factor = float(np.exp(pair.normal(0, 0.5)))
                factor = rust_factor if job.language == "rust" else 1.0
                quality = float(pair.uniform(0.5, 0.99))  # the same on both sides: no quality mismatch
                labels = pair.integers(0, 3, n_test).astype(np.float64)  # both sides agree
                rng = job_rng(job.job_id)
                for process in range(job.processes):
                    process_shift = float(np.exp(rng.normal(0, 0.03)))
                    for repetition in range(job.n_records):
                        record = records.identity(job, process, repetition, "0.0", "0" * 64)
                        fit = base * factor * process_shift * float(np.exp(rng.normal(0, 0.05)))
                        name = f"{job.job_id}-{job.language}-p{process}-{repetition}.predictions.npy"
                        np.save(out / "predictions" / name, labels)
                        record.update({
                            "timings_s": {"fit": fit, "predict": fit / 10},
                            "inner_loops": {"fit": 1, "predict": 1},
                            "process_timings_s": {"startup": 0.05, "load": 0.01},
                            "counts": {"fit": 1000, "predict": n_test},
                            "throughput": {"fit_samples_per_s": 1000 / fit, "predict_samples_per_s": n_test * 10 / fit},
                            "metrics": {METRICS[kind]: quality + float(rng.normal(0, 1e-4))},
                            "artifacts": {"predictions": f"predictions/{name}"},
                            "solver": {"name": "synthetic", "stopping_rule": "none", "n_iter": None},
                            "resources": {"peak_rss_mb": 200.0 + rng.uniform(0, 50), "cpu_time_s": fit,
                                          "rss_start_mb": 190.0},
                            "status": "ok", "error": None,
                            "env": {"cpu": "synthetic", "language": job.language},
                            "host": {"loadavg_before": 0.1, "loadavg_after": 0.1, "other_busy_cores": 0.0,
                                     "idle_cores": 2.0, "disturbed": False},
                        })
                        f.write(json.dumps(record, separators=(",", ":")) + "\n")
                        count += 1
    return count


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "scale")
    parser.add_argument("--matrices", type=Path, nargs="+", default=[ROOT / "configs" / "classical"])
    parser.add_argument("--n-test", type=int, default=150, help="test-set size of each predictions file")
    parser.add_argument("--skip-report", action="store_true")
    args = parser.parse_args()
    for matrix in runner.matrix_files(args.matrices):
        from mlbench.config import load_matrix

        for name in load_matrix(matrix)[0]["datasets"]:
            if not ds.is_prepared(name, DATASETS):
                ds.prepare([name], DATASETS)
    start = time.perf_counter()
    n = generate(args.out, args.matrices, args.n_test)
    print(f"generated {n} records in {time.perf_counter() - start:.1f} s -> {args.out}")
    python = sys.executable
    seconds, result = timed([python, "-m", "mlbench", "compare", str(args.out)])
    lines = result.stdout.count("\n")
    print(f"mlbench compare: {seconds:.1f} s (exit {result.returncode}, {lines} lines)")
    if result.returncode != 0:
        print(result.stderr[-2000:])
    if not args.skip_report:
        html = args.out / "report.html"
        seconds, result = timed([python, "-m", "mlbench", "report", str(args.out), "--output", str(html)])
        size = html.stat().st_size / 2**20 if html.exists() else float("nan")
        print(f"mlbench report: {seconds:.1f} s (exit {result.returncode}), HTML {size:.1f} MiB")
        if result.returncode != 0:
            print(result.stderr[-2000:])


if __name__ == "__main__":
    main()
