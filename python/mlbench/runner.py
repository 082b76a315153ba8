"""`mlbench run`: validate everything, expand, schedule through an executor, collect, resume."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mlbench import buildinfo, doctor, envinfo, folds, noise, records
from mlbench import datasets as ds
from mlbench.config import Job, expand_matrix, load_hardware, load_matrix, load_task_spec, matrix_defaults
from mlbench.errors import UsageError
from mlbench.evaluate import KINDS, EvaluationError, Judged, evaluate, evaluate_folds
from mlbench.executors import EXECUTORS, Executor, Launch, LocalExecutor, Outcome
from mlbench.paths import DATASETS, ROOT, RUST_TARGET
from mlbench.yamlio import dump_yaml

STDERR_TAIL_LINES = 20
KILLED_BY_SIGKILL = -9
ORDERS = ("interleaved", "grouped")
# Every task process gets the same glibc allocator settings, whatever its language: freed memory
# is kept (no trim) and blocks up to 32 MiB (glibc's largest allowed threshold) come from the heap,
# so a repetition reuses the pages the previous one touched instead of faulting them in again.
# Without this, Python's fits paid ~390 page faults per repetition that a steady loop does not.
GLIBC_TUNABLES = "glibc.malloc.trim_threshold=4294967296:glibc.malloc.mmap_threshold=33554432"


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
    order: str = "interleaved"  # or "grouped": each job's processes back to back (the old way)
    processes: int | None = None  # overrides the matrices' `processes`
    repetitions: int | None = None  # overrides the matrices' `repetitions` (a quick check, e.g. CI's smoke)
    target_ci: float | None = None  # adaptive: add processes until the CI's half-width is within this
    max_processes: int = 20
    noise_floor: bool = False  # A/A: each job runs 2 x processes, even ones side A, odd ones side B
    floor_file: Path | None = None  # the noise floor to judge against; None: this profile's default
    use_floor: bool = True
    watch_host: bool = True  # record the load around each process (and flag disturbed ones)
    frameworks: list[str] | None = None  # run only these frameworks (None: every framework of each task)
    force: bool = False  # run although the doctor found a failing check (recorded in meta.json)


@dataclass
class Summary:
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    disturbed: int = 0  # task processes that ran while their threads exceeded the idle cores


def make_executor(options: RunOptions) -> Executor:
    """The executor behind `--executor`; each gets the same launches and yields the same outcomes."""
    if options.executor == "local":
        return LocalExecutor(jobs=options.jobs, watch_host=options.watch_host)
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
    if options.frameworks is not None:
        jobs = only_frameworks(jobs, options.frameworks)
    if options.processes is not None and options.processes < 1:
        raise UsageError("--processes: must be at least 1")
    if options.repetitions is not None and options.repetitions < 1:
        raise UsageError("--repetitions: must be at least 1")
    jobs = [with_overrides(job, options) for job in jobs]
    ids = Counter(j.job_id for j in jobs)
    if duplicated := [i for i, n in ids.items() if n > 1]:
        raise UsageError(f"the matrices define the same job more than once ({len(duplicated)} duplicates)")
    for job in jobs:
        command(job)  # fails early, with a clear line, if a task program is missing
    if any(job.device == "cuda" for job in jobs):
        check_gpu(options.hardware)
    return jobs, notes


def only_frameworks(jobs: list[Job], frameworks: list[str]) -> list[Job]:
    """The jobs of the named frameworks; a name no matrix's task knows is an error, not an empty run."""
    known = sorted({job.framework for job in jobs})
    if unknown := [f for f in frameworks if f not in known]:
        raise UsageError(f"--frameworks: {', '.join(map(repr, unknown))} is not a framework of these matrices "
                         f"(known: {', '.join(known)})")
    return [job for job in jobs if job.framework in frameworks]


def check_gpu(profile: str) -> None:
    """HW=gpu runs nothing unless torch sees a CUDA device (every training side needs one)."""
    probed = doctor.cuda_probe()
    if isinstance(probed, str) or probed[0] in ("", "0"):
        raise UsageError(f"--hw {profile}: no CUDA device visible to torch (check `nvidia-smi` and the NVIDIA "
                         "driver); run with --hw cpu instead")


