"""The `train_classifier` protocol: what one repetition of a training task does, for every framework.

Mirrors rust/bench-core/src/training.rs. A task declares each architecture as a `TrainClassifier`:
`init` draws the initial weights (PyTorch, once per seed, written as safetensors by `--fixtures`
before any side runs) and `build` makes a framework network from that file. The protocol then:

1. `build` (timed): construct the network and load the shared initial weights;
2. `upload` (untimed): the normalised float32 images onto the job's device;
3. `train` (each epoch timed, the device synchronised before the clock is read): one pass over the
   shared permutation of that epoch (order-SEED.npy, row = epoch), in batches of `batch_size`, the
   last one smaller; after each epoch, untimed, the test accuracy (for time-to-accuracy);
4. `evaluate` (timed): logits of the whole test set, in batches of EVAL_BATCH;
5. `infer_bN` (timed, calibrated like every short phase): logits of the first N test images, one
   batch, for each of the job's `inference_batch_sizes` not above the test set.

A warm-up repetition runs the same steps with one short epoch of WARMUP_BATCHES batches: it warms
every code path (and calibrates the inference loops) without the cost of a full training.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlbench.config import Job
from mlbench.errors import UsageError, one_line

EVAL_BATCH = 256  # batch size of the timed evaluation pass, the same on every side
WARMUP_BATCHES = 8  # a warm-up repetition trains one epoch of this many batches


@dataclass(frozen=True)
class NetShape:
    """What a network's input looks like: images C x H x W; a `sequences` dataset (T steps of F
    features) reaches the protocol as one-channel T x F samples (a sequence net reads `steps`,
    `features`), so one protocol serves both layouts."""

    channels: int
    height: int
    width: int
    classes: int

    @property
    def steps(self) -> int:
        return self.height

    @property
    def features(self) -> int:
        return self.width



class Network(Protocol):
    """A framework's network, holding its data on the job's device after `upload`."""

    def upload(self, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray) -> None: ...

    def train_epoch(self, order: np.ndarray, batch_size: int) -> float:
        """One epoch in train mode over `order`; the mean training loss per sample."""
        ...

    def logits(self, count: int, batch_size: int) -> np.ndarray:
        """Eval-mode logits (count x classes, float32, on the host) of the first `count` test images."""
        ...

    def sync(self) -> None: ...

    def peak_memory_mb(self) -> float | None:
        """The framework's own peak device memory since build (None on a CPU or where it reports none)."""
        ...

    def weights(self) -> dict[str, np.ndarray]:
        """Every floating-point tensor the network holds, by PyTorch name (parity checksums)."""
        ...


@dataclass(frozen=True)
class TrainClassifier:
    """`init(params, shape, seed)` gives the initial weights as {name: numpy float32 array} in PyTorch's
    names; `build(params, shape, weights_file, device, precision)` a Network loaded from that file,
    computing in `precision` (PRECISIONS); `flops(params,
    shape)`, where given, FLOPs per sample of a forward pass and of a training step (mlbench.flops)."""

    init: Callable[[dict[str, Any], NetShape, int], dict[str, np.ndarray]]
    build: Callable[[dict[str, Any], NetShape, Path, str, str], Network]
    flops: Callable[[dict[str, Any], NetShape], dict[str, float]] | None = None


# What a training job may compute in: the task spec's float32 for every benchmark; float64 for the
# parity tests, where every framework doing the same arithmetic must agree to float64 rounding.
PRECISIONS = ("float32", "float64")


def shape_of(meta: dict[str, Any]) -> NetShape:
    if meta["layout"] == "sequences":
        steps, features = meta["shape"]
        return NetShape(1, steps, features, meta["n_classes"])
    channels, height, width = meta["shape"]
    return NetShape(channels, height, width, meta["n_classes"])


def init_path(job: Job, seed: int) -> Path:
    return Path(job.fixtures_dir) / f"init-{seed}.safetensors"


def order_path(job: Job, seed: int) -> Path:
    return Path(job.fixtures_dir) / f"order-{seed}.npy"


