"""GPU figures of one repetition, read through NVML the same way in both languages.

Mirrors rust/bench-core/src/gpu.rs. While a repetition on a CUDA device runs, a thread reads the
job's GPU every SAMPLE_INTERVAL_S: device memory in use (its peak is `gpu_mem_used_peak_mb`) and
utilisation (their mean is `gpu_util_percent`); the GPU's total-energy counter is read before and
after (`gpu_energy_j`). The GPU is the first of CUDA_VISIBLE_DEVICES (an index or a GPU-UUID), else
index 0. NVML (`nvidia-ml-py`) counts every process on the GPU, so these are the machine's figures
during the repetition: run one job per GPU. On a CPU, or where NVML cannot be opened, every field
is null, never 0.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

SAMPLE_INTERVAL_S = 0.05
T = TypeVar("T")


class Reader(Protocol):
    """One GPU's instantaneous readings; None where the GPU does not report one."""

    def memory_used_mb(self) -> float | None: ...

    def utilisation_percent(self) -> float | None: ...

    def energy_mj(self) -> int | None: ...


def null_figures() -> dict[str, Any]:
    return {"gpu_mem_used_peak_mb": None, "gpu_util_percent": None, "gpu_energy_j": None, "gpu_samples": None}


@dataclass
class Samples:
    peak_mb: float | None = None
    util_sum: float = 0.0
    util_n: int = 0
    n: int = 0

    def take(self, reader: Reader) -> None:
        used = reader.memory_used_mb()
        if used is not None:
            self.peak_mb = used if self.peak_mb is None else max(self.peak_mb, used)
        util = reader.utilisation_percent()
        if util is not None:
            self.util_sum += util
            self.util_n += 1
        self.n += 1


def sampled(reader: Reader | None, work: Callable[[], T], interval_s: float = SAMPLE_INTERVAL_S
            ) -> tuple[T, dict[str, Any]]:
    """Run `work` while a thread samples `reader` (at its start, every interval, at its end)."""
    if reader is None:
        return work(), null_figures()
    samples = Samples()
    stop = threading.Event()

    def loop() -> None:
        while True:
            samples.take(reader)
            if stop.wait(interval_s):
                return

    energy_start = reader.energy_mj()
    thread = threading.Thread(target=loop, name="nvml-sampler", daemon=True)
    thread.start()
    try:
        result = work()
    finally:
        stop.set()
        thread.join()
    samples.take(reader)
    energy_end = reader.energy_mj()
    energy = (energy_end - energy_start) / 1000 if energy_start is not None and energy_end is not None else None
    return result, {"gpu_mem_used_peak_mb": samples.peak_mb,
                    "gpu_util_percent": samples.util_sum / samples.util_n if samples.util_n else None,
                    "gpu_energy_j": energy, "gpu_samples": samples.n}


class Nvml:
    """The job's GPU through pynvml (nvidia-ml-py)."""

    def __init__(self) -> None:
        import pynvml

        self.nvml = pynvml
        pynvml.nvmlInit()
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
        if visible.startswith(("GPU-", "MIG-")):
            self.handle = pynvml.nvmlDeviceGetHandleByUUID(visible)
        else:
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(int(visible) if visible.isdigit() else 0)

    def memory_used_mb(self) -> float | None:
        try:
            return self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used / 2**20
        except self.nvml.NVMLError:
            return None

    def utilisation_percent(self) -> float | None:
        try:
            return float(self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu)
        except self.nvml.NVMLError:
            return None

    def energy_mj(self) -> int | None:
        try:
            return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except self.nvml.NVMLError:
            return None


@functools.cache
def reader_for(device: str) -> Reader | None:
    """The process's one reader for `device` (opened on first use)."""
    return open_reader(device)


def open_reader(device: str) -> Reader | None:
    """NVML for a CUDA device; None on a CPU, or (with one line on stderr) where NVML cannot open."""
    if not device.startswith("cuda"):
        return None
    try:
        return Nvml()
    except Exception as exc:  # ImportError, NVMLError (no driver), a bad CUDA_VISIBLE_DEVICES
        print(f"warning: NVML unavailable, GPU memory/utilisation/energy recorded as null: {exc}", file=sys.stderr)
        return None
