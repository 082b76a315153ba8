"""`mlbench run`: validate everything, expand, schedule through an executor, collect, resume."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from mlbench import datasets as ds
from mlbench import envinfo, records
from mlbench.config import Job, expand_matrix, load_hardware, load_matrix, load_task_spec
from mlbench.errors import UsageError
from mlbench.evaluate import EvaluationError, Judged, evaluate
from mlbench.executors import EXECUTORS, Executor, Launch, LocalExecutor, Outcome
from mlbench.paths import DATASETS, ROOT, RUST_TARGET

STDERR_TAIL_LINES = 20
KILLED_BY_SIGKILL = -9


@dataclass
class RunOptions:
    matrices: list[Path]
    hardware: str
    languages: list[str]
    out: Path
    resume: bool = False
    overwrite: bool = False
    timeout_s: float | None = None
    executor: str = "local"
    jobs: int = 1
    partition: str | None = None
    max_parallel: int = 1
    slurm_opts: list[str] = field(default_factory=list)
    datasets_dir: Path = DATASETS


@dataclass
class Summary:
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    skipped_jobs: int = 0


def make_executor(options: RunOptions) -> Executor:
    """The executor behind `--executor`; each gets the same launches and yields the same outcomes."""
    if options.executor == "local":
        return LocalExecutor(jobs=options.jobs)
    from mlbench.slurm import SlurmExecutor

    extra = []
    for option in options.slurm_opts:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise UsageError(f"--slurm-opt: expected KEY=VALUE (e.g. account=ml), got {option!r}")
        extra.append(f"--{key.lstrip('-')}={value}")
    return SlurmExecutor(folder=options.out.resolve() / "slurm", partition=options.partition,
                         max_parallel=options.max_parallel, resources=load_hardware(options.hardware).slurm,
                         extra=extra)


def plan(options: RunOptions) -> tuple[list[Job], list[str]]:
    """Validate every matrix before anything runs; return the jobs and notes."""
    hardware = load_hardware(options.hardware)
    for language in options.languages:
        if language not in ("python", "rust"):
            raise UsageError(f"--langs: unknown language {language!r} (known: python, rust)")
    jobs: list[Job] = []
    notes: list[str] = []
    run_name = options.out.name
    for path in matrix_files(options.matrices):
        matrix_jobs, matrix_notes = expand_matrix(path, hardware, options.languages, run_name,
                                                  options.out, options.datasets_dir)
        jobs += matrix_jobs
        notes += matrix_notes
    if options.timeout_s is not None:
        jobs = [Job(**(j.to_dict() | {"timeout_s": options.timeout_s, "job_id": ""})) for j in jobs]
    ids = Counter(j.job_id for j in jobs)
    if duplicated := [i for i, n in ids.items() if n > 1]:
        raise UsageError(f"the matrices define the same job more than once ({len(duplicated)} duplicates)")
    for job in jobs:
        command(job)  # fails early, with a clear line, if a task program is missing
    return jobs, notes


def matrix_files(paths: list[Path]) -> list[Path]:
    """Matrix files as given, with a folder standing for every *.yaml in it."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.yaml"))
            if not found:
                raise UsageError(f"{path}: folder holds no *.yaml matrix")
            files += found
        else:
            files.append(path)
    return files


def command(job: Job) -> list[str]:
    spec = load_task_spec(job.task)
    if job.language == "python":
        return [sys.executable, str(ROOT / spec.python["script"])]
    binary = RUST_TARGET / spec.rust["binary"]  # an absolute path (test fixtures) stays as it is
    if not binary.exists():
        raise UsageError(f"Rust binary {binary} is missing: run `make build` first")
    return [str(binary)]


