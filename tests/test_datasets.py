"""Prepared datasets: deterministic, standardized, checksummed, and refused when corrupt."""

import json
from pathlib import Path

import numpy as np
import pytest

from mlbench import datasets as ds
from mlbench.errors import DatasetError


def test_meta_records_every_file_hash(datasets_dir: Path) -> None:
    meta = json.loads((datasets_dir / "diabetes" / "meta.json").read_text())
    assert set(meta["files"]) == set(ds.FILES)
    for name, info in meta["files"].items():
        assert ds.sha256_file(datasets_dir / "diabetes" / name) == info["sha256"]
    assert meta["split_seed"] == ds.SPLIT_SEED


def test_split_is_75_25_and_features_standardized_on_train(datasets_dir: Path) -> None:
    split = ds.load_split("diabetes", datasets_dir)
    assert len(split.X_train) == 331 and len(split.X_test) == 111
    np.testing.assert_allclose(split.X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(split.X_train.std(axis=0), 1, atol=1e-12)
    assert split.X_train.dtype == np.float64


def test_preparation_is_deterministic(tmp_path: Path, datasets_dir: Path) -> None:
    ds.prepare(["diabetes"], tmp_path, log=lambda _: None)
    assert ds.digest("diabetes", tmp_path) == ds.digest("diabetes", datasets_dir)


def test_corrupt_file_is_refused_and_prepare_repairs_it(tmp_path: Path) -> None:
    ds.prepare(["diabetes"], tmp_path, log=lambda _: None)
    path = tmp_path / "diabetes" / "y_test.npy"
    path.write_bytes(path.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(DatasetError, match="sha256 mismatch"):
        ds.verify("diabetes", tmp_path)
    messages: list[str] = []
    ds.prepare(["diabetes"], tmp_path, log=messages.append)
    assert ds.verify("diabetes", tmp_path)
    assert any("preparing it again" in m for m in messages)


def test_missing_dataset_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="make datasets"):
        ds.verify("diabetes", tmp_path)