def with_overrides(job: Job, options: RunOptions) -> Job:
    """The job with the command line's --timeout, --processes and --repetitions; a noise floor
    doubles the processes (half of them are side A, half side B). None changes the job id."""
    changes: dict[str, Any] = {}
    if options.timeout_s is not None:
        changes["timeout_s"] = options.timeout_s
    if options.repetitions is not None and options.repetitions != job.repetitions:
        changes["repetitions"] = options.repetitions
    processes = (options.processes or job.processes) * (2 if options.noise_floor else 1)
    if processes != job.processes:
        changes["processes"] = processes
    return Job(**(job.to_dict() | changes | {"job_id": ""})) if changes else job


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
    binary = RUST_TARGET / spec.binary(job.framework)  # an absolute path (test fixtures) stays as it is
    if not binary.exists():
        raise UsageError(f"Rust binary {binary} is missing: run `make build` first")
    return [str(binary)]


def links_libtorch(job: Job) -> bool:
    """Whether the job's Rust binary is the one holding tch (its other arms link libtorch too)."""
    spec = load_task_spec(job.task)
    rust = spec.frameworks("rust")
    return job.language == "rust" and "tch" in rust and spec.binary(job.framework) == spec.binary("tch")


def torch_lib() -> str | None:
    """This Python's torch/lib: tch's binary loads the same libtorch as the PyTorch side, also where
    it was built elsewhere (its rpath names the build machine's venv). Found without importing torch."""
    import importlib.util

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    return str(lib) if lib.is_dir() else None


def cuda_lib() -> str | None:
    """The CUDA libraries of torch's wheels (nvidia/cu13/lib beside torch/): a candle `cuda` build
    needs cuBLAS, cuRAND, NVRTC and the runtime by their sonames (scripts/cuda-toolkit.sh)."""
    torch = torch_lib()
    lib = Path(torch).parent.parent / "nvidia" / "cu13" / "lib" if torch else None
    return str(lib) if lib and lib.is_dir() else None


@functools.cache
def links_cuda(binary: Path) -> bool:
    return buildinfo.links_cuda(binary)


def library_path(job: Job) -> list[str]:
    """What goes first on the job's LD_LIBRARY_PATH: this Python's libtorch for the binary holding
    tch, and torch's CUDA libraries for a Rust job on `cuda` or a binary linking candle's `cuda`
    build (cargo unifies features, so under HW=gpu the RL binaries link it too, for their CPU jobs)."""
    if job.language != "rust":
        return []
    binary = RUST_TARGET / load_task_spec(job.task).binary(job.framework)
    libs = [torch_lib() if links_libtorch(job) else None,
            cuda_lib() if job.device == "cuda" or links_cuda(binary) else None]
    return [lib for lib in libs if lib]


def launch_for(job: Job, process: int, out: Path) -> Launch:
    job_file = out / "jobs" / f"{job.job_id}.yaml"
    name = f"{job.job_id}-p{process}"
    raw = out / "raw" / f"{name}.jsonl"
    raw.unlink(missing_ok=True)
    threads = str(job.threads)
    env = os.environ | {k: threads for k in envinfo.THREAD_COUNT_VARIABLES}
    env["MLBENCH_GIT_COMMIT"] = envinfo.git_commit() or ""
    env["GLIBC_TUNABLES"] = GLIBC_TUNABLES
    if libs := library_path(job):
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [*libs, env.get("LD_LIBRARY_PATH")]))
    return Launch(job, [*command(job), "--config", str(job_file), "--out", str(raw), "--process", str(process)],
                  env, raw, out / "logs" / f"{name}.out", out / "logs" / f"{name}.err", process)


def said_unsupported(unit_records: list[dict[str, Any]]) -> bool:
    return any(r.get("status") == "unsupported" for r in unit_records)


def is_complete(job: Job, unit_records: list[dict[str, Any]]) -> bool:
    """A process is complete when every repetition is `ok`, or the task said `unsupported`.
    Failed processes run again."""
    if said_unsupported(unit_records):
        return True
    done = {r.get("repetition") for r in unit_records if r.get("status") == "ok"}
    return done == set(range(job.n_records)) and len(unit_records) == job.n_records


Unit = tuple[str, int]  # (job_id, process)


def comparison_key(job: Job) -> tuple[str, ...]:
    """Jobs that the statistics compare with each other: same work, different side."""
    return (job.task, job.algorithm, job.dataset, job.params_key, job.hardware_profile)


