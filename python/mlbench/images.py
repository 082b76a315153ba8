"""Image datasets in the `images` layout: uint8 pixels (N, C, H, W) and int64 labels, normalised on
load by the one rule meta.json states, identically in every language:

    x = (pixel / 255 - mean[c]) / std[c]    in float32, mean and std per channel of the training set

Sources: Fashion-MNIST from Debian's `dataset-fashion-mnist` idx files; MNIST, CIFAR-10 and CIFAR-100
from their standard distribution files when a user puts them in datasets/raw/ (RAW_HINT); and seeded
synthetic sets (per-class templates, random shifts and noise: learnable, not trivial).
"""

from __future__ import annotations

import gzip
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlbench.paths import DATASETS

FASHION_MNIST_DIR = Path(os.environ.get("MLBENCH_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_MNIST_HINT = ("Fashion-MNIST idx files not found in {dir}: install them with "
                      "`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or set MLBENCH_FASHION_MNIST_DIR")
NORMALISE_RULE = "x = (pixel / 255 - mean[c]) / std[c], float32, per channel; mean and std of the training pixels"
SUBSET_SEED = 20240502
RAW_DIR = Path(os.environ.get("MLBENCH_RAW_DATA", DATASETS / "raw"))
RAW_HINT = ("not found in {dir}: put {files} there (the standard distribution files; nothing is downloaded) "
            "and run `make datasets`")


@dataclass(frozen=True)
class ImageSource:
    """Train and test images (uint8, N x C x H x W), labels 0..k-1 and where they came from."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def read_idx(path: Path) -> np.ndarray:
    """An idx file (LeCun's MNIST format, gzip or plain): big-endian header, then unsigned bytes."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an idx file of unsigned bytes")
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape}, body has {body.size} bytes")
    return body.reshape(shape)


def find_idx(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(FASHION_MNIST_HINT.format(dir=folder))


def fashion_mnist_arrays(folder: Path = FASHION_MNIST_DIR) -> tuple[np.ndarray, ...]:
    X_train = read_idx(find_idx(folder, "train-images-idx3-ubyte"))[:, None]
    y_train = read_idx(find_idx(folder, "train-labels-idx1-ubyte")).astype(np.int64)
    X_test = read_idx(find_idx(folder, "t10k-images-idx3-ubyte"))[:, None]
    y_test = read_idx(find_idx(folder, "t10k-labels-idx1-ubyte")).astype(np.int64)
    return X_train, y_train, X_test, y_test


def fashion_mnist(download: bool) -> ImageSource:
    X_train, y_train, X_test, y_test = fashion_mnist_arrays()
    return ImageSource(X_train, y_train, X_test, y_test,
                       f"Fashion-MNIST (Xiao et al. 2017), idx files from {FASHION_MNIST_DIR}: 60,000 / 10,000")


def fashion_mnist_2k(download: bool) -> ImageSource:
    """A seeded random 2,000 / 500 subset of Fashion-MNIST, for smoke runs."""
    X_train, y_train, X_test, y_test = fashion_mnist_arrays()
    rng = np.random.default_rng(SUBSET_SEED)
    train, test = rng.permutation(len(X_train))[:2000], rng.permutation(len(X_test))[:500]
    return ImageSource(X_train[train], y_train[train], X_test[test], y_test[test],
                       f"Fashion-MNIST (Xiao et al. 2017), seeded random subset (seed {SUBSET_SEED}): 2,000 / 500")


def mnist(download: bool) -> ImageSource:
    """MNIST (LeCun et al. 1998) from its four idx files in datasets/raw/mnist/."""
    folder = RAW_DIR / "mnist"
    try:
        X_train, y_train, X_test, y_test = fashion_mnist_arrays(folder)
    except FileNotFoundError:
        raise FileNotFoundError(RAW_HINT.format(dir=folder, files="train-images-idx3-ubyte.gz, "
                                                "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
                                                "t10k-labels-idx1-ubyte.gz")) from None
    return ImageSource(X_train, y_train, X_test, y_test, f"MNIST (LeCun et al. 1998), idx files from {folder}")


def cifar_members(stem: str, archive_name: str, names: list[str]) -> dict[str, dict]:
    """The pickled batches of the CIFAR python distribution, from the extracted folder
    (datasets/raw/<stem>/) or the archive as distributed (datasets/raw/<archive_name>)."""
    folder, archive = RAW_DIR / stem, RAW_DIR / archive_name
    if folder.is_dir():
        return {name: pickle.loads((folder / name).read_bytes(), encoding="bytes") for name in names}
    if archive.is_file():
        with tarfile.open(archive) as tar:
            return {name: pickle.loads(tar.extractfile(f"{stem}/{name}").read(), encoding="bytes")
                    for name in names}
    raise FileNotFoundError(RAW_HINT.format(dir=RAW_DIR, files=f"{archive_name} (or its extracted {stem}/ folder)"))


def cifar_arrays(batch: dict, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)  # rows are R, G, B planes
    return data, np.asarray(batch[label_key], dtype=np.int64)


def cifar10(download: bool) -> ImageSource:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = cifar_members("cifar-10-batches-py", "cifar-10-python.tar.gz", names)
    train = [cifar_arrays(batches[n], b"labels") for n in names[:5]]
    X_test, y_test = cifar_arrays(batches["test_batch"], b"labels")
    return ImageSource(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), X_test, y_test,
                       "CIFAR-10 (Krizhevsky 2009), python distribution files from datasets/raw")


def cifar100(download: bool) -> ImageSource:
    batches = cifar_members("cifar-100-python", "cifar-100-python.tar.gz", ["train", "test"])
    X_train, y_train = cifar_arrays(batches["train"], b"fine_labels")
    X_test, y_test = cifar_arrays(batches["test"], b"fine_labels")
    return ImageSource(X_train, y_train, X_test, y_test,
                       "CIFAR-100 (Krizhevsky 2009), fine labels, python distribution files from datasets/raw")


def synthetic(n_train: int, n_test: int, channels: int, size: int, seed: int) -> ImageSource:
    """Ten classes, each a smooth random template; every image is its class template shifted by up
    to 3 pixels, scaled by a random contrast, plus Gaussian pixel noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(10, channels, size // 4, size // 4))
    templates = np.kron(coarse, np.ones((4, 4)))  # 10 x C x size x size, blocky but smooth enough
    n = n_train + n_test
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    shifts = rng.integers(-3, 4, size=(n, 2))
    contrast = rng.uniform(0.6, 1.4, size=n)
    images = np.empty((n, channels, size, size))
    for i in range(n):
        images[i] = np.roll(templates[labels[i]], tuple(shifts[i]), axis=(1, 2)) * contrast[i]
    images += rng.normal(scale=1.2, size=images.shape)
    pixels = np.clip(np.round(128 + 40 * images), 0, 255).astype(np.uint8)
    y = labels.astype(np.int64)
    return ImageSource(pixels[:n_train], y[:n_train], pixels[n_train:], y[n_train:],
                       f"synthetic: 10 class templates (seed {seed}), shifts up to 3 px, contrast 0.6-1.4, "
                       f"Gaussian noise; {channels}x{size}x{size}, {n_train:,} / {n_test:,}")


def synthetic_images(download: bool) -> ImageSource:
    return synthetic(2000, 500, 1, 28, seed=8)


def synthetic_images_rgb(download: bool) -> ImageSource:
    return synthetic(5000, 1000, 3, 32, seed=9)


def synthetic_images_tiny(download: bool) -> ImageSource:
    """256 / 64 RGB images of 16x16: the deep networks' parity tests and smoke, in seconds."""
    return synthetic(256, 64, 3, 16, seed=10)


def synthetic_images_micro(download: bool) -> ImageSource:
    """64 / 16 RGB images of 8x8: parity of the costliest networks (VGG-16 pads them to 32x32)."""
    return synthetic(64, 16, 3, 8, seed=11)


def normalisation(X_train: np.ndarray) -> dict[str, object]:
    """Per-channel mean and std of the training pixels (scaled to [0, 1]), as float32 values."""
    scaled = X_train.astype(np.float64) / 255.0
    mean = scaled.mean(axis=(0, 2, 3)).astype(np.float32)
    std = scaled.std(axis=(0, 2, 3)).astype(np.float32)
    return {"rule": NORMALISE_RULE, "mean": [float(m) for m in mean], "std": [float(s) for s in std]}


def normalise(pixels: np.ndarray, meta: dict) -> np.ndarray:
    """The rule of meta.json, in float32, in the order every language computes it."""
    mean = np.asarray(meta["normalise"]["mean"], dtype=np.float32)[None, :, None, None]
    std = np.asarray(meta["normalise"]["std"], dtype=np.float32)[None, :, None, None]
    return (pixels.astype(np.float32) / np.float32(255.0) - mean) / std
