"""libtorch's CUDA kernel switches of the deep-learning tasks (`cudnn_benchmark`, `tf32`): off by
default and set explicitly (IEEE float32), on when a matrix says so, the same on PyTorch and tch as
each reads its settings back (`env.kernels`), and `unsupported` on candle and burn, which have no such
switches. The settings are flags of libtorch's global context, so they read back on a CPU too; what
they do to a GPU's kernels needs a GPU (scripts/gpu-check.sh)."""

from __future__ import annotations

import pytest

from conftest import load_run, mlbench, write_yaml
from mlbench import datasets as ds

OFF = {"cudnn_benchmark": "false", "cudnn_tf32": "false", "cublas_tf32": "false"}
ON = {"cudnn_benchmark": "true", "cudnn_tf32": "true", "cublas_tf32": "true"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], str]:
    folder = tmp_path_factory.mktemp("switches")
    ds.prepare(["synthetic_images_tiny"], folder / "data", log=lambda _: None)
    matrix = write_yaml(folder / "m.yaml", {
        "task": "cnn", "repetitions": 1, "processes": 1, "warmup": 0, "inference_batch_sizes": [1],
        "datasets": ["synthetic_images_tiny"],
        "algorithms": {"lenet": {"epochs": 1, "batch_size": 16, "cudnn_benchmark": [False, True],
                                 "tf32": [False, True]}}})
    result = mlbench("run", matrix, "--out", folder / "run", "--datasets-dir", folder / "data", "--no-table")
    assert result.returncode == 0, result.stderr + result.stdout
    return load_run(folder / "run"), result.stdout + result.stderr


def switches(record: dict) -> tuple[bool, bool]:
    return record["hyperparameters"]["cudnn_benchmark"], record["hyperparameters"]["tf32"]


@pytest.mark.parametrize("framework", ["pytorch", "tch"])
def test_libtorch_sides_apply_the_switches_and_report_them(run: tuple[list[dict], str], framework: str) -> None:
    records = [r for r in run[0] if r["framework"] == framework]
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"}
    for record in records:
        benchmark, tf32 = switches(record)
        expected = {"cudnn_benchmark": str(benchmark).lower(), "cudnn_tf32": str(tf32).lower(),
                    "cublas_tf32": str(tf32).lower()}
        assert record["env"]["kernels"] == expected, (switches(record), record["env"]["kernels"])
    assert next(r for r in records if switches(r) == (False, False))["env"]["kernels"] == OFF
    assert next(r for r in records if switches(r) == (True, True))["env"]["kernels"] == ON


@pytest.mark.parametrize("framework", ["candle", "burn"])
def test_frameworks_without_the_switches_record_unsupported(run: tuple[list[dict], str], framework: str) -> None:
    records = {switches(r): r for r in run[0] if r["framework"] == framework}
    assert records[(False, False)]["status"] == "ok" and "kernels" not in records[(False, False)]["env"]
    assert records[(True, False)]["status"] == "unsupported"
    assert "cuDNN autotuner" in records[(True, False)]["error"]
    assert records[(False, True)]["status"] == "unsupported" and "TF32" in records[(False, True)]["error"]
    assert records[(True, True)]["status"] == "unsupported"


def test_a_cpu_run_says_the_switches_change_nothing_there(run: tuple[list[dict], str]) -> None:
    assert "cudnn_benchmark, tf32 are CUDA kernel switches; on device cpu they change nothing" in run[1]