def schedule(jobs: list[Job], processes: dict[str, list[int]], order: str,
             noise_floor: bool = False) -> list[tuple[Job, int]]:
    """The order in which task processes run.

    `interleaved`: within each comparison the sides take turns, A B .. B A, round after round, so
    drift and neighbours hit every side alike (with `noise_floor`, a job's even processes form
    side A and its odd ones side B). `grouped`: each job's processes back to back, job after job.
    """
    if order == "grouped":
        return [(job, p) for job in jobs for p in processes[job.job_id]]
    groups: dict[tuple[str, ...], list[tuple[Job, list[int]]]] = {}
    for job in jobs:
        wanted = processes[job.job_id]
        sides = ([(job, [p for p in wanted if p % 2 == 0]), (job, [p for p in wanted if p % 2 == 1])]
                 if noise_floor else [(job, wanted)])
        groups.setdefault(comparison_key(job), []).extend(sides)
    planned: list[tuple[Job, int]] = []
    for sides in groups.values():
        for round_ in range(max(len(p) for _, p in sides)):
            for job, wanted in (sides if round_ % 2 == 0 else reversed(sides)):
                if round_ < len(wanted):
                    planned.append((job, wanted[round_]))
    return planned


def prepare_output(options: RunOptions, jobs: list[Job]) -> set[Unit]:
    """Create the run folder; on resume, keep complete processes' records and return those units."""
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
    by_unit: dict[Unit, list[dict[str, Any]]] = {}
    for record in content.records:
        by_unit.setdefault((record.get("job_id", ""), record.get("process", 0)), []).append(record)
    known = {j.job_id: j for j in jobs}
    complete = {unit for unit, unit_records in by_unit.items()
                if unit[0] in known and is_complete(known[unit[0]], unit_records)}
    unsupported = {job_id for (job_id, _), unit_records in by_unit.items() if said_unsupported(unit_records)}
    complete |= {(job.job_id, p) for job in jobs if job.job_id in unsupported for p in range(job.processes)}
    kept = [r for r in content.records if (r.get("job_id"), r.get("process", 0)) in complete]
    if content.bad_lines or len(kept) != len(content.records):
        records.rewrite(records_path, kept)
    records_path.touch()
    for job in jobs:
        write_job(out, job)
    return complete


