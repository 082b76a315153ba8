"""What every PyTorch side of a training task shares: the network and its optimizer on the job's
device and precision (`TorchNetwork`, the `Network` of mlbench.training), its construction from the
shared initial weights, PyTorch's default initialisation under a seed, FLOP counts and thread setup.
A task file (python/tasks/deep_learning/*.py) supplies only its architectures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlbench.config import Job
from mlbench.errors import UsageError
from mlbench.training import NetShape

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
DTYPES = {"float32": torch.float32, "float64": torch.float64}  # the job's precision
EVAL_SAMPLE = 8  # samples in the batch the FLOP counter runs on


def initial_weights(architecture: Any) -> Any:
    """PyTorch's default initialisation under the repetition's seed, as {name: float32 array}."""

    def init(params: dict[str, Any], shape: NetShape, seed: int) -> dict[str, np.ndarray]:
        torch.manual_seed(seed)
        model = architecture(params, shape)
        return {name: tensor.detach().numpy().astype(np.float32) for name, tensor in model.state_dict().items()
                if tensor.is_floating_point()}  # BatchNorm's num_batches_tracked is a counter, not a weight

    return init


def image_input(shape: NetShape) -> tuple[int, ...]:
    return (shape.channels, shape.height, shape.width)


def flop_count(architecture: Any, sample_shape: Callable[[NetShape], tuple[int, ...]] = image_input) -> Any:
    """FLOPs per sample of `architecture` (mlbench.flops) on EVAL_SAMPLE zero inputs of `sample_shape`."""

    def count(params: dict[str, Any], shape: NetShape) -> dict[str, float]:
        from mlbench.flops import model_flops

        sample = torch.zeros(EVAL_SAMPLE, *sample_shape(shape))
        return model_flops(architecture(params, shape), sample)

    return count


def optimizer(params: dict[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    if params["optimizer"] == "sgd":
        return torch.optim.SGD(model.parameters(), lr=params["learning_rate"], momentum=params["momentum"],
                               weight_decay=params["weight_decay"])
    return torch.optim.AdamW(model.parameters(), lr=params["learning_rate"], betas=ADAM_BETAS, eps=ADAM_EPS,
                             weight_decay=params["weight_decay"])


class TorchNetwork:
    """A PyTorch network and its optimizer, with the job's data on its device in its precision; what
    leaves it (logits, weights) is float32."""

    def __init__(self, model: nn.Module, params: dict[str, Any], device: torch.device, dtype: torch.dtype) -> None:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        self.model = model.to(device=device, dtype=dtype)
        self.optimizer = optimizer(params, self.model)
        self.device = device
        self.dtype = dtype

    def upload(self, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray) -> None:
        self.X_train = torch.from_numpy(X_train).to(self.device, self.dtype)
        self.y_train = torch.from_numpy(y_train).to(self.device)
        self.X_test = torch.from_numpy(X_test).to(self.device, self.dtype)

    def train_epoch(self, order: np.ndarray, batch_size: int) -> float:
        self.model.train()
        order_t = torch.from_numpy(order).to(self.device)
        total = 0.0
        for start in range(0, len(order), batch_size):
            index = order_t[start:start + batch_size]
            loss = F.cross_entropy(self.model(self.X_train[index]), self.y_train[index])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(index)
        return total / len(order)

    @torch.inference_mode()
    def logits(self, count: int, batch_size: int) -> np.ndarray:
        self.model.eval()
        out = [self.model(self.X_test[start:min(start + batch_size, count)]).cpu()
               for start in range(0, count, batch_size)]
        return torch.cat(out).float().numpy()

    def weights(self) -> dict[str, np.ndarray]:
        return {name: t.detach().cpu().float().numpy() for name, t in self.model.state_dict().items()
                if t.is_floating_point()}

    def sync(self) -> None:
        sync(self.device)

    def peak_memory_mb(self) -> float | None:
        """PyTorch's caching allocator: the most device memory its tensors held since build."""
        return device_peak_mb(self.device)


def builder(architecture: Any) -> Any:
    def build(params: dict[str, Any], shape: NetShape, weights: Path, device: str, precision: str) -> TorchNetwork:
        from safetensors.torch import load_file

        model = architecture(params, shape)
        state = load_file(str(weights))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or [m for m in missing if not m.endswith("num_batches_tracked")]:
            raise UsageError(f"{weights}: does not fit {type(model).__name__}: missing {missing}, "
                             f"unexpected {unexpected}")
        return TorchNetwork(model, params, torch.device(device), DTYPES[precision])

    return build


def setup(job: Job) -> dict[str, Any]:
    """The job's threads for torch's intra-op pool (OpenMP), and a device that exists."""
    if job.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("device: cuda: no CUDA device visible to torch (HW=gpu needs an NVIDIA GPU and driver)")
    torch.set_num_threads(job.threads)
    return {"torch": torch.get_num_threads()}


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def reset_peak_memory(model: nn.Module) -> None:
    """Start the model's device's peak-memory count anew (nothing on a CPU)."""
    if model_device(model).type == "cuda":
        torch.cuda.reset_peak_memory_stats(model_device(model))


def sync(device: torch.device) -> None:
    """Wait for the device's queued kernels, before a clock is read (CUDA runs them asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_peak_mb(device: torch.device) -> float | None:
    """PyTorch's own peak device memory allocated since the last reset, in MiB (None on a CPU)."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def peak_memory_mb(model: nn.Module) -> float | None:
    return device_peak_mb(model_device(model))


def kernels(job: Job) -> dict[str, str]:
    """The job's CUDA kernel switches (`cudnn_benchmark`, `tf32`), applied in every process whatever
    its device (they change nothing on a CPU), and what libtorch then reports: recorded in
    `env.kernels`. tf32 false turns TF32 off explicitly, since libtorch lets cuDNN use it unless told
    otherwise. The `allow_tf32` setters keep libtorch's two generations of precision flags consistent
    (setting the per-op `fp32_precision` flags one by one does not: libtorch 2.11 then refuses to
    answer `allow_tf32`); tch makes the same calls (rust/cnn/csrc/kernels.cpp)."""
    torch.backends.cudnn.benchmark = bool(job.hyperparameters.get("cudnn_benchmark", False))
    tf32 = bool(job.hyperparameters.get("tf32", False))
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    return {name: str(bool(value)).lower() for name, value in (
        ("cudnn_benchmark", torch.backends.cudnn.benchmark), ("cudnn_tf32", torch.backends.cudnn.allow_tf32),
        ("cublas_tf32", torch.backends.cuda.matmul.allow_tf32))}
