"""Image datasets: the images layout, the normalisation rule, and the converters of the standard
distribution formats (idx for MNIST/Fashion-MNIST, pickled batches for CIFAR), on tiny files
written here in those formats."""

from __future__ import annotations

import gzip
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from mlbench import datasets as ds
from mlbench import images


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_round_trip_and_mnist_conversion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    raw = tmp_path / "raw" / "mnist"
    raw.mkdir(parents=True)
    train, test = rng.integers(0, 256, (20, 28, 28)), rng.integers(0, 256, (6, 28, 28))
    write_idx(raw / "train-images-idx3-ubyte.gz", train)
    write_idx(raw / "train-labels-idx1-ubyte.gz", np.arange(20) % 10)
    write_idx(raw / "t10k-images-idx3-ubyte.gz", test)
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.arange(6) % 10)
    monkeypatch.setattr(images, "RAW_DIR", tmp_path / "raw")
    ds.prepare(["mnist"], tmp_path / "out", log=lambda _: None)
    meta = json.loads((tmp_path / "out" / "mnist" / "meta.json").read_text())
    assert meta["layout"] == "images" and meta["shape"] == [1, 28, 28] and meta["n_classes"] == 10
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "mnist" / "X_train.npy")[:, 0], train)
    split = ds.load_split("mnist", tmp_path / "out")
    assert split.X_train.dtype == np.float32
    mean, std = meta["normalise"]["mean"][0], meta["normalise"]["std"][0]
    expected = (np.float32(train[3, 5, 7]) / np.float32(255) - np.float32(mean)) / np.float32(std)
    assert split.X_train[3, 0, 5, 7] == expected  # the rule, bit for bit


def test_cifar10_from_the_python_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 9]}
        (folder / name).write_bytes(pickle.dumps(batches[name]))
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()  # only the archive is left
    monkeypatch.setattr(images, "RAW_DIR", tmp_path)
    source = images.cifar10(False)
    assert source.X_train.shape == (20, 3, 32, 32) and source.X_test.shape == (4, 3, 32, 32)
    red_plane = batches["data_batch_1"][b"data"][0, :1024].reshape(32, 32)
    np.testing.assert_array_equal(source.X_train[0, 0], red_plane)  # rows hold R, G, B planes in turn
    assert source.n_classes == 10


def test_absent_raw_files_are_skipped_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "RAW_DIR", tmp_path / "nothing")
    messages: list[str] = []
    assert ds.prepare(["cifar100", "mnist"], tmp_path / "out", log=messages.append) == []
    assert len(messages) == 2 and all(m.startswith("skipping") for m in messages)
    assert "cifar-100-python.tar.gz" in messages[0]
