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

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from mlbench import datasets as ds
from training_parity import (
    check_cuda_parity,
    check_training_parity,
    make_job,
    run_side,
)


@pytest.fixture(scope="module")
def image_datasets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("image_datasets")
    ds.prepare(["synthetic_images", "synthetic_images_tiny", "synthetic_images_micro"], folder, log=lambda _: None)
    return folder


CASES = {
    "lenet-sgd-gray": ("lenet", "synthetic_images", {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.9}),
    # The RGB cases on the 256 16x16 images of synthetic_images_tiny (LeNet without padding ends on 1x1).
    "lenet-adamw-rgb": ("lenet", "synthetic_images_tiny", {"optimizer": "adamw", "learning_rate": 0.002}),
    "simple-sgd-bn-residual": ("simple_cnn", "synthetic_images",
                               {"optimizer": "sgd", "learning_rate": 0.01, "use_batch_norm": True,
                                "use_residual": True}),
    "simple-adamw-plain": ("simple_cnn", "synthetic_images_tiny",
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


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_every_rust_framework_does_the_same_training_as_pytorch(case: str, tmp_path: Path,
                                                               image_datasets: Path) -> None:
    algorithm, dataset, params = CASES[case]
    job = make_job(tmp_path, image_datasets, algorithm, dataset, **params)
    failures = check_training_parity(case, job, tmp_path)
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


@pytest.mark.slow
@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
def test_tch_does_the_same_training_as_pytorch_on_cuda(case: str, tmp_path: Path, image_datasets: Path) -> None:
    """On a GPU both sides call the same libtorch CUDA kernels (cuDNN with libtorch's defaults on
    each side); candle joins where its binary is the `cuda` build (make build HW=gpu); burn has no
    CUDA build offline (README). Prints the gaps it measured."""
    algorithm, dataset, params = CASES[case]
    job = make_job(tmp_path, image_datasets, algorithm, dataset, device="cuda", **params)
    failures = check_cuda_parity(case, job, tmp_path)
    assert not failures, "\n".join(failures)
