"""Datasets prepared once into datasets/<name>/ as .npy files plus meta.json, read by both languages.

meta.json names the layout: `tabular` (float64 features, standardised here), `images` (uint8
N x C x H x W pixels, normalised on load by the rule meta.json states; see mlbench.images) or
`sequences` (float32 N x T x F, stored ready to use; see mlbench.sequences) or `rollouts` (an
environment's actions and episode starts, no split; see mlbench.rollouts) or `prompts` (a language
model's files and the token ids it runs on; see mlbench.prompts) or `texts` (an encoder's files, its
seeded task heads and the token ids they run on; see mlbench.texts), and lists every file with its
sha256 (and an array's shape and dtype). Both languages verify the files it lists.

Every split is the same seeded 75/25 split (stratified for class labels), and features are
standardized here (train statistics applied to both halves) so that neither language preprocesses.
meta.json records each file's sha256; both languages refuse a mismatch. A dataset's digest
(`dataset_sha256` in records) is the sha256 of its meta.json, which pins every file's hash.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from mlbench import images, prompts, rollouts, sequences, texts
from mlbench.errors import DatasetError

SPLIT_SEED = 20240501
TEST_SIZE = 0.25
FILES = ("X_train.npy", "X_test.npy", "y_train.npy", "y_test.npy")
PROMPT_FILES = ("config.json", "model.safetensors", "prompts.npy", "heldout.npy")  # a prompts set's
TEXT_FILES = ("config.json", "model.safetensors", "heads.safetensors", "ids.npy", "mask.npy")  # a texts set's
TRAINING_LAYOUTS = ("images", "sequences")  # what the train_classifier protocol reads


@dataclass(frozen=True)
class Source:
    """A raw dataset: features, target (class labels for classification and clustering, which keep
    their ground truth for external metrics) and a sentence on where it came from."""

    X: np.ndarray
    y: np.ndarray
    source: str
    labels: bool = False  # y holds class labels 0..k-1 (stored as int64), not real values
    sweep: str | None = None  # a size-sweep member: the pool it subsamples (meta.json says, with n_samples)


AnySource = Source | images.ImageSource | sequences.SequenceSource | rollouts.RolloutSource | prompts.PromptSource \
    | texts.TextSource


def diabetes(download: bool) -> Source:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, scaled=False)
    return Source(X, y, "scikit-learn bundled load_diabetes (Efron et al. 2004), unscaled")


def california_housing(download: bool) -> Source:
    from sklearn.datasets import fetch_california_housing

    try:
        X, y = fetch_california_housing(return_X_y=True, download_if_missing=download)
    except OSError as exc:
        raise FileNotFoundError("not in scikit-learn's data home; `make datasets DOWNLOAD=1` fetches it") from exc
    return Source(X, y, "scikit-learn fetch_california_housing (Pace & Barry 1997)")


def synthetic_linear(download: bool) -> Source:
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=5000, n_features=50, n_informative=30, noise=10.0, random_state=1)
    return Source(X, y, "make_regression(n_samples=5000, n_features=50, n_informative=30, noise=10, seed 1)")


def synthetic_nonlinear(download: bool) -> Source:
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(n_samples=5000, n_features=10, noise=1.0, random_state=2)
    return Source(X, y, "make_friedman1(n_samples=5000, n_features=10, noise=1, seed 2)")


def synthetic_sparse(download: bool) -> Source:
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=5000, n_features=100, n_informative=5, noise=5.0, random_state=3)
    return Source(X, y, "make_regression(n_samples=5000, n_features=100, n_informative=5, noise=5, seed 3)")


def bundled(loader_name: str, citation: str) -> Callable[[bool], Source]:
    """A scikit-learn bundled classification set (no download ever)."""

    def build(download: bool) -> Source:
        from sklearn import datasets

        X, y = getattr(datasets, loader_name)(return_X_y=True)
        return Source(X, y, f"scikit-learn bundled {loader_name} ({citation})", labels=True)

    return build


def synthetic_classification(download: bool) -> Source:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=5000, n_features=20, n_informative=10, n_redundant=5, n_classes=2,
                               random_state=4)
    return Source(X, y, "make_classification(n_samples=5000, n_features=20, n_informative=10, n_redundant=5, "
                  "seed 4)", labels=True)


def synthetic_blobs(download: bool) -> Source:
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=1500, centers=4, n_features=5, cluster_std=1.0, random_state=5)
    return Source(X, y, "make_blobs(n_samples=1500, centers=4, n_features=5, cluster_std=1, seed 5)", labels=True)


def synthetic_moons(download: bool) -> Source:
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=1000, noise=0.05, random_state=6)
    return Source(X, y, "make_moons(n_samples=1000, noise=0.05, seed 6)", labels=True)


def synthetic_circles(download: bool) -> Source:
    from sklearn.datasets import make_circles

    X, y = make_circles(n_samples=1000, noise=0.05, factor=0.5, random_state=7)
    return Source(X, y, "make_circles(n_samples=1000, noise=0.05, factor=0.5, seed 7)", labels=True)


SWEEP_POOL_ROWS = 100_000
SWEEP_SEED = 11


@cache
def sweep_pool(name: str) -> Source:
    """The 100,000-row pools the size sweep subsamples (the generators of synthetic_linear and
    synthetic_classification at a larger n)."""
    from sklearn.datasets import make_classification, make_regression

    if name == "synthetic_linear":
        X, y = make_regression(n_samples=SWEEP_POOL_ROWS, n_features=50, n_informative=30, noise=10.0,
                               random_state=1)
        return Source(X, y, f"make_regression(n_samples={SWEEP_POOL_ROWS}, n_features=50, n_informative=30, "
                      "noise=10, seed 1)")
    X, y = make_classification(n_samples=SWEEP_POOL_ROWS, n_features=20, n_informative=10, n_redundant=5,
                               n_classes=2, random_state=4)
    return Source(X, y, f"make_classification(n_samples={SWEEP_POOL_ROWS}, n_features=20, n_informative=10, "
                  "n_redundant=5, seed 4)", labels=True)


def subsample(pool: str, n: int) -> Callable[[bool], Source]:
    """The first n rows of one seeded permutation of the pool: the sizes of a sweep are nested
    (1k within 10k within 100k), so the curves differ in size only."""

    def build(download: bool) -> Source:
        source = sweep_pool(pool)
        rows = np.random.default_rng(SWEEP_SEED).permutation(len(source.y))[:n]
        return Source(source.X[rows], source.y[rows], f"{source.source}; seeded subsample of {n} rows "
                      f"(permutation seed {SWEEP_SEED})", labels=source.labels, sweep=pool)

    return build


SIZE_SWEEP = {f"{pool}_{n // 1000}k": (pool, n) for pool, sizes in
              (("synthetic_linear", (1_000, 10_000, 100_000)), ("synthetic_classification", (1_000, 10_000)))
              for n in sizes}

BUILDERS: dict[str, Callable[[bool], AnySource]] = {
    "diabetes": diabetes,
    "california_housing": california_housing,
    "synthetic_linear": synthetic_linear,
    "synthetic_nonlinear": synthetic_nonlinear,
    "synthetic_sparse": synthetic_sparse,
    "iris": bundled("load_iris", "Fisher 1936"),
    "wine": bundled("load_wine", "Forina et al., UCI"),
    "breast_cancer": bundled("load_breast_cancer", "Wolberg et al., UCI"),
    "digits": bundled("load_digits", "Alpaydin & Kaynak, UCI"),
    "synthetic_classification": synthetic_classification,
    **{name: subsample(pool, n) for name, (pool, n) in SIZE_SWEEP.items()},
    "synthetic_blobs": synthetic_blobs,
    "synthetic_moons": synthetic_moons,
    "synthetic_circles": synthetic_circles,
    "synthetic_images": images.synthetic_images,
    "synthetic_images_rgb": images.synthetic_images_rgb,
    "synthetic_images_tiny": images.synthetic_images_tiny,
    "synthetic_images_micro": images.synthetic_images_micro,
    "fashion_mnist": images.fashion_mnist,
    "fashion_mnist_2k": images.fashion_mnist_2k,
    "mnist": images.mnist,
    "cifar10": images.cifar10,
    "cifar100": images.cifar100,
    "fashion_mnist_rows": sequences.fashion_mnist_rows,
    "fashion_mnist_rows_2k": sequences.fashion_mnist_rows_2k,
    "adding_50": sequences.adding_50,
    "adding_200": sequences.adding_200,
    "adding_tiny": sequences.adding_tiny,
    "cartpole_random": rollouts.cartpole_random,
    "acrobot_random": rollouts.acrobot_random,
    "chain_random": rollouts.chain_random,
    "lunarlander_random": rollouts.lunarlander_random,
    "gpt2_tiny_prompts": prompts.gpt2_tiny_prompts,
    "gpt2_small_prompts": prompts.gpt2_small_prompts,
    "bert_tiny_texts": texts.bert_tiny_texts,
    "distilbert_tiny_texts": texts.distilbert_tiny_texts,
    "roberta_tiny_texts": texts.roberta_tiny_texts,
    "albert_tiny_texts": texts.albert_tiny_texts,
    "minilm_texts": texts.minilm_texts,
    "bert_base_texts": texts.bert_base_texts,
    "distilbert_base_texts": texts.distilbert_base_texts,
    "roberta_base_texts": texts.roberta_base_texts,
    "albert_base_texts": texts.albert_base_texts,
}
OPTIONAL = {"california_housing", "fashion_mnist", "fashion_mnist_2k", "mnist", "cifar10", "cifar100",
            "fashion_mnist_rows", "fashion_mnist_rows_2k"}
# Prepared only when named (`mlbench datasets prepare NAME`, or the make target of the benchmark that
# reads it): GPT-2 small's random weights are 500 MB that only `make bench-llm` needs.
ON_REQUEST = {"gpt2_small_prompts", "bert_base_texts", "distilbert_base_texts", "roberta_base_texts",
              "albert_base_texts"}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def split_and_standardize(source: Source) -> dict[str, np.ndarray]:
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X_train, X_test, y_train, y_test = train_test_split(
        source.X, source.y, test_size=TEST_SIZE, random_state=SPLIT_SEED,
        stratify=source.y if source.labels else None)
    scaler = StandardScaler().fit(X_train)
    target = np.int64 if source.labels else np.float64
    return {"X_train": np.ascontiguousarray(scaler.transform(X_train), dtype=np.float64),
            "X_test": np.ascontiguousarray(scaler.transform(X_test), dtype=np.float64),
            "y_train": np.ascontiguousarray(y_train, dtype=target),
            "y_test": np.ascontiguousarray(y_test, dtype=target)}


def tabular_meta(source: Source) -> tuple[dict[str, np.ndarray], dict]:
    meta = {"layout": "tabular", "split_seed": SPLIT_SEED, "test_size": TEST_SIZE,
            "target": "class labels 0..k-1 (int64)" if source.labels else "real values (float64)",
            "standardized": "features, with training-set mean and std"}
    if source.sweep is not None:  # a size-sweep member: the report plots time against n_samples per pool
        meta["sweep"] = {"pool": source.sweep, "n_samples": len(source.y)}
    return split_and_standardize(source), meta


def labelled_layout(source: images.ImageSource | sequences.SequenceSource, layout: str,
                    x_dtype: type) -> tuple[dict[str, np.ndarray], dict]:
    """The four arrays of a deep-learning set (features in `x_dtype`, int64 labels) and its meta."""
    arrays = {"X_train": np.ascontiguousarray(source.X_train, dtype=x_dtype),
              "X_test": np.ascontiguousarray(source.X_test, dtype=x_dtype),
              "y_train": np.ascontiguousarray(source.y_train, dtype=np.int64),
              "y_test": np.ascontiguousarray(source.y_test, dtype=np.int64)}
    meta = {"layout": layout, "shape": list(source.X_train.shape[1:]), "n_classes": source.n_classes,
            "target": "class labels 0..k-1 (int64)"}
    return arrays, meta


def image_meta(source: images.ImageSource) -> tuple[dict[str, np.ndarray], dict]:
    arrays, meta = labelled_layout(source, "images", np.uint8)
    return arrays, meta | {"normalise": images.normalisation(source.X_train)}


def sequence_meta(source: sequences.SequenceSource) -> tuple[dict[str, np.ndarray], dict]:
    return labelled_layout(source, "sequences", np.float32)


def layout_of(source: AnySource) -> tuple[dict[str, np.ndarray], dict]:
    if isinstance(source, images.ImageSource):
        return image_meta(source)
    if isinstance(source, sequences.SequenceSource):
        return sequence_meta(source)
    if isinstance(source, rollouts.RolloutSource):
        return rollouts.arrays(source), rollouts.meta(source)
    if isinstance(source, prompts.PromptSource):
        return prompts.arrays(source), prompts.meta(source)
    if isinstance(source, texts.TextSource):
        return texts.arrays(source), texts.meta(source)
    return tabular_meta(source)


def write(name: str, source: AnySource, out_dir: Path) -> Path:
    """Write arrays and meta.json into a temporary folder, then rename it into place."""
    final = out_dir / name
    tmp = out_dir / f".{name}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    arrays, layout = layout_of(source)
    files = {}
    for key, array in arrays.items():
        path = tmp / f"{key}.npy"
        np.save(path, array)
        files[path.name] = {"sha256": sha256_file(path), "shape": list(array.shape), "dtype": str(array.dtype)}
    for module in (prompts, texts):  # a model folder's files, moved in beside the arrays
        if isinstance(source, module.PromptSource if module is prompts else module.TextSource):
            for path in module.model_files(source):
                shutil.move(path, tmp / path.name)
                files[path.name] = {"sha256": sha256_file(tmp / path.name)}
            module.discard(source)
    meta = {"name": name, "source": source.source, **layout, "files": files}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if final.exists():
        for child in final.iterdir():
            child.unlink()
        final.rmdir()
    tmp.rename(final)
    return final


def prepare(names: list[str], out_dir: Path, download: bool = False,
            log: Callable[[str], None] = print) -> list[str]:
    """Prepare each dataset not already valid; returns the names prepared or present."""
    ready = []
    for name in names:
        if name not in BUILDERS:
            raise DatasetError(f"unknown dataset {name!r} (known: {', '.join(BUILDERS)})")
        if is_prepared(name, out_dir):
            try:
                verify(name, out_dir)
                ready.append(name)
                continue
            except DatasetError as exc:
                log(f"{exc}; preparing it again")
        try:
            source = BUILDERS[name](download)
        except FileNotFoundError as exc:
            if name in OPTIONAL:
                log(f"skipping {name}: {exc}")
                continue
            raise
        write(name, source, out_dir)
        if isinstance(source, images.ImageSource):
            log(f"prepared {name}: {len(source.X_train)} + {len(source.X_test)} images of "
                f"{'x'.join(map(str, source.X_train.shape[1:]))}")
        elif isinstance(source, sequences.SequenceSource):
            steps, features = source.X_train.shape[1:]
            log(f"prepared {name}: {len(source.X_train)} + {len(source.X_test)} sequences of {steps} steps x "
                f"{features} features")
        elif isinstance(source, rollouts.RolloutSource):
            log(f"prepared {name}: {source.environment}, {source.actions.shape[0]:,} steps x "
                f"{source.actions.shape[1]} copies")
        elif isinstance(source, prompts.PromptSource):
            log(f"prepared {name}: GPT-2 ({source.model} configuration, random weights), "
                f"{source.prompts.shape[0]} prompts of {source.prompts.shape[1]} tokens")
        elif isinstance(source, texts.TextSource):
            log(f"prepared {name}: {source.family} ({source.model}), {source.ids.shape[0]} sequences of "
                f"{source.ids.shape[1]} tokens")
        else:
            log(f"prepared {name}: {source.X.shape[0]} samples x {source.X.shape[1]} features")
        ready.append(name)
    return ready


def is_prepared(name: str, datasets_dir: Path) -> bool:
    return (datasets_dir / name / "meta.json").is_file()


def read_meta(name: str, datasets_dir: Path) -> dict:
    path = datasets_dir / name / "meta.json"
    if not path.is_file():
        hint = " after `sudo apt-get install dataset-fashion-mnist`" if name.startswith("fashion_mnist") else ""
        command = f"mlbench datasets prepare {name}" if name in ON_REQUEST else "make datasets"
        raise DatasetError(f"dataset {name!r} is not prepared in {datasets_dir} (run `{command}`{hint})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: corrupt meta.json: {exc.msg} at line {exc.lineno}") from None


def verify(name: str, datasets_dir: Path) -> str:
    """Check every file meta.json lists (and the four a split needs) against it; return the digest."""
    meta = read_meta(name, datasets_dir)
    listed = meta.get("files", {})
    for filename in sorted(set(listed) | set(required_files(meta))):
        path = datasets_dir / name / filename
        expected = listed.get(filename, {}).get("sha256")
        if not path.is_file():
            raise DatasetError(f"{path}: missing file of dataset {name!r} (run `make datasets`)")
        if sha256_file(path) != expected:
            raise DatasetError(f"{path}: sha256 mismatch with meta.json: the dataset is corrupt or was "
                               f"changed; run `make datasets` to prepare it again")
    return digest(name, datasets_dir)


def required_files(meta: dict) -> tuple[str, ...]:
    """The files a layout cannot do without (a split's four arrays; a rollouts set's actions)."""
    if meta.get("layout") == "rollouts":
        return ("actions.npy", "starts.npy" if meta.get("start") == "states" else "reset_seeds.npy")
    if meta.get("layout") == "prompts":
        return PROMPT_FILES
    if meta.get("layout") == "texts":
        return TEXT_FILES
    return FILES


def sizes(name: str, datasets_dir: Path) -> dict[str, Any]:
    """What a run's meta.json keeps of a dataset: rows per split and, for a size-sweep member, its pool."""
    meta = read_meta(name, datasets_dir)
    files = meta.get("files", {})
    out: dict[str, Any] = {"n_train": files.get("y_train.npy", {}).get("shape", [None])[0],
                           "n_test": files.get("y_test.npy", {}).get("shape", [None])[0]}
    if "sweep" in meta:
        out["sweep"] = meta["sweep"]
    return out


