"""The `env` block of every record: machine, OS, runtime, libraries, thread settings, commit."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import cache
from importlib import metadata
from typing import Any

from mlbench.paths import ROOT

SCHEDULER_VARIABLES = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURMD_NODENAME")
# What the runner sets to the job's thread count for every task process (the doctor reports them).
THREAD_COUNT_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS",
                    "OPENBLAS_CORETYPE", "GLIBC_TUNABLES")


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


@cache
def git_commit() -> str | None:
    """The runner passes its commit to tasks through MLBENCH_GIT_COMMIT, so both languages agree."""
    if "MLBENCH_GIT_COMMIT" in os.environ:
        return os.environ["MLBENCH_GIT_COMMIT"] or None
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions(names: list[str]) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def blas_info() -> dict[str, str]:
    """BLAS libraries numpy/scipy loaded, with their thread counts (threadpoolctl)."""
    from threadpoolctl import threadpool_info

    return {f"{p['internal_api']}:{p.get('architecture') or ''}": str(p["num_threads"])
            for p in threadpool_info()}


def capture(libraries: list[str] | None = None) -> dict[str, Any]:
    thread_env = {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ}
    thread_env.update({f"blas.{k}": v for k, v in blas_info().items()})
    env = {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "runtime": f"CPython {platform.python_version()}",
        "libraries": library_versions(libraries or []),
        "thread_env": thread_env,
        "git_commit": git_commit(),
    }
    scheduler = {k: os.environ[k] for k in SCHEDULER_VARIABLES if k in os.environ}
    if scheduler:
        env["scheduler"] = scheduler  # which cluster job and node measured this
    return env
