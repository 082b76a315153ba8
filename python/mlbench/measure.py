"""The one measurement routine: phase clocks and per-repetition resources.

Mirrors rust/bench-core/src/measure.rs: the same monotonic clock around the same phase boundaries,
peak RSS from the kernel's VmHWM after resetting it through /proc/self/clear_refs, and process CPU
time from CLOCK_PROCESS_CPUTIME_ID.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


class PhaseTimer:
    """Seconds per named phase from time.perf_counter (monotonic)."""

    def __init__(self) -> None:
        self.timings_s: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings_s[name] = self.timings_s.get(name, 0.0) + time.perf_counter() - start


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS ("5" = clear_refs' reset of the peak, Linux >= 4.0)."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """VmHWM of this process in MiB, or None where /proc is not available."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def cpu_time_s() -> float:
    return time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)