def digest(name: str, datasets_dir: Path) -> str:
    return sha256_file(datasets_dir / name / "meta.json")


@dataclass(frozen=True)
class Split:
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def load_split(name: str, datasets_dir: Path, normalise: bool = True) -> Split:
    """Read the four arrays (verify() first, once per process); images come normalised, float32,
    unless `normalise` is off (the judge needs only the labels of an image set)."""
    split = Split(*(np.load(datasets_dir / name / filename) for filename in FILES))
    meta = read_meta(name, datasets_dir)
    if normalise and meta.get("layout") == "images":
        return Split(images.normalise(split.X_train, meta), images.normalise(split.X_test, meta),
                     split.y_train, split.y_test)
    return split


def meta_of_layout(name: str, datasets_dir: Path, layout: str, what: str) -> dict:
    """meta.json of a dataset that must be in `layout` (`what`: the layout in words)."""
    meta = read_meta(name, datasets_dir)
    if meta.get("layout") != layout:
        raise DatasetError(f"dataset {name!r} is not {what} (layout {meta.get('layout', 'tabular')})")
    return meta


def load_rollouts(name: str, datasets_dir: Path) -> rollouts.Rollouts:
    """A rollouts set (verify() first, once per process)."""
    meta = meta_of_layout(name, datasets_dir, "rollouts", "an environment's rollouts set")
    folder = datasets_dir / name

    def optional(filename: str) -> np.ndarray | None:
        return np.load(folder / filename) if (folder / filename).is_file() else None

    return rollouts.Rollouts(str(meta["environment"]), np.load(folder / "actions.npy"), optional("starts.npy"),
                             optional("reset_seeds.npy"))


