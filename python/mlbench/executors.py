"""Executors run job processes; the runner turns what they report into records.

The seam is small on purpose: an executor receives the jobs with the command of each and yields one
Outcome per finished job, in any order. `local` runs them here; a cluster backend submits the same
commands elsewhere and must not touch the tasks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mlbench.config import Job


@dataclass(frozen=True)
class Launch:
    """One job ready to start: its command, environment and where its outputs go."""

    job: Job
    command: list[str]
    env: dict[str, str]
    raw_records: Path
    stdout: Path
    stderr: Path


@dataclass(frozen=True)
class Outcome:
    launch: Launch
    returncode: int | None
    timed_out: bool
    note: str | None = None  # why there is no exit code, when the executor knows (e.g. a Slurm state)


class Executor(Protocol):
    def run(self, launches: list[Launch]) -> Iterator[Outcome]: ...


PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A preexec hook: the kernel kills the task if the runner dies, so no orphan keeps writing
    records while a resumed run repeats its job."""

    def hook() -> None:
        try:
            ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            return  # not Linux: no such guard
        if os.getppid() != parent_pid:  # the runner died before the guard was set
            os._exit(1)

    return hook


def run_one(launch: Launch) -> Outcome:
    """Run a job in its own process group, so a timeout ends every process it started."""
    with launch.stdout.open("w") as out, launch.stderr.open("w") as err:
        process = subprocess.Popen(launch.command, stdout=out, stderr=err, env=launch.env,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   preexec_fn=die_with_parent(os.getpid()))
        try:
            returncode = process.wait(timeout=launch.job.timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            returncode, timed_out = None, True
    return Outcome(launch, returncode, timed_out)


class LocalExecutor:
    """One job at a time by default: parallel jobs distort each other's timings."""

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = jobs

    def run(self, launches: list[Launch]) -> Iterator[Outcome]:
        if self.jobs == 1:
            for launch in launches:
                yield run_one(launch)
            return
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = [pool.submit(run_one, launch) for launch in launches]
            for future in as_completed(futures):
                yield future.result()


EXECUTORS = ("local", "slurm")
