"""CNN parity: PyTorch against tch, candle and burn from the same initial weights on the same batches.

Each side runs its task program with `--parity DIR` (mlbench.training.parity and its Rust twin):
eval-mode logits of the first test images from the shared initial weights, after two optimizer
steps on the first batches of the shared order (with every parameter and batch-norm running
statistic), and the training loss and logits after one full epoch.

Two runs per case, from the same fixtures:
- **float64**: every side computes in float64. Doing the same arithmetic, they then agree to float64
  rounding (seen through float32 outputs), so the initial logits, the steps' loss and logits and
  every tensor after the steps must agree to F64_RTOL. This is where a wrong convention (momentum,
  variance, gate order, padding, a loss computed in float32) shows, undiluted. The float64 run skips
  the epoch: burn's optimizers take their constants as float32 (AdamW's betas and epsilon, SGD's
  weight decay), which two steps do not show and an epoch of Adam amplifies (README, "Parity").
- **float32**, what the benchmarks run: one forward pass (the initial logits) to INIT_RTOL, the
  epoch's loss to 1%, and tch (libtorch's kernels, called in PyTorch's order) to the bit. What the
  steps do in float32 is printed, not asserted: once float64 shows the same arithmetic, a float32
  gap is rounding, and batch norm makes it large: a batch-norm bias after two steps is a sum of
  thousands of gradient terms that nearly cancel, which PyTorch accumulates in float64 on a CPU and
  candle and burn in float32, and on the micro set MobileNetV2's last batch norms normalise over 32
  values (measured: burn's logits after two steps 2.0e-2 from PyTorch's in float32, 8e-8 in float64).
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
INIT_RTOL = 1e-5  # float32 forward logits of the same weights: rounding of different kernels
EPOCH_LOSS_RTOL = 0.01  # float32 mean training loss over one epoch: the 1%
# float64: every output and tensor, relative to the tensor's largest value. The outputs are float32,
# so two sides agreeing to float64 rounding differ by at most one float32 rounding (6e-8). A tensor
# whose values all lie below F64_SCALE is compared to F64_RTOL x F64_SCALE absolutely: such are the
# ones that are zero but for rounding (a bias before batch norm gets a zero gradient; MobileNetV2's
# were ~1e-19 after two steps, on every side).
F64_RTOL = 1e-6
F64_SCALE = 1e-3
# burn's AdamWConfig holds beta1, beta2 and epsilon as f32: 0.999 in float32 is 1 - 9.99987e-4, a
# 1.3e-5 relative error in (1 - beta2) that two Adam steps carry into the logits (measured 2e-6).
F64_RTOL_BURN_ADAMW = 2e-5
CUDA_STEP_RTOL = 1e-4  # tch and PyTorch on CUDA call the same kernels (cuDNN may pick different ones)


@pytest.fixture(scope="module")
def image_datasets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("image_datasets")
    ds.prepare(["synthetic_images", "synthetic_images_rgb", "synthetic_images_micro"], folder, log=lambda _: None)
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
    """Each side's parity outputs (the fixtures written first by the Python task: `--fixtures`)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    sides = [job] + [replace(job, language="rust", framework=f, job_id="") for f in frameworks]
    for side in sides:
        target = folder / f"parity-{side.framework}"
        done = run_side(side, folder, "--parity", str(target))
        assert done.returncode == 0, f"{side.framework}: {done.stderr}"
        out[side.framework] = {p.stem: np.load(p) for p in target.glob("*.npy")}
        out[side.framework]["step_weights"] = {p.stem: np.load(p) for p in (target / "step_weights").glob("*.npy")}
        out[side.framework]["weights_sha256"] = json.loads((target / "weights_sha256.json").read_text())
    return out


def relative(a: np.ndarray, b: np.ndarray, scale: float = 1e-30) -> float:
    """max |a - b| / max |a| (max |a| taken as at least `scale`)."""
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), scale))


CASES = {
    "lenet-sgd-gray": ("lenet", "synthetic_images", {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.9}),
    "lenet-adamw-rgb": ("lenet", "synthetic_images_rgb", {"optimizer": "adamw", "learning_rate": 0.002}),
    "simple-sgd-bn-residual": ("simple_cnn", "synthetic_images",
                               {"optimizer": "sgd", "learning_rate": 0.01, "use_batch_norm": True,
                                "use_residual": True}),
    "simple-adamw-plain": ("simple_cnn", "synthetic_images_rgb",
                           {"optimizer": "adamw", "learning_rate": 0.002, "use_batch_norm": False}),
    # ResNet-18 on 64 RGB 8x8 images: both stems, batch norm throughout, projection shortcuts.
    "resnet18-cifar-sgd": ("resnet18", "synthetic_images_micro",
                           {"stem": "cifar", "optimizer": "sgd", "learning_rate": 0.01, "batch_size": 16}),
    "resnet18-imagenet-adamw": ("resnet18", "synthetic_images_micro",
                                {"stem": "imagenet", "optimizer": "adamw", "learning_rate": 0.001, "batch_size": 16}),
    "attention-sgd-gray": ("attention_cnn", "synthetic_images", {"optimizer": "sgd", "learning_rate": 0.05}),
    # On 64 RGB 8x8 images: VGG-16 with batch norm (zero-padded to 32x32 inside the network), and
    # MobileNetV2's depthwise convolutions and ReLU6. Dropout off: its masks come from each
    # framework's own RNG.
    "vgg16-bn-sgd": ("vgg16", "synthetic_images_micro",
                     {"optimizer": "sgd", "learning_rate": 0.01, "batch_size": 16, "dropout_rate": 0.0}),
    "mobilenet-sgd": ("mobilenet", "synthetic_images_micro",
                      {"optimizer": "sgd", "learning_rate": 0.01, "batch_size": 32, "dropout_rate": 0.0}),
}