def check_job(job: Job, n_train: int) -> None:
    """What the parameter schema cannot see: sizes against the dataset, the fixtures folder."""
    params = job.hyperparameters
    if job.precision not in PRECISIONS:
        raise UsageError(f"precision: {job.precision!r}: a training job computes in {' or '.join(PRECISIONS)}")
    if params["batch_size"] > n_train:
        raise UsageError(f"hyperparameters.batch_size: {params['batch_size']} is above the training set "
                         f"of {job.dataset} ({n_train} samples)")
    if not job.fixtures_dir:
        raise UsageError("fixtures_dir: a training job needs the folder of its shared initial weights")
    if params.get("pretrained") and params.get("weights_file") and not Path(params["weights_file"]).is_file():
        raise UsageError(f"hyperparameters.weights_file: {params['weights_file']} does not exist")


def write_fixtures(job: Job, algorithm: TrainClassifier, shape: NetShape, n_train: int) -> list[Path]:
    """Initial weights and batch order for every repetition seed of the job (skipping those present),
    each written to a temporary name and renamed, so a reader never sees half a file."""
    from safetensors.numpy import load_file, save_file

    folder = Path(job.fixtures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    params = job.hyperparameters
    flops = folder / "flops.json"
    if algorithm.flops is not None and not flops.exists():
        try:  # the first pass of the network over the dataset's shape
            count = algorithm.flops(params, shape)
        except RuntimeError as exc:
            raise UsageError(f"dataset: {job.dataset}'s inputs of {shape.channels}x{shape.height}x{shape.width} do "
                             f"not fit {job.algorithm}: {one_line(exc)}") from None
        flops.write_text(json.dumps(count) + "\n")
        written.append(flops)
    for repetition in range(job.n_records):
        seed = job.seed + repetition
        weights, order = init_path(job, seed), order_path(job, seed)
        if not weights.exists():
            tensors = (load_file(params["weights_file"]) if params.get("pretrained")
                       else algorithm.init(params, shape, seed))
            tmp = weights.with_suffix(f".tmp{os.getpid()}")
            save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(tmp))
            tmp.rename(weights)
            written.append(weights)
        if not order.exists():
            rng = np.random.default_rng(seed)
            permutations = np.stack([rng.permutation(n_train) for _ in range(params["epochs"])]).astype(np.int64)
            tmp = order.with_suffix(f".tmp{os.getpid()}.npy")
            np.save(tmp, permutations)
            tmp.rename(order)
            written.append(order)
    return written


@dataclass
class TrainOutputs:
    logits: np.ndarray
    record: dict[str, Any]
    device_peak_mb: float | None = None  # the framework's own peak device memory (Network.peak_memory_mb)


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == y))