def launch_for(job: Job, out: Path) -> Launch:
    job_file = out / "jobs" / f"{job.job_id}.yaml"
    raw = out / "raw" / f"{job.job_id}.jsonl"
    raw.unlink(missing_ok=True)
    threads = str(job.threads)
    env = os.environ | {k: threads for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                            "RAYON_NUM_THREADS")}
    env["MLBENCH_GIT_COMMIT"] = envinfo.git_commit() or ""
    return Launch(job, [*command(job), "--config", str(job_file), "--out", str(raw)], env, raw,
                  out / "logs" / f"{job.job_id}.out", out / "logs" / f"{job.job_id}.err")


def is_complete(job: Job, job_records: list[dict[str, Any]]) -> bool:
    """Complete: every repetition `ok`, or the task said `unsupported`. Failed jobs run again."""
    if any(r.get("status") == "unsupported" for r in job_records):
        return True
    done = {r.get("repetition") for r in job_records if r.get("status") == "ok"}
    return done == set(range(job.n_records)) and len(job_records) == job.n_records


def prepare_output(options: RunOptions, jobs: list[Job]) -> list[Job]:
    """Create the run folder; on resume, keep complete jobs' records and return the jobs still to run."""
    out = options.out
    records_path = out / "records.jsonl"
    if records_path.exists() and not (options.resume or options.overwrite):
        raise UsageError(f"{records_path} exists: pass --resume to continue it or --overwrite to start over")
    if options.overwrite and out.exists():
        shutil.rmtree(out)
    for sub in ("jobs", "logs", "raw", "predictions"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    content = records.read_jsonl(records_path)
    if content.bad_lines:
        print(f"{records_path}: dropping {len(content.bad_lines)} truncated line(s) "
              f"{content.bad_lines[:5]} from an interrupted run", file=sys.stderr)
    by_job: dict[str, list[dict[str, Any]]] = {}
    for record in content.records:
        by_job.setdefault(record.get("job_id", ""), []).append(record)
    complete = {j.job_id for j in jobs if is_complete(j, by_job.get(j.job_id, []))}
    kept = [r for r in content.records if r.get("job_id") in complete]
    if content.bad_lines or len(kept) != len(content.records):
        records.rewrite(records_path, kept)
    records_path.touch()
    for job in jobs:
        (out / "jobs" / f"{job.job_id}.yaml").write_text(yaml.safe_dump(job.to_dict(), sort_keys=False))
    return [j for j in jobs if j.job_id not in complete]


def write_run_meta(options: RunOptions) -> None:
    """results/NAME/meta.json: how the run was asked for, and per-task quality tolerances for stats."""
    tolerances = {}
    for path in matrix_files(options.matrices):
        matrix, spec = load_matrix(path)
        tolerance = matrix.get("quality_tolerance", spec.quality_tolerance)
        if tolerance is not None:
            tolerances[spec.task] = tolerance
    meta = {"matrices": [str(p) for p in matrix_files(options.matrices)], "hardware_profile": options.hardware,
            "languages": options.languages, "executor": options.executor, "jobs": options.jobs,
            "partition": options.partition, "max_parallel": options.max_parallel, "slurm_opts": options.slurm_opts,
            "git_commit": envinfo.git_commit(), "written_at": records.utc_now(),
            "quality_tolerance": tolerances}
    (options.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def stderr_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-STDERR_TAIL_LINES:])


def failure(outcome: Outcome) -> tuple[str, str] | None:
    """(status, error) for an outcome that did not end cleanly, else None."""
    tail = stderr_tail(outcome.launch.stderr)
    if outcome.timed_out:
        return "timeout", f"killed after exceeding timeout_s={outcome.launch.job.timeout_s:g}\n{tail}".strip()
    if outcome.returncode == KILLED_BY_SIGKILL:
        return "oom", f"killed by SIGKILL (most likely the kernel's out-of-memory killer)\n{tail}".strip()
    if outcome.returncode is None:
        return "failed", f"{outcome.note or 'no exit status'}\n{tail}".strip()
    if outcome.returncode != 0:
        return "failed", f"exit code {outcome.returncode}\n{tail}".strip()
    return None


