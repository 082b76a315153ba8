"""CNN parity: PyTorch against tch, candle and burn from the same initial weights on the same batches.

Each side runs its task program with `--parity DIR` (mlbench.training.parity and its Rust twin):
eval-mode logits of the first test images from the shared initial weights, after two optimizer
steps on the first batches of the shared order, and the training loss and logits after one full
epoch. tch runs libtorch's own kernels, so it matches to rounding; candle and burn have their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file

from conftest import ROOT, rust_binary
from mlbench import datasets as ds
from mlbench.config import Job, load_task_spec
from mlbench.runner import torch_lib
from mlbench.training import weights_sha256

RUST = {"tch": "cnn", "candle": "cnn", "burn": "cnn-burn"}
INIT_RTOL = 1e-5  # forward logits of the same weights: float32 rounding of different kernels
STEP_RTOL = 1e-4  # after two optimizer steps (the second with momentum / Adam moments)
EPOCH_LOSS_RTOL = 0.01  # mean training loss over one epoch (31 steps): the 1%


@pytest.fixture(scope="module")
def image_datasets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("image_datasets")
    ds.prepare(["synthetic_images", "synthetic_images_rgb"], folder, log=lambda _: None)
    return folder


def make_job(folder: Path, datasets_dir: Path, algorithm: str, dataset: str, device: str = "cpu",
             **params: object) -> Job:
    spec = load_task_spec("cnn")
    full = {k: v["default"] for k, v in spec.algorithms[algorithm].items()} | params
    return Job(run="parity", task="cnn", domain="deep_learning", language="python", framework="pytorch",
               algorithm=algorithm, dataset=dataset, datasets_dir=str(datasets_dir), hyperparameters=full,
               hardware_profile="gpu" if device == "cuda" else "cpu", device=device, threads=1,
               precision="float32", repetitions=1, warmup=0, seed=7, timeout_s=300.0,
               predictions_dir=str(folder / "predictions"), fixtures_dir=str(folder / "fixtures"),
               inference_batch_sizes=[1])


def run_side(job: Job, folder: Path, *extra: str) -> subprocess.CompletedProcess:
    path = folder / f"{job.framework}.yaml"
    path.write_text(yaml.safe_dump(job.to_dict(), sort_keys=False))
    if job.language == "python":
        command = [sys.executable, str(ROOT / "python/tasks/deep_learning/cnn.py")]
    else:
        command = [str(rust_binary(RUST[job.framework]))]
    env = os.environ.copy()
    if job.language == "rust" and (lib := torch_lib()):  # this Python's libtorch, as the runner gives it
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [lib, env.get("LD_LIBRARY_PATH")]))
    return subprocess.run([*command, "--config", str(path), "--out", str(folder / "records.jsonl"), *extra],
                          capture_output=True, text=True, timeout=300, env=env)


def parity(folder: Path, job: Job, frameworks: tuple[str, ...] = tuple(RUST)) -> dict[str, dict[str, np.ndarray]]:
    """Fixtures written once by the Python task, then each side's parity outputs."""
    done = run_side(job, folder, "--fixtures")
    assert done.returncode == 0, done.stderr
    out = {}
    sides = [job] + [replace(job, language="rust", framework=f, job_id="") for f in frameworks]
    for side in sides:
        target = folder / f"parity-{side.framework}"
        done = run_side(side, folder, "--parity", str(target))
        assert done.returncode == 0, f"{side.framework}: {done.stderr}"
        out[side.framework] = {p.stem: np.load(p) for p in target.glob("*.npy")}
        out[side.framework]["weights_sha256"] = json.loads((target / "weights_sha256.json").read_text())
    return out


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-30))