def load_prompts(name: str, datasets_dir: Path) -> prompts.Prompts:
    """A prompts set (verify() first, once per process): its arrays and model folder."""
    meta = meta_of_layout(name, datasets_dir, "prompts", "a language model's prompts set")
    folder = datasets_dir / name
    return prompts.Prompts(folder, np.load(folder / "prompts.npy"), np.load(folder / "heldout.npy"),
                           int(meta["n_positions"]), int(meta["vocab_size"]))


def has_class_labels(meta: dict) -> bool:
    """The dataset's target is class labels (meta.json's `target`), not real values."""
    return str(meta.get("target", "")).startswith("class labels")


def layout(name: str, datasets_dir: Path) -> str:
    return read_meta(name, datasets_dir).get("layout", "tabular")


def read_model_config(folder: Path, fields: tuple[str, ...]) -> tuple[int, ...]:
    """The integer `fields` of a model folder's config.json (a prompts or texts set's)."""
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text())
        return tuple(int(config[name]) for name in fields)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: not a model configuration with {' and '.join(fields)}: {exc}") from None


def load_texts(name: str, datasets_dir: Path) -> texts.Texts:
    """A texts set (verify() first, once per process): its arrays and model folder."""
    meta = meta_of_layout(name, datasets_dir, "texts", "an encoder's texts set")
    folder = datasets_dir / name
    sentences = folder / "sentences.txt"
    return texts.Texts(folder, str(meta["family"]), np.load(folder / "ids.npy"), np.load(folder / "mask.npy"),
                       int(meta["pad_token_id"]), int(meta["vocab_size"]), int(meta["max_positions"]),
                       {str(k): int(v) for k, v in meta["labels"].items()},
                       sentences.read_text().splitlines() if sentences.is_file() else None)