def gaps_float64(reference: dict, side: dict) -> dict[str, float]:
    """Every output and every tensor after the steps, as relative gaps (a missing tensor: inf)."""
    gaps = {name: relative(reference[name], side[name], F64_SCALE)
            for name in ("init_logits", "step_logits", "step_loss")}
    for name, values in reference["step_weights"].items():
        gaps[f"{name} after 2 steps"] = (relative(values, side["step_weights"][name], F64_SCALE)
                                         if name in side["step_weights"] else float("inf"))
    return gaps


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_every_rust_framework_does_the_same_training_as_pytorch(case: str, tmp_path: Path,
                                                               image_datasets: Path) -> None:
    algorithm, dataset, params = CASES[case]
    job = make_job(tmp_path, image_datasets, algorithm, dataset, **params)
    assert run_side(job, tmp_path, "--fixtures").returncode == 0
    file_digests = weights_sha256(load_file(str(tmp_path / "fixtures" / "init-7.safetensors")))
    failures = []
    for precision in ("float64", "float32"):
        outputs = parity(tmp_path / precision, replace(job, precision=precision))
        reference = outputs.pop("pytorch")
        assert set(outputs) == set(RUST)
        assert reference["weights_sha256"] == file_digests  # PyTorch holds the file's values, to the bit
        for framework, side in outputs.items():
            if precision == "float64":
                bound = F64_RTOL_BURN_ADAMW if (framework, params["optimizer"]) == ("burn", "adamw") else F64_RTOL
                gaps = {name: (gap, bound) for name, gap in gaps_float64(reference, side).items()}
            else:
                if side["weights_sha256"] != file_digests:
                    differing = sorted(k for k in file_digests if side["weights_sha256"].get(k) != file_digests[k])
                    failures.append(f"{framework}: loaded weights differ from the file in {differing}")
                gaps = {"init logits": (relative(reference["init_logits"], side["init_logits"]), INIT_RTOL),
                        "epoch loss": (relative(reference["epoch_loss"], side["epoch_loss"]), EPOCH_LOSS_RTOL)}
                print(f"{case} float32 {framework}: logits after 2 steps "
                      f"{relative(reference['step_logits'], side['step_logits']):.1e} (not asserted)")
            failures += [f"{precision} {framework}: {name} differ by {gap:.2e} (allowed {allowed:.0e})"
                         for name, (gap, allowed) in gaps.items() if not gap <= allowed]
            worst = max(((gap / allowed, name) for name, (gap, allowed) in gaps.items()))
            print(f"{case} {precision} {framework}: worst gap/allowed {worst[0]:.2f} ({worst[1]})")
        if precision == "float32" and params["optimizer"] == "sgd":  # libtorch's kernels in PyTorch's order
            for name in ("init_logits", "step_logits", "epoch_loss", "epoch_logits"):
                np.testing.assert_array_equal(reference[name], outputs["tch"][name], err_msg=f"tch {name}")
    assert not failures, "\n".join(failures)


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
    job = make_job(tmp_path, image_datasets, algorithm, dataset, device="cuda", **params)
    assert run_side(job, tmp_path, "--fixtures").returncode == 0
    outputs = parity(tmp_path, job, frameworks=("tch",))
    reference, side = outputs["pytorch"], outputs["tch"]
    assert side["weights_sha256"] == reference["weights_sha256"]
    gaps = {"init logits": (relative(reference["init_logits"], side["init_logits"]), INIT_RTOL),
            "logits after 2 steps": (relative(reference["step_logits"], side["step_logits"]), CUDA_STEP_RTOL),
            "epoch loss": (relative(reference["epoch_loss"], side["epoch_loss"]), EPOCH_LOSS_RTOL)}
    print(f"{case}: tch vs PyTorch on CUDA: " + ", ".join(f"{k} {g:.1e}" for k, (g, _) in gaps.items()))
    failures = [f"{name} differ by {gap:.2e} (allowed {allowed:.0e})" for name, (gap, allowed) in gaps.items()
                if not gap <= allowed]
    assert not failures, "\n".join(failures)
