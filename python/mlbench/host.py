"""The machine around a task process: load average and the cores other processes kept busy.

Before and after each process the runner reads /proc/loadavg, the machine's busy CPU time
(/proc/stat) and its children's CPU time (getrusage). What the machine spent beyond the task's own
CPU time, over the process's wall time, is the work of others: `other_busy_cores`. When the task's
threads exceed the cores left idle (`idle_cores` = cores - other_busy_cores) the process was
disturbed, and stats leaves its repetitions out of verdicts (they stay in the records).
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from typing import Any

TICK_S = 1 / os.sysconf("SC_CLK_TCK")  # /proc/stat counts in these
CORES = os.cpu_count() or 1
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal (idle 3 and iowait 4 are not busy)


@dataclass(frozen=True)
class Sample:
    wall_s: float
    busy_s: float | None
    children_cpu_s: float
    loadavg: float | None


def busy_s() -> float | None:
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
        return sum(int(fields[i]) for i in BUSY_FIELDS) * TICK_S
    except (OSError, ValueError, IndexError):
        return None


def loadavg() -> float | None:
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def sample() -> Sample:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Sample(time.monotonic(), busy_s(), children.ru_utime + children.ru_stime, loadavg())


def around(before: Sample, after: Sample, threads: int) -> dict[str, Any]:
    """The `host` block of a process's records. /proc/stat is sampled per tick on every core, so
    one tick per core is taken off the others' share: short processes are not called disturbed
    on rounding alone."""
    wall = after.wall_s - before.wall_s
    other: float | None = None
    if before.busy_s is not None and after.busy_s is not None and wall > 0:
        own = after.children_cpu_s - before.children_cpu_s
        other = max(0.0, after.busy_s - before.busy_s - own - CORES * TICK_S) / wall
    idle = None if other is None else max(0.0, CORES - other)
    return {"loadavg_before": before.loadavg, "loadavg_after": after.loadavg,
            "other_busy_cores": None if other is None else round(other, 3),
            "idle_cores": None if idle is None else round(idle, 3),
            "disturbed": idle is not None and threads > idle}
