"""candle's `cuda` build, checked as far as a machine without a GPU allows.

`make build HW=gpu BURN_CUDA=0 TARGET_CPU=x86-64-v3` builds it here with nvcc from PyPI's wheels
(scripts/cuda-toolkit.sh) for a GPU machine without Rust. A cuda build links the CUDA driver
(libcuda.so.1) and torch's CUDA libraries by soname. Here, with the toolkit's driver stub in place
of a driver, the binary must run a CPU job exactly as the CPU build does and refuse a cuda job
with one line and exit 2; what a GPU machine does with it is scripts/gpu-check.sh's to say.
Skipped where no cuda build is (CI builds none: the kernels take minutes to compile);
MLBENCH_CUDA_TARGET names its folder (default rust/target/x86-64-v3/release).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, rust_binary
from mlbench.runner import cuda_lib
from test_bad_input import assert_program_refuses
from test_generation_task import job_file, prompts_dir  # noqa: F401 (a fixture)

CUDA_TARGET = Path(os.environ.get("MLBENCH_CUDA_TARGET", ROOT / "rust/target/x86-64-v3/release"))
STUB = Path(cuda_lib() or "/nonexistent") / "stubs" / "libcuda.so"


def needed(binary: Path) -> list[str]:
    dynamic = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True).stdout
    return [line.split("[")[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line]


@pytest.fixture
def cuda_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The cuda build of text_generation (candle), with the driver stub on the library path."""
    binary = CUDA_TARGET / "text_generation"
    if not binary.exists() or "libcuda.so.1" not in needed(binary):
        pytest.skip(f"no candle cuda build in {CUDA_TARGET} (make build HW=gpu BURN_CUDA=0 TARGET_CPU=x86-64-v3)")
    if not STUB.exists():
        pytest.skip("no driver stub (make cuda-toolkit)")
    driver = tmp_path / "driver"
    driver.mkdir()
    (driver / "libcuda.so.1").symlink_to(STUB)
    monkeypatch.setenv("LD_LIBRARY_PATH", os.pathsep.join([str(driver), str(cuda_lib())]))
    return binary


def test_it_links_the_driver_and_torchs_cuda_libraries_by_soname(cuda_binary: Path) -> None:
    libraries = needed(cuda_binary)
    assert {"libcuda.so.1", "libcublas.so.13", "libcurand.so.10", "libcudart.so.13"} <= set(libraries)
    resolved = subprocess.run(["ldd", str(cuda_binary)], capture_output=True, text=True, check=True).stdout
    assert "not found" not in resolved, resolved


def generate(binary: Path, folder: Path, datasets: Path) -> dict[str, np.ndarray]:
    folder.mkdir()
    config = job_file(folder, datasets, "rust", "candle")
    out = folder / "records.jsonl"
    subprocess.run([str(binary), "--config", str(config), "--out", str(out)], check=True, timeout=300,
                   capture_output=True)
    record = [json.loads(line) for line in out.read_text().splitlines()][-1]
    assert record["status"] == "ok" and record["device"] == "cpu"
    return {name: np.load(folder / path) if (folder / path).exists() else np.load(path)
            for name, path in record["artifacts"].items()}


def test_it_runs_a_cpu_job_as_the_cpu_build_does(cuda_binary: Path, tmp_path: Path, prompts_dir: Path) -> None:  # noqa: F811
    cpu = generate(rust_binary("text_generation"), tmp_path / "cpu", prompts_dir)
    cuda = generate(cuda_binary, tmp_path / "cuda", prompts_dir)
    assert cpu.keys() == cuda.keys() == {"tokens", "decode_steps", "nll"}
    np.testing.assert_array_equal(cpu["tokens"], cuda["tokens"])
    # Another target CPU (x86-64-v3 against native) may take other SIMD paths: rounding, not work.
    np.testing.assert_allclose(cpu["nll"], cuda["nll"], rtol=1e-5)


def test_without_a_driver_a_cuda_job_is_refused_in_one_line(cuda_binary: Path, tmp_path: Path,
                                                             prompts_dir: Path) -> None:  # noqa: F811
    config = job_file(tmp_path, prompts_dir, "rust", "candle")
    config.write_text(config.read_text().replace("device: cpu", "device: cuda"))
    assert_program_refuses([str(cuda_binary)], config, "device: cuda: candle sees no usable GPU")
