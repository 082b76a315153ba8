"""The one measurement routine: phase clocks, calibrated inner loops and per-repetition resources.

Mirrors rust/bench-core/src/measure.rs: the same monotonic clock around the same phase boundaries,
minor/major page faults from getrusage(RUSAGE_SELF) around each timed call, peak RSS from the
kernel's VmHWM after resetting it through /proc/self/clear_refs, process CPU time from
CLOCK_PROCESS_CPUTIME_ID, and start-up as CLOCK_MONOTONIC now minus the runner's spawn time.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
SPAWN_VARIABLE = "MLBENCH_SPAWN_NS"  # CLOCK_MONOTONIC in ns, read by the runner just before it spawned us
# A calibrated sample never exceeds this many calls, whatever min_sample_s asks (pyperf caps too).
MAX_LOOPS = 1 << 20


def faults() -> tuple[int, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_minflt, usage.ru_majflt


@dataclass
class PhaseTimer:
    """Per-call seconds and page faults per named phase, and the calls (k) each sample took."""

    timings_s: dict[str, float] = field(default_factory=dict)
    page_faults: dict[str, dict[str, float]] = field(default_factory=dict)
    loops: dict[str, int] = field(default_factory=dict)

    def calls(self, name: str, k: int, prepare: Callable[[], Any], work: Callable[[Any], Any],
              calibrate_to_s: float | None = None) -> Any:
        """Time `work(prepare())` k times, `prepare` untimed (a fresh model per call where the phase
        mutates it). With `calibrate_to_s`, double k until one sample lasts at least that long
        (pyperf's calibration). Records per-call time and faults; returns the last result."""
        while True:
            elapsed, minor, major, result = 0.0, 0, 0, None
            for _ in range(k):
                state = prepare()
                minor0, major0 = faults()
                start = time.perf_counter()
                result = work(state)
                elapsed += time.perf_counter() - start
                minor1, major1 = faults()
                minor, major = minor + minor1 - minor0, major + major1 - major0
            if calibrate_to_s is None or elapsed >= calibrate_to_s or k >= MAX_LOOPS:
                break
            k *= 2
        self.timings_s[name] = elapsed / k
        self.page_faults[name] = {"minor": minor / k, "major": major / k}
        self.loops[name] = k
        return result


RUNNER_PID_VARIABLE = "MLBENCH_RUNNER_PID"
PR_SET_PDEATHSIG = 1


def die_with_runner() -> None:
    """The kernel kills this task if the runner that started it dies, so no orphan keeps writing
    records while a resumed run repeats its process. (Set here, not in a preexec hook, which would
    cost every measured start-up a full fork.)"""
    runner = os.environ.get(RUNNER_PID_VARIABLE, "")
    if not runner.isdigit():
        return  # started by hand
    import ctypes
    import ctypes.util
    import signal

    try:
        ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: no such guard
    if os.getppid() != int(runner):  # the runner died before the guard was set
        os._exit(1)


def startup_s() -> float | None:
    """Seconds from the runner's spawn of this process to now (None when started by hand)."""
    spawned = os.environ.get(SPAWN_VARIABLE)
    if not spawned or not spawned.isdigit():
        return None
    return max(0.0, (time.monotonic_ns() - int(spawned)) / 1e9)


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS ("5" = clear_refs' reset of the peak, Linux >= 4.0)."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def status_mib(key: str) -> float | None:
    """A memory line of /proc/self/status (kB) in MiB, or None where /proc is not available."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb() -> float | None:
    """VmHWM of this process in MiB, or None where /proc is not available."""
    return status_mib("VmHWM:")


def rss_mb() -> float | None:
    """Current VmRSS of this process in MiB (the baseline a repetition starts from), or None."""
    return status_mib("VmRSS:")


def cpu_time_s() -> float:
    return time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)