def write_fixtures(out: Path, jobs: list[Job]) -> None:
    """Training tasks: the Python task writes each fixtures folder's initial weights and batch
    orders once (`--fixtures`, one process per task for all its folders), before any side runs, so
    every side reads the same files."""
    import subprocess

    firsts: dict[str, Job] = {}
    for job in jobs:
        if job.fixtures_dir:
            firsts.setdefault(job.fixtures_dir, job)
    by_task: dict[str, list[Job]] = {}
    for job in firsts.values():
        by_task.setdefault(job.task, []).append(job)
    for task, task_jobs in by_task.items():
        configs = [arg for job in task_jobs for arg in ("--config", str(out / "jobs" / f"{job.job_id}.yaml"))]
        print(f"{task}: writing the shared initial weights and batch orders (agents: random streams) of "
              f"{len(task_jobs)} job(s)",
              file=sys.stderr)
        done = subprocess.run([sys.executable, str(ROOT / load_task_spec(task).python["script"]), "--fixtures",
                               *configs, "--out", os.devnull], capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            # the task names the job file; the run folder goes away with the refusal, so name the job
            for job in task_jobs:
                job_file = out / "jobs" / f"{job.job_id}.yaml"
                last = last.replace(f"error: {job_file}", f"{job.algorithm} on {job.dataset}")
            raise UsageError(f"{task}: writing the shared initial weights failed: {last}")


def write_job(out: Path, job: Job) -> None:
    (out / "jobs" / f"{job.job_id}.yaml").write_text(dump_yaml(job.to_dict()))


def examine(options: RunOptions, jobs: list[Job]) -> list[doctor.Finding]:
    """The doctor's checks for this run (its threads, device, languages, datasets), before anything
    is written: a failing check stops the run unless --force."""
    profile = load_hardware(options.hardware)
    scope = doctor.Scope(threads=max([j.threads for j in jobs] or [profile.threads]),
                         device=profile.device, languages=tuple(sorted({j.language for j in jobs})),
                         datasets=tuple(sorted({j.dataset for j in jobs})), datasets_dir=options.datasets_dir,
                         libtorch=any(links_libtorch(j) for j in jobs))
    findings = doctor.diagnose(scope)
    if (failing := doctor.failed(findings)) and not options.force:
        reasons = "; ".join(f"{f.check} failed: {f.detail} (remedy: {f.remedy})" for f in failing)
        raise UsageError(f"doctor: {reasons}; or pass --force to run anyway (meta.json then says so)")
    return findings


def print_findings(findings: list[doctor.Finding]) -> None:
    """The doctor's warnings (and forced failures), once the run is sure to start."""
    if noted := [f for f in findings if f.status != doctor.PASS]:
        print("doctor:\n" + "\n".join(doctor.lines(noted)), file=sys.stderr)


def write_run_meta(options: RunOptions, findings: dict[str, Any], datasets: dict[str, Any],
                   cv_folds: dict[str, Any] | None = None) -> dict[str, Any]:
    """results/NAME/meta.json: how the run was asked for, and what stats needs to judge it: per-task
    quality tolerances and equivalence margins, the machine's noise floor, the process order; the
    doctor's findings; each dataset's sizes (the size sweep's x axis); the folds files written."""
    tolerances, margins, judging = {}, {}, {}
    for path in matrix_files(options.matrices):
        matrix, spec = load_matrix(path, load_hardware(options.hardware))
        tolerance = matrix.get("quality_tolerance", spec.quality_tolerance)
        if tolerance is not None:
            tolerances[spec.task] = tolerance
        margins[spec.task] = matrix.get("margin", matrix_defaults()["margin"])
        judging[spec.task] = {algorithm: spec.judging(algorithm) for algorithm in matrix["algorithms"]}
    meta = {"matrices": [str(p) for p in matrix_files(options.matrices)], "hardware_profile": options.hardware,
            "languages": options.languages, "executor": options.executor, "jobs": options.jobs,
            "partition": options.partition, "max_parallel": options.max_parallel, "slurm_opts": options.slurm_opts,
            "git_commit": envinfo.git_commit(), "written_at": records.utc_now(),
            "quality_tolerance": tolerances, "margin": margins, "judging": judging, "order": options.order,
            "mode": "noise-floor" if options.noise_floor else "run", "glibc_tunables": GLIBC_TUNABLES,
            "target_ci": options.target_ci, "max_processes": options.max_processes if options.target_ci else None,
            "doctor": findings, "datasets": datasets}
    if cv_folds:
        meta["folds"] = cv_folds
    if options.noise_floor:
        meta["aa_sides"] = "each job against itself: even process indices are side A, odd ones side B"
    elif options.use_floor and (floor := noise.read_floor(options.hardware, options.floor_file)):
        meta["noise_floor"] = floor
    if any(load_task_spec(task).trains_classifiers for task in judging):  # training tasks: the GEMM peak beside
        from mlbench.flops import gemm_peak  # their achieved GFLOP/s

        hardware = load_hardware(options.hardware)
        meta["gemm_peak"] = gemm_peak(hardware.device, hardware.threads)
    save_meta(options.out, meta)
    return meta


def save_meta(out: Path, meta: dict[str, Any]) -> None:
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


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


def judged(record: dict[str, Any], job: Job, split: ds.Split | None,
           assigned: np.ndarray | None = None) -> dict[str, Any]:
    """Add the shared evaluator's metrics to a task record, from the artifacts its kind needs
    (`assigned`: a cv_folds job's folds, read once per job by `collect`)."""
    if record.get("status") != "ok":
        return record
    try:
        kind = load_task_spec(job.task).kind_of(job.algorithm)
        assert split is not None or KINDS[kind].from_outputs is not None
        artifacts = record.get("artifacts") or {}
        missing = [name for name in KINDS[kind].outputs if name not in artifacts]
        if missing:
            raise EvaluationError(f"the record lists no {', '.join(missing)} artifact")
        loaded = {name: np.load(artifacts[name]) for name in KINDS[kind].outputs + KINDS[kind].optional
                  if name in artifacts}
        judge_outputs = KINDS[kind].from_outputs
        if judge_outputs is not None:  # a rollout, a trained agent: judged from its outputs alone
            record["metrics"] = judge_outputs(loaded, ds.read_meta(job.dataset, Path(job.datasets_dir))) | \
                record["metrics"]
        elif job.cv_folds:  # out-of-fold outputs: each fold's held-out rows judged, then the mean
            if assigned is None:
                assigned = folds.load(job.folds_file, len(split.y_train), job.cv_folds)
            means, record["fold_metrics"] = evaluate_folds(kind, split.X_train, split.y_train, assigned, loaded)
            record["metrics"] = means | record["metrics"]
        else:
            case = Judged(X_train=split.X_train, y_train=split.y_train, y_test=split.y_test, **loaded)
            record["metrics"] = evaluate(kind, case) | record["metrics"]
        flops_file = Path(job.fixtures_dir) / "flops.json" if job.fixtures_dir else None
        if flops_file is not None and flops_file.is_file() and record.get("counts"):
            from mlbench.flops import achieved_gflops

            record["throughput"] |= achieved_gflops(json.loads(flops_file.read_text()), record["counts"],
                                                    record["timings_s"])
    except (OSError, ValueError, EvaluationError, UsageError) as exc:
        record["status"], record["error"] = "failed", f"outputs could not be judged: {exc}"
    return record


def relative_artifacts(record: dict[str, Any], launch: Launch) -> dict[str, Any]:
    """Store output paths relative to the run folder, so a run folder can be moved."""
    run_folder = launch.raw_records.parent.parent
    for name, path in (record.get("artifacts") or {}).items():
        record["artifacts"][name] = os.path.relpath(path, run_folder)
    return record


def failure_record(job: Job, process: int, repetition: int, status: str, error: str) -> dict[str, Any]:
    digest = ds.digest(job.dataset, Path(job.datasets_dir)) if ds.is_prepared(
        job.dataset, Path(job.datasets_dir)) else None
    return records.unmeasured(job, process, repetition, None, digest, status, error, envinfo.capture())


def collect(outcome: Outcome) -> list[dict[str, Any]]:
    """The job's records: the task's own (judged), plus one runner-written record if it failed."""
    job = outcome.launch.job
    content = records.read_jsonl(outcome.launch.raw_records)
    split = None
    if any(r.get("status") == "ok" for r in content.records) and \
            KINDS[load_task_spec(job.task).kind_of(job.algorithm)].from_outputs is None:
        split = ds.load_split(job.dataset, Path(job.datasets_dir), normalise=False)  # the judge reads labels
    assigned = None
    if split is not None and job.cv_folds:  # read once per job, not once per record
        # A file that cannot be read: judged() reads it again and records the error on each record.
        with contextlib.suppress(OSError, ValueError, UsageError):
            assigned = folds.load(job.folds_file, len(split.y_train), job.cv_folds)
    task_records = [relative_artifacts(judged(r, job, split, assigned), outcome.launch)
                    for r in content.records if r.get("job_id") == job.job_id]
    problem = failure(outcome)
    if problem is None and content.bad_lines:
        problem = ("failed", f"task wrote {len(content.bad_lines)} malformed record line(s)")
    if problem is None and not task_records:
        problem = ("failed", "task exited 0 but wrote no records")
    if problem is not None:
        status, error = problem
        next_repetition = len(task_records)
        task_records.append(failure_record(job, outcome.launch.process, next_repetition, status, error))
    for record in task_records:
        record["host"] = outcome.host
    return task_records


def run(options: RunOptions) -> Summary:
    if options.executor not in EXECUTORS:
        raise UsageError(f"--executor: unknown executor {options.executor!r} (known: {', '.join(EXECUTORS)})")
    if options.order not in ORDERS:
        raise UsageError(f"--order: unknown order {options.order!r} (known: {', '.join(ORDERS)})")
    if options.jobs < 1:
        raise UsageError("--jobs: must be at least 1")
    if options.target_ci is not None and not (0 < options.target_ci < 1):
        raise UsageError(f"--target-ci: expected a relative half-width between 0 and 1, got {options.target_ci}")
    if options.max_processes < 1:
        raise UsageError("--max-processes: must be at least 1")
    jobs, notes = plan(options)
    for note in notes:
        print(note, file=sys.stderr)
    executor = make_executor(options)
    if options.jobs > 1:
        print(f"warning: --jobs {options.jobs} runs jobs side by side; their timings distort each other. "
              "Use it for correctness runs, not for numbers you report.", file=sys.stderr)
    findings = examine(options, jobs)
    fresh = options.overwrite or not (options.out / "records.jsonl").exists()
    complete = prepare_output(options, jobs)
    try:
        write_fixtures(options.out, jobs)
    except UsageError:
        if fresh:  # refused before any side ran: a new run leaves nothing behind
            shutil.rmtree(options.out, ignore_errors=True)
        raise
    cv = folds.write({j.folds_file: (j.dataset, j.cv_folds, j.seed) for j in jobs if j.cv_folds}, options.datasets_dir)
    meta = write_run_meta(options, doctor.as_json(findings, forced=options.force),
                          {name: ds.sizes(name, options.datasets_dir) for name in sorted({j.dataset for j in jobs})},
                          cv)
    print_findings(findings)
    wanted = {job.job_id: list(range(job.processes)) for job in jobs}
    summary = Summary()
    done_before = sum(1 for job in jobs for p in wanted[job.job_id] if (job.job_id, p) in complete)
    if done_before:
        print(f"resume: {done_before} of {sum(map(len, wanted.values()))} task processes already complete",
              file=sys.stderr)
    run_units(options, executor, jobs, wanted, complete, summary)
    if options.target_ci is not None:
        adapt(options, executor, jobs, wanted, complete, summary)
        save_meta(options.out, meta | {"processes_per_job": {j: len(p) for j, p in wanted.items()}})
    return summary


def run_units(options: RunOptions, executor: Executor, jobs: list[Job], wanted: dict[str, list[int]],
              complete: set[Unit], summary: Summary, label: str = "") -> None:
    """Run the wanted processes not yet complete, in the chosen order; schedule.jsonl gets the order."""
    planned = [(job, p) for job, p in schedule(jobs, wanted, options.order, options.noise_floor)
               if (job.job_id, p) not in complete]
    unsupported: set[str] = set()

    def launches() -> Iterator[Launch]:
        for job, process in planned:
            if job.job_id not in unsupported:  # the task said so once: its other processes would too
                yield launch_for(job, process, options.out)

    records_path = options.out / "records.jsonl"
    ran: list[Unit] = []
    with tqdm(total=len(planned), unit="proc", desc=label or options.out.name, file=sys.stderr,
              disable=None) as bar:
        for outcome in executor.run(launches()):
            job = outcome.launch.job
            unit_records = collect(outcome)
            records.append_many(records_path, unit_records)
            ran.append((job.job_id, outcome.launch.process))
            if is_complete(job, unit_records):
                complete.add((job.job_id, outcome.launch.process))
            for record in unit_records:
                summary.statuses[record["status"]] += 1
                if record["status"] == "unsupported":
                    unsupported.add(job.job_id)
                elif record["status"] != "ok":
                    first_line = (record["error"] or "").splitlines()[0]
                    summary.failures.append(f"{job.label} process {outcome.launch.process}: "
                                            f"{record['status']}: {first_line}")
            if outcome.host and outcome.host["disturbed"]:
                summary.disturbed += 1
            bar.set_postfix_str(job.label[-60:])
            bar.update(1)
        bar.update(bar.total - bar.n)  # processes skipped because their job is unsupported
    append_schedule(options.out, ran)


def append_schedule(out: Path, ran: list[Unit]) -> None:
    """The order processes actually ran in, one line per process (schedule.jsonl beside meta.json)."""
    with (out / "schedule.jsonl").open("a") as f:
        f.writelines(json.dumps({"job_id": job_id, "process": process}) + "\n" for job_id, process in ran)


def adapt(options: RunOptions, executor: Executor, jobs: list[Job], wanted: dict[str, list[int]],
          complete: set[Unit], summary: Summary) -> None:
    """--target-ci: give both sides of every comparison whose CI is wider than the target more
    processes (the planned number again), until all are within target or at --max-processes."""
    from mlbench import stats

    by_key: dict[tuple[str, ...], list[Job]] = {}
    for job in jobs:
        by_key.setdefault(comparison_key(job), []).append(job)
    while True:
        table, loaded = stats.load([options.out])
        comparisons = stats.compare(table, loaded)
        if comparisons.empty:
            break
        # start-up and load are measured once per process: they do not steer how many are needed
        timed = comparisons[~comparisons["phase"].isin(stats.PROCESS_PHASES)]
        wide = timed[~(timed["ci_halfwidth"] <= options.target_ci)]  # NaN (no CI yet) is wide too
        grow: set[str] = set()
        for row in wide.itertuples():
            for job in by_key.get((row.task, row.algorithm, row.dataset, row.params, row.hardware_profile), []):
                if job.framework in (row.python_framework, row.rust_framework):
                    grow.add(job.job_id)
        grow = {j for j in grow if len(wanted[j]) < options.max_processes}
        if not grow:
            break
        grown = [j for j in jobs if j.job_id in grow]
        for job in grown:
            have = len(wanted[job.job_id])
            wanted[job.job_id] = list(range(have + min(job.processes, options.max_processes - have)))
            write_job(options.out, Job(**(job.to_dict() | {"processes": len(wanted[job.job_id])})))
        print(f"target CI ±{options.target_ci:.0%}: {len(grown)} job(s) get more processes", file=sys.stderr)
        run_units(options, executor, grown, wanted, complete, summary, label="more processes")
