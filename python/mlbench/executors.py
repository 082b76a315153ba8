"""Executors run job processes; the runner turns what they report into records.

The seam is small on purpose: an executor receives the jobs with the command of each and yields one
Outcome per finished job, in any order. `local` runs them here; a cluster backend submits the same
commands elsewhere and must not touch the tasks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mlbench import host as host_load
from mlbench.config import Job
from mlbench.measure import RUNNER_PID_VARIABLE, SPAWN_VARIABLE


@dataclass(frozen=True)
class Launch:
    """One job ready to start: its command, environment and where its outputs go."""

    job: Job
    command: list[str]
    env: dict[str, str]
    raw_records: Path
    stdout: Path
    stderr: Path
    process: int = 0  # which of the job's task processes this is


@dataclass(frozen=True)
class Outcome:
    launch: Launch
    returncode: int | None
    timed_out: bool
    note: str | None = None  # why there is no exit code, when the executor knows (e.g. a Slurm state)
    host: dict[str, Any] | None = None  # the machine around the process (local executor only)


class Executor(Protocol):
    def run(self, launches: Iterable[Launch]) -> Iterator[Outcome]: ...


def run_one(launch: Launch, watch_host: bool = True) -> Outcome:
    """Run a task process in its own process group, so a timeout ends every process it started.
    With `watch_host`, record the load around it (only meaningful when it runs alone)."""
    before = host_load.sample() if watch_host else None
    with launch.stdout.open("w") as out, launch.stderr.open("w") as err:
        # No preexec_fn: it forces a full fork (about 12 ms here) into every start-up we measure;
        # the task arms its own parent-death signal instead.
        env = launch.env | {RUNNER_PID_VARIABLE: str(os.getpid()), SPAWN_VARIABLE: str(time.monotonic_ns())}
        process = subprocess.Popen(launch.command, stdout=out, stderr=err, env=env,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            returncode = process.wait(timeout=launch.job.timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            returncode, timed_out = None, True
    host = host_load.around(before, host_load.sample(), launch.job.threads) if before else None
    return Outcome(launch, returncode, timed_out, host=host)


class LocalExecutor:
    """One job at a time by default: parallel jobs distort each other's timings."""

    def __init__(self, jobs: int = 1, watch_host: bool = True) -> None:
        self.jobs = jobs
        self.watch_host = watch_host and jobs == 1  # side by side, the load is our own

    def run(self, launches: Iterable[Launch]) -> Iterator[Outcome]:
        if self.jobs == 1:
            for launch in launches:  # lazily: the runner may drop launches as outcomes arrive
                yield run_one(launch, self.watch_host)
            return
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = [pool.submit(run_one, launch, False) for launch in launches]
            for future in as_completed(futures):
                yield future.result()


EXECUTORS = ("local", "slurm")
