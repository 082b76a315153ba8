"""The Slurm executor: the same job commands as `local`, submitted as one sbatch job array.

Each array element runs one job through a small script (the task's command under `timeout`, output
to the same log files as a local run) and writes its exit status to a file. The executor polls
`squeue` (no Slurm accounting needed) and reports each element as it ends; an element that ends
without an exit status (scancel, node failure, OOM kill of the whole element) is reported with the
Slurm state it was last seen in, never waited for forever.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mlbench.errors import UsageError
from mlbench.executors import Launch, Outcome

TIMEOUT_EXIT = 124  # coreutils `timeout` when the limit is hit
KILL_GRACE_S = 10  # after the timeout's TERM, KILL follows this much later
POLL_S = 1.0
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
            "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"}
PROFILE_OPTIONS = {"gpus": "--gpus", "cpus_per_task": "--cpus-per-task", "mem": "--mem", "time": "--time"}


@dataclass
class SlurmExecutor:
    """`--executor slurm`: one `sbatch --array=0-(N-1)%K`, then poll until every element ends."""

    folder: Path
    partition: str | None = None
    max_parallel: int = 1
    resources: dict[str, object] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    poll_s: float = POLL_S

    def __post_init__(self) -> None:
        if shutil.which("sbatch") is None or shutil.which("squeue") is None:
            raise UsageError("--executor slurm: sbatch/squeue not found on PATH; use --executor local "
                             "(or run on a Slurm login node)")
        if self.max_parallel < 1:
            raise UsageError("--max-parallel: must be at least 1")

    def sbatch_options(self, n: int) -> list[str]:
        options = [f"--array=0-{n - 1}%{self.max_parallel}", "--job-name=mlbench",
                   f"--output={self.folder / 'slurm-%A_%a.out'}"]
        if self.partition:
            options.append(f"--partition={self.partition}")
        for key, flag in PROFILE_OPTIONS.items():
            if self.resources.get(key) is not None:
                options.append(f"{flag}={self.resources[key]}")
        # Whole CPUs to itself by default, so that no other job disturbs the timings.
        if self.resources.get("exclusive", True):
            options.append("--exclusive")
        return options + self.extra

    def write_element(self, index: int, launch: Launch) -> Path:
        changed = {k: v for k, v in launch.env.items() if os.environ.get(k) != v}
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(changed.items()))
        limit = f"{launch.job.timeout_s:g}"
        script = (f"#!/usr/bin/env bash\n# mlbench job {launch.job.job_id}: {launch.job.label}\n"
                  f"cd {shlex.quote(os.getcwd())}\n{exports}"
                  f"timeout --kill-after={KILL_GRACE_S} {limit} {shlex.join(launch.command)} "
                  f"> {shlex.quote(str(launch.stdout))} 2> {shlex.quote(str(launch.stderr))}\n"
                  f"echo $? > {shlex.quote(str(self.status_file(index)))}\n")
        path = self.folder / f"job-{index}.sh"
        path.write_text(script)
        return path

    def status_file(self, index: int) -> Path:
        return self.folder / f"status-{index}"

    def submit(self, launches: list[Launch]) -> str:
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        for index, launch in enumerate(launches):
            self.write_element(index, launch)
        array = self.folder / "array.sh"
        array.write_text("#!/usr/bin/env bash\n# One mlbench job per array element.\n"
                         f'exec bash {shlex.quote(str(self.folder))}/job-"$SLURM_ARRAY_TASK_ID".sh\n')
        command = ["sbatch", "--parsable", *self.sbatch_options(len(launches)), str(array)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise UsageError(f"sbatch refused the job array: {result.stderr.strip() or result.stdout.strip()}")
        job_id = result.stdout.strip().split(";")[0]
        print(f"slurm: submitted {len(launches)} job(s) as array {job_id} ({shlex.join(command[2:-1])})",
              file=sys.stderr)
        return job_id

    def states(self, job_id: str) -> dict[int, str] | None:
        """State per array index that squeue still knows; None when squeue knows the job no more."""
        result = subprocess.run(["squeue", "-h", "-j", job_id, "-t", "all", "-o", "%K %T"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            return None
        seen: dict[int, str] = {}
        for line in result.stdout.split("\n"):
            index, _, state = line.strip().partition(" ")
            if index.isdigit():  # pending elements are listed as a range: not yet started
                seen[int(index)] = state
        return seen if result.stdout.strip() else None

    def outcome(self, launch: Launch, index: int, state: str | None) -> Outcome:
        status = self.status_file(index)
        text = status.read_text().strip() if status.exists() else ""
        if text.lstrip("-").isdigit():
            code = int(text)
            return Outcome(launch, None if code == TIMEOUT_EXIT else code, code == TIMEOUT_EXIT)
        return Outcome(launch, None, False,
                       note=f"Slurm element ended without an exit status (last Slurm state: {state or 'unknown'})")

    def run(self, launches: Iterable[Launch]) -> Iterator[Outcome]:
        launches = list(launches)  # one array for all of them
        if not launches:
            return
        job_id = self.submit(launches)
        last: dict[int, str] = {}
        remaining = set(range(len(launches)))
        while remaining:
            time.sleep(self.poll_s)
            states = self.states(job_id)
            if states is not None:
                last.update(states)
            for index in sorted(remaining):
                finished = self.status_file(index).exists() or last.get(index) in TERMINAL
                if finished or states is None:
                    remaining.discard(index)
                    yield self.outcome(launches[index], index, last.get(index))
