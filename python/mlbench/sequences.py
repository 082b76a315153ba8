"""Sequence datasets in the `sequences` layout: float32 features (N, T, F), T steps of F features each,
stored ready to use (no rule applied on load, so every language reads the same numbers), and int64
class labels.

Sources: Fashion-MNIST read row by row (28 steps of 28 pixels, normalised at preparation by the images
rule of mlbench.images) and the adding problem (Hochreiter and Schmidhuber 1997) as a two-class task:
at each step a value drawn uniformly from [0, 1) and a marker, 1 at exactly two steps (one in each
half of the sequence) and 0 elsewhere; the label says whether the two marked values sum above 1. A net
that cannot carry the first marked value to the end scores 0.5 (the classes are balanced by
symmetry); the difficulty grows with the length T (50 and 200 in the grid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlbench import images


@dataclass(frozen=True)
class SequenceSource:
    """Train and test sequences (float32, N x T x F), labels 0..k-1 and where they came from."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def rows(source: images.ImageSource) -> SequenceSource:
    """A one-channel image set read row by row: normalised as the images layout does (mean and std of
    the training pixels), each image then 28 steps of 28 features."""
    if source.X_train.shape[1] != 1:
        raise ValueError("row-by-row sequences need one-channel images")
    meta = {"normalise": images.normalisation(source.X_train)}

    def steps(pixels: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(images.normalise(pixels, meta)[:, 0])

    return SequenceSource(steps(source.X_train), source.y_train, steps(source.X_test), source.y_test,
                          f"{source.source}; read row by row ({images.NORMALISE_RULE})")


def fashion_mnist_rows(download: bool) -> SequenceSource:
    return rows(images.fashion_mnist(download))


def fashion_mnist_rows_2k(download: bool) -> SequenceSource:
    return rows(images.fashion_mnist_2k(download))


def adding(n_train: int, n_test: int, steps: int, seed: int) -> SequenceSource:
    """The adding problem as a balanced two-class task (module docstring)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    values = rng.uniform(0.0, 1.0, size=(n, steps)).astype(np.float32)
    markers = np.zeros((n, steps), dtype=np.float32)
    half = steps // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, steps, size=n)
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    total = values[np.arange(n), first].astype(np.float64) + values[np.arange(n), second]
    labels = (total > 1.0).astype(np.int64)
    X = np.ascontiguousarray(np.stack([values, markers], axis=2))
    return SequenceSource(X[:n_train], labels[:n_train], X[n_train:], labels[n_train:],
                          f"adding problem (Hochreiter and Schmidhuber 1997) as two classes (marked values sum "
                          f"above 1), seed {seed}: {steps} steps x 2 features, {n_train:,} / {n_test:,}")


def adding_50(download: bool) -> SequenceSource:
    return adding(5000, 1000, 50, seed=12)


def adding_200(download: bool) -> SequenceSource:
    return adding(5000, 1000, 200, seed=13)


def adding_tiny(download: bool) -> SequenceSource:
    """64 / 16 sequences of 12 steps: the recurrent nets' parity tests, in seconds."""
    return adding(64, 16, 12, seed=14)