def judged(record: dict[str, Any], job: Job, split: ds.Split | None) -> dict[str, Any]:
    """Add the shared evaluator's metrics to a task record that saved predictions."""
    if record.get("status") != "ok" or not record.get("predictions"):
        return record
    try:
        assert split is not None
        case = Judged(X_train=split.X_train, y_train=split.y_train, y_test=split.y_test,
                      predictions=np.load(record["predictions"]),
                      scores=np.load(record["scores"]) if record.get("scores") else None)
        kind = load_task_spec(job.task).kind_of(job.algorithm)
        record["metrics"] = evaluate(kind, case) | record["metrics"]
    except (OSError, ValueError, EvaluationError) as exc:
        record["status"], record["error"] = "failed", f"predictions could not be judged: {exc}"
    return record


def relative_predictions(record: dict[str, Any], launch: Launch) -> dict[str, Any]:
    """Store output paths relative to the run folder, so a run folder can be moved."""
    run_folder = launch.raw_records.parent.parent
    for key in ("predictions", "scores"):
        if record.get(key):
            record[key] = os.path.relpath(record[key], run_folder)
    return record


def failure_record(job: Job, repetition: int, status: str, error: str) -> dict[str, Any]:
    digest = ds.digest(job.dataset, Path(job.datasets_dir)) if ds.is_prepared(
        job.dataset, Path(job.datasets_dir)) else None
    return records.unmeasured(job, repetition, None, digest, status, error, envinfo.capture())


def collect(outcome: Outcome) -> list[dict[str, Any]]:
    """The job's records: the task's own (judged), plus one runner-written record if it failed."""
    job = outcome.launch.job
    content = records.read_jsonl(outcome.launch.raw_records)
    split = None
    if any(r.get("predictions") for r in content.records):
        split = ds.load_split(job.dataset, Path(job.datasets_dir))
    task_records = [relative_predictions(judged(r, job, split), outcome.launch)
                    for r in content.records if r.get("job_id") == job.job_id]
    problem = failure(outcome)
    if problem is None and content.bad_lines:
        problem = ("failed", f"task wrote {len(content.bad_lines)} malformed record line(s)")
    if problem is None and not task_records:
        problem = ("failed", "task exited 0 but wrote no records")
    if problem is not None:
        status, error = problem
        next_repetition = len(task_records)
        task_records.append(failure_record(job, next_repetition, status, error))
    return task_records


def run(options: RunOptions) -> Summary:
    if options.executor not in EXECUTORS:
        raise UsageError(f"--executor: unknown executor {options.executor!r} (known: {', '.join(EXECUTORS)})")
    if options.jobs < 1:
        raise UsageError("--jobs: must be at least 1")
    jobs, notes = plan(options)
    for note in notes:
        print(note, file=sys.stderr)
    executor = make_executor(options)
    if options.jobs > 1:
        print(f"warning: --jobs {options.jobs} runs jobs side by side; their timings distort each other. "
              "Use it for correctness runs, not for numbers you report.", file=sys.stderr)
    pending = prepare_output(options, jobs)
    write_run_meta(options)
    summary = Summary(skipped_jobs=len(jobs) - len(pending))
    if summary.skipped_jobs:
        print(f"resume: {summary.skipped_jobs} of {len(jobs)} jobs already complete", file=sys.stderr)
    launches = [launch_for(job, options.out) for job in pending]
    records_path = options.out / "records.jsonl"
    with tqdm(total=len(launches), unit="job", desc=options.out.name, file=sys.stderr,
              disable=None) as bar:
        for outcome in executor.run(launches):
            job_records = collect(outcome)
            records.append_many(records_path, job_records)
            for record in job_records:
                summary.statuses[record["status"]] += 1
                if record["status"] not in ("ok", "unsupported"):
                    first_line = (record["error"] or "").splitlines()[0]
                    summary.failures.append(f"{outcome.launch.job.label}: {record['status']}: {first_line}")
            bar.set_postfix_str(outcome.launch.job.label[-60:])
            bar.update()
    return summary
