"""Bad input for the CNN task: one line naming the file and field, exit 2, nothing written, from
`mlbench run` and from each task program started by hand (PyTorch, tch/candle, burn)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, mlbench, rust_binary, write_yaml
from mlbench import datasets as ds
from mlbench.yamlio import dump_yaml
from test_bad_input import assert_bad_matrix, assert_usage_error

GOOD: dict[str, Any] = {"task": "cnn", "repetitions": 1, "processes": 1, "warmup": 0,
                        "datasets": ["synthetic_images"], "algorithms": {"lenet": {"epochs": 1}}}

MATRIX_CASES = {
    "unknown architecture": ({"algorithms": {"resnet99": {}}}, "algorithms.resnet99: unknown algorithm"),
    "unknown key": ({"algorithms": {"lenet": {"epochs": 1, "depth": 3}}}, "Additional properties are not allowed"),
    "epochs 0": ({"algorithms": {"lenet": {"epochs": 0}}}, "epochs: 0 is less than the minimum of 1"),
    "non-finite learning rate": ({"algorithms": {"lenet": {"learning_rate": math.inf}}}, "learning_rate"),
    "batch above the training set": ({"algorithms": {"lenet": {"batch_size": 5000}}},
                                     "batch_size: 5000 is above the training set of synthetic_images (2000 samples)"),
    "missing weights file": ({"algorithms": {"lenet": {"pretrained": True, "weights_file": "/nonexistent.st"}}},
                             "weights_file: /nonexistent.st does not exist"),
    "not an image dataset": ({"datasets": ["iris"]}, "datasets: unknown dataset 'iris'"),
}


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    ds.prepare(["synthetic_images"], folder, log=lambda _: None)
    return folder


@pytest.mark.parametrize("case", list(MATRIX_CASES))
def test_bad_cnn_matrix(case: str, tmp_path: Path, image_dir: Path) -> None:
    change, message = MATRIX_CASES[case]
    assert_bad_matrix(GOOD | change, message, tmp_path, image_dir)


def test_images_too_small_for_the_architecture_are_refused_before_any_side_runs(tmp_path: Path) -> None:
    """LeNet's 5x5 convolutions need more than 8x8 pixels: found by the first pass of the network,
    when the shared initial weights are written; one line naming the job's algorithm and dataset,
    exit 2, and the new run folder removed."""
    data = tmp_path / "data"
    ds.prepare(["synthetic_images_micro"], data, log=lambda _: None)
    matrix = write_yaml(tmp_path / "m.yaml", GOOD | {"datasets": ["synthetic_images_micro"],
                                                      "algorithms": {"lenet": {"epochs": 1, "batch_size": 16}}})
    out = tmp_path / "out"
    result = mlbench("run", matrix, "--out", out, "--datasets-dir", data)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "lenet on synthetic_images_micro: dataset: synthetic_images_micro's inputs of 3x8x8 do not fit lenet" \
        in last, last
    assert not out.exists()


def test_gpu_profile_without_a_gpu_is_refused(tmp_path: Path, image_dir: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    matrix = write_yaml(tmp_path / "m.yaml", GOOD)
    out = tmp_path / "out"
    result = mlbench("run", matrix, "--hw", "gpu", "--out", out, "--datasets-dir", image_dir)
    assert_usage_error(result, "--hw gpu: no CUDA device visible to torch")
    assert not out.exists()


def job_file(folder: Path, image_dir: Path, language: str, framework: str, precision: str = "float32",
             task: str = "cnn", algorithm: str = "lenet", dataset: str = "synthetic_images", **params: Any) -> Path:
    hyper = {"epochs": 1, "batch_size": 64, "optimizer": "sgd", "learning_rate": 0.01, "momentum": 0.9,
             "weight_decay": 1e-4, "target_accuracy": 0.8, "pretrained": False, "weights_file": "",
             "cudnn_benchmark": False, "tf32": False} | params
    job = {"schema_version": 3, "job_id": "0123456789abcdef", "run": "bad", "task": task,
           "domain": "deep_learning", "language": language, "framework": framework, "algorithm": algorithm,
           "dataset": dataset, "datasets_dir": str(image_dir), "hyperparameters": hyper,
           "hardware_profile": "cpu", "device": "cpu", "threads": 1, "precision": precision, "repetitions": 1,
           "warmup": 0, "seed": 1, "timeout_s": 60, "predictions_dir": str(folder / "predictions"),
           "min_sample_s": 0.0, "processes": 1, "fixtures_dir": str(folder / "fixtures"),
           "inference_batch_sizes": [1]}
    path = folder / f"{framework}.yaml"
    path.write_text(dump_yaml(job))
    return path


def run_program(task: str, binary: str | None, config: Path, out: Path) -> subprocess.CompletedProcess:
    """A task program started by hand on one job file: the Python task (`binary` None) or a Rust binary."""
    command = ([sys.executable, str(ROOT / f"python/tasks/deep_learning/{task}.py")] if binary is None
               else [str(rust_binary(binary))])
    return subprocess.run([*command, "--config", str(config), "--out", str(out)], capture_output=True, text=True,
                          timeout=120)


PROGRAMS = {"pytorch": ("python", None), "tch": ("rust", "cnn"), "candle": ("rust", "cnn"),
            "burn": ("rust", "cnn-burn")}
TASK_CASES = {
    "batch above the training set": ({"batch_size": 4000}, "batch_size: 4000 is above the training set"),
    "non-finite learning rate": ({"learning_rate": math.nan}, "learning_rate"),
    "epochs 0": ({"epochs": 0}, "epochs"),
    "unknown optimizer": ({"optimizer": "lbfgs"}, "optimizer"),
}


@pytest.mark.slow
@pytest.mark.parametrize("framework", list(PROGRAMS))
@pytest.mark.parametrize("case", list(TASK_CASES))
def test_task_program_refuses_bad_job(framework: str, case: str, tmp_path: Path, image_dir: Path) -> None:
    language, binary = PROGRAMS[framework]
    params, message = TASK_CASES[case]
    config = job_file(tmp_path, image_dir, language, framework, **params)
    out = tmp_path / "records.jsonl"
    result = run_program("cnn", binary, config, out)
    assert_usage_error(result, str(config), message)
    assert not out.exists() and not (tmp_path / "predictions").exists()


@pytest.mark.slow
@pytest.mark.parametrize("framework", list(PROGRAMS))
def test_missing_initial_weights_is_a_usage_error(framework: str, tmp_path: Path, image_dir: Path) -> None:
    language, binary = PROGRAMS[framework]
    config = job_file(tmp_path, image_dir, language, framework)
    out = tmp_path / "records.jsonl"
    result = run_program("cnn", binary, config, out)
    assert_usage_error(result, "init-1.safetensors")
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("framework", list(PROGRAMS))
def test_a_precision_other_than_float32_or_float64_is_a_usage_error(framework: str, tmp_path: Path,
                                                                    image_dir: Path) -> None:
    language, binary = PROGRAMS[framework]
    config = job_file(tmp_path, image_dir, language, framework, precision="float16")
    out = tmp_path / "records.jsonl"
    result = run_program("cnn", binary, config, out)
    assert_usage_error(result, str(config), "precision", "float16", "float32 or float64")
    assert not out.exists()