def run_training(job: Job, algorithm: TrainClassifier, data: Any, shape: NetShape, seed: int, phases: Any,
                 device: str, warmup: bool = False) -> TrainOutputs:
    """One repetition of the protocol (module docstring); `phases` is the harness's calibrated timer."""
    params = dict(job.hyperparameters)
    order = np.load(order_path(job, seed))
    if warmup:
        order = order[:1, :WARMUP_BATCHES * params["batch_size"]]
        params["epochs"] = 1
    weights = init_path(job, seed)
    net = phases.run("build", lambda: None, lambda _: algorithm.build(params, shape, weights, device, job.precision))
    net.upload(data.X_train, data.y_train, data.X_test)
    n_test = len(data.y_test)
    epoch_s: list[float] = []
    losses: list[float] = []
    accuracies: list[float] = []
    reached: int | None = None
    logits = np.empty((0, shape.classes), dtype=np.float32)
    for epoch in range(params["epochs"]):
        net.sync()
        start = time.perf_counter()
        loss = net.train_epoch(order[epoch], params["batch_size"])
        net.sync()
        epoch_s.append(time.perf_counter() - start)
        losses.append(float(loss))
        if epoch + 1 < params["epochs"]:  # the last epoch's accuracy comes from the timed evaluation
            accuracies.append(accuracy(net.logits(n_test, EVAL_BATCH), data.y_test))
            if reached is None and accuracies[-1] >= params["target_accuracy"]:
                reached = epoch + 1
    logits = phases.run("evaluate", lambda: None, lambda _: synced(net, lambda: net.logits(n_test, EVAL_BATCH)))
    accuracies.append(accuracy(logits, data.y_test))
    if reached is None and accuracies[-1] >= params["target_accuracy"]:
        reached = params["epochs"]
    for size in job.inference_batch_sizes:
        if size <= n_test:
            phases.run(f"infer_b{size}", lambda: None, lambda _, b=size: synced(net, lambda: net.logits(b, b)))
    timings = phases.timer.timings_s
    timings["train"] = sum(epoch_s)
    timings["epoch_first"] = epoch_s[0]
    if len(epoch_s) > 1:
        timings["epoch_steady"] = statistics.median(epoch_s[1:])
    n_train = len(order[0])
    counts = {"train": n_train * params["epochs"], "evaluate": n_test}
    counts |= {f"infer_b{b}": b for b in job.inference_batch_sizes if b <= n_test}
    record = {
        "series": {"epoch_s": epoch_s, "train_loss": losses, "test_accuracy": accuracies},
        "time_to_accuracy": {"target": params["target_accuracy"], "epochs": reached,
                             "seconds": sum(epoch_s[:reached]) if reached else None},
        "counts": counts,
    }
    return TrainOutputs(logits, record, net.peak_memory_mb())


PARITY_STEPS = 2  # optimizer steps compared by the parity tests (the second uses momentum buffers)
PARITY_IMAGES = 64  # test images whose logits the parity tests compare


def weights_sha256(named: dict[str, np.ndarray]) -> dict[str, str]:
    """sha256 of each tensor's float32 little-endian bytes (Rust: training::weights_sha256)."""
    import hashlib

    return {name: hashlib.sha256(np.ascontiguousarray(v, dtype="<f4").tobytes()).hexdigest()
            for name, v in sorted(named.items())}


def parity(job: Job, algorithm: TrainClassifier, data: Any, shape: NetShape, folder: Path, device: str) -> None:
    """The parity tests' view of one side (mirrors rust/bench-core/src/training.rs `parity`):
    eval-mode logits of the first PARITY_IMAGES test images from the initial weights, after
    PARITY_STEPS optimizer steps on the first batches of epoch 0, and (in float32) after one full
    epoch; and the sha256 of every tensor the network loaded."""
    params = job.hyperparameters
    folder.mkdir(parents=True, exist_ok=True)
    first = np.load(order_path(job, job.seed))[0]
    count = min(PARITY_IMAGES, len(data.y_test))
    net = algorithm.build(params, shape, init_path(job, job.seed), device, job.precision)
    (folder / "weights_sha256.json").write_text(json.dumps(weights_sha256(net.weights()), indent=2))
    net.upload(data.X_train, data.y_train, data.X_test)
    np.save(folder / "init_logits.npy", net.logits(count, count))
    loss = net.train_epoch(first[:PARITY_STEPS * params["batch_size"]], params["batch_size"])
    np.save(folder / "step_loss.npy", np.array([loss]))
    np.save(folder / "step_logits.npy", net.logits(count, count))
    (folder / "step_weights").mkdir(exist_ok=True)
    for name, values in net.weights().items():  # parameters and running statistics after the steps
        np.save(folder / "step_weights" / f"{name}.npy", values.reshape(-1))
    if job.precision == "float64":  # float64 checks the arithmetic of the steps; the epoch is float32's
        return
    net = algorithm.build(params, shape, init_path(job, job.seed), device, job.precision)
    net.upload(data.X_train, data.y_train, data.X_test)
    np.save(folder / "epoch_loss.npy", np.array([net.train_epoch(first, params["batch_size"])]))
    np.save(folder / "epoch_logits.npy", net.logits(count, count))


def synced(net: Network, work: Callable[[], np.ndarray]) -> np.ndarray:
    out = work()
    net.sync()
    return out