CASES = {
    "lenet-sgd-gray": ("lenet", "synthetic_images", {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.9}),
    "lenet-adamw-rgb": ("lenet", "synthetic_images_rgb", {"optimizer": "adamw", "learning_rate": 0.002}),
    "simple-sgd-bn-residual": ("simple_cnn", "synthetic_images",
                               {"optimizer": "sgd", "learning_rate": 0.01, "use_batch_norm": True,
                                "use_residual": True}),
    "simple-adamw-plain": ("simple_cnn", "synthetic_images_rgb",
                           {"optimizer": "adamw", "learning_rate": 0.002, "use_batch_norm": False}),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_every_rust_framework_does_the_same_training_as_pytorch(case: str, tmp_path: Path,
                                                               image_datasets: Path) -> None:
    algorithm, dataset, params = CASES[case]
    outputs = parity(tmp_path, make_job(tmp_path, image_datasets, algorithm, dataset, **params))
    reference = outputs.pop("pytorch")
    assert set(outputs) == set(RUST)
    failures = []
    file_digests = weights_sha256(load_file(str(tmp_path / "fixtures" / "init-7.safetensors")))
    assert reference["weights_sha256"] == file_digests  # PyTorch holds the file's values, to the bit
    for framework, side in outputs.items():
        if side["weights_sha256"] != file_digests:
            differing = sorted(k for k in file_digests if side["weights_sha256"].get(k) != file_digests[k])
            failures.append(f"{framework}: loaded weights differ from the file in {differing}")
        gaps = {"init logits": (relative(reference["init_logits"], side["init_logits"]), INIT_RTOL),
                "logits after 2 steps": (relative(reference["step_logits"], side["step_logits"]), STEP_RTOL),
                "epoch loss": (relative(reference["epoch_loss"], side["epoch_loss"]), EPOCH_LOSS_RTOL)}
        failures += [f"{framework}: {name} differ by {gap:.2e} (allowed {allowed:.0e})"
                     for name, (gap, allowed) in gaps.items() if not gap <= allowed]
    assert not failures, "\n".join(failures)
    if params["optimizer"] == "sgd":  # tch calls libtorch's kernels in PyTorch's order: to the bit
        for name in ("init_logits", "step_logits", "epoch_loss", "epoch_logits"):
            np.testing.assert_array_equal(reference[name], outputs["tch"][name], err_msg=f"tch {name}")


@pytest.mark.slow
def test_the_shared_order_and_weights_are_what_every_side_reads(tmp_path: Path, image_datasets: Path) -> None:
    job = make_job(tmp_path, image_datasets, "lenet", "synthetic_images", epochs=3)
    assert run_side(job, tmp_path, "--fixtures").returncode == 0
    order = np.load(tmp_path / "fixtures" / "order-7.npy")
    n_train = len(np.load(image_datasets / "synthetic_images" / "y_train.npy"))
    assert order.shape == (3, n_train)
    for epoch in order:  # each row a permutation of the training set, rows differ
        np.testing.assert_array_equal(np.sort(epoch), np.arange(n_train))
    assert not np.array_equal(order[0], order[1])
    weights = load_file(str(tmp_path / "fixtures" / "init-7.safetensors"))
    assert weights["conv1.weight"].shape == (6, 1, 5, 5) and weights["fc3.weight"].shape == (10, 84)


def cuda_visible() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.slow
@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
def test_tch_does_the_same_training_as_pytorch_on_cuda(case: str, tmp_path: Path, image_datasets: Path) -> None:
    """On a GPU both sides call the same libtorch CUDA kernels (cuDNN with libtorch's defaults on
    each side); candle and burn have no CUDA build here (README). Prints the gaps it measured."""
    if not cuda_visible():
        pytest.skip("no CUDA device visible to torch")
    algorithm, dataset, params = CASES[case]
    outputs = parity(tmp_path, make_job(tmp_path, image_datasets, algorithm, dataset, device="cuda", **params),
                     frameworks=("tch",))
    reference, side = outputs["pytorch"], outputs["tch"]
    assert side["weights_sha256"] == reference["weights_sha256"]
    gaps = {"init logits": (relative(reference["init_logits"], side["init_logits"]), INIT_RTOL),
            "logits after 2 steps": (relative(reference["step_logits"], side["step_logits"]), STEP_RTOL),
            "epoch loss": (relative(reference["epoch_loss"], side["epoch_loss"]), EPOCH_LOSS_RTOL)}
    print(f"{case}: tch vs PyTorch on CUDA: " + ", ".join(f"{k} {g:.1e}" for k, (g, _) in gaps.items()))
    failures = [f"{name} differ by {gap:.2e} (allowed {allowed:.0e})" for name, (gap, allowed) in gaps.items()
                if not gap <= allowed]
    assert not failures, "\n".join(failures)
