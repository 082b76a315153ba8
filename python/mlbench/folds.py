"""Cross-validation folds (`cv_folds: k` in a matrix): one index file per dataset, k and seed.

The runner assigns every training row a fold (scikit-learn's StratifiedKFold for class labels,
KFold for a real-valued target, both shuffled with the matrix's seed) and writes the assignment as
`folds/<dataset>-k<k>-seed<seed>.npy` (int64, one entry per training row) before any side runs.
Both harnesses read that file and run the `cross_validated` protocol over it; the judge reads it to
score each fold's held-out predictions. Mirrors rust/bench-core/src/data.rs (`load_folds`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlbench import datasets as ds
from mlbench.errors import UsageError


def path_for(out_dir: Path, dataset: str, k: int, seed: int) -> str:
    """Where a run keeps the folds of one dataset, k and seed (shared by every job that uses them)."""
    return str((out_dir / "folds" / f"{dataset}-k{k}-seed{seed}.npy").resolve())


def assign(y: np.ndarray, k: int, seed: int, stratify: bool) -> np.ndarray:
    """The fold (0..k-1) of each training row."""
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = StratifiedKFold(k, shuffle=True, random_state=seed) if stratify else KFold(k, shuffle=True,
                                                                                         random_state=seed)
    folds = np.full(len(y), -1, dtype=np.int64)
    for fold, (_, held) in enumerate(splitter.split(np.zeros((len(y), 1)), y)):
        folds[held] = fold
    return folds


def check_matrix(where: str, dataset: str, k: int, datasets_dir: Path) -> None:
    """What the matrix schema cannot see: k against the training rows (per class, when stratified)."""
    meta = ds.read_meta(dataset, datasets_dir)
    n_train = int(meta["files"]["y_train.npy"]["shape"][0])
    if k > n_train:
        raise UsageError(f"{where}: cv_folds: {k} folds need at least {k} training rows; {dataset} has {n_train}")
    if ds.has_class_labels(meta):
        counts = np.bincount(np.load(datasets_dir / dataset / "y_train.npy").astype(np.int64))
        smallest = int(counts[counts > 0].min())
        if k > smallest:
            raise UsageError(f"{where}: cv_folds: {k} stratified folds need at least {k} training rows of every "
                             f"class; the smallest class of {dataset} has {smallest}")


def write(paths: dict[str, tuple[str, int, int]], datasets_dir: Path) -> dict[str, dict[str, object]]:
    """Write each folds file once (file -> (dataset, k, seed)); return what meta.json records of them."""
    written: dict[str, dict[str, object]] = {}
    for file, (dataset, k, seed) in sorted(paths.items()):
        meta = ds.read_meta(dataset, datasets_dir)
        y = np.load(datasets_dir / dataset / "y_train.npy")
        path = Path(file)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.npy")
        np.save(partial, assign(y, k, seed, ds.has_class_labels(meta)))
        partial.replace(path)  # a reader never sees half a file
        written[path.name] = {"dataset": dataset, "k": k, "seed": seed, "stratified": ds.has_class_labels(meta),
                              "sha256": ds.sha256_file(path)}
    return written


def load(path: str | Path, n_train: int, k: int) -> np.ndarray:
    """Read and check a folds file as a harness does: one fold in 0..k-1 per training row, every
    fold non-empty (Rust: data::load_folds). Raises UsageError naming the file."""
    path = Path(path)
    try:
        folds = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the folds file: {exc}") from None
    if folds.ndim != 1 or folds.dtype.kind not in "iu":
        raise UsageError(f"{path}: expected a 1-d integer array of folds, got {folds.dtype} of shape {folds.shape}")
    if len(folds) != n_train:
        raise UsageError(f"{path}: {len(folds)} folds for {n_train} training rows")
    if len(folds) and (folds.min() < 0 or folds.max() >= k):
        raise UsageError(f"{path}: fold numbers must lie in 0..{k - 1}, found {folds.min()}..{folds.max()}")
    if len(np.unique(folds)) != k:
        raise UsageError(f"{path}: {k} folds expected, {len(np.unique(folds))} are non-empty")
    return folds.astype(np.int64)
