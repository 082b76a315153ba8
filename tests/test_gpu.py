"""The NVML sampler (mlbench.gpu; Rust twin: bench-core/src/gpu.rs) with a fake GPU: peak memory,
mean utilisation, the energy counter's difference, and nulls (never zeros) without a GPU."""

from __future__ import annotations

import itertools
import time

from mlbench import gpu


class FakeGpu:
    """Memory in use rises by 10 MiB per reading, 50% busy, 7 J more per energy reading."""

    def __init__(self) -> None:
        self.reads = itertools.count()
        self.energy = itertools.count(1000, 7000)

    def memory_used_mb(self) -> float | None:
        return 10.0 * next(self.reads)

    def utilisation_percent(self) -> float | None:
        return 50.0

    def energy_mj(self) -> int | None:
        return next(self.energy)


def test_samples_peak_mean_and_energy_difference() -> None:
    result, figures = gpu.sampled(FakeGpu(), lambda: time.sleep(0.06) or 42, interval_s=0.005)
    assert result == 42
    n = figures["gpu_samples"]
    assert n >= 3
    assert figures["gpu_mem_used_peak_mb"] == 10.0 * (n - 1)
    assert figures["gpu_util_percent"] == 50.0
    assert figures["gpu_energy_j"] == 7.0  # one reading before the work, one after


def test_no_gpu_gives_nulls_never_zeros() -> None:
    result, figures = gpu.sampled(None, lambda: 1)
    assert result == 1 and set(figures.values()) == {None}
    assert gpu.open_reader("cpu") is None


def test_a_gpu_that_reports_nothing_gives_nulls() -> None:
    class Silent:
        def memory_used_mb(self) -> None: return None
        def utilisation_percent(self) -> None: return None
        def energy_mj(self) -> None: return None

    _, figures = gpu.sampled(Silent(), lambda: None, interval_s=0.005)
    assert figures["gpu_mem_used_peak_mb"] is None and figures["gpu_util_percent"] is None
    assert figures["gpu_energy_j"] is None and figures["gpu_samples"] >= 2


def test_cuda_without_nvml_warns_and_gives_none(capsys) -> None:
    reader = gpu.open_reader("cuda")
    if reader is not None:  # a machine with an NVIDIA driver: the reader must read something
        assert reader.memory_used_mb() is not None
        return
    assert "NVML unavailable" in capsys.readouterr().err
