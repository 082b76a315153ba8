"""FLOP counts and the machine's GEMM peak, so training and inference throughput can be read as
achieved GFLOP/s against what the hardware does on its best kernel.

The count comes from PyTorch's model (torch.utils.flop_counter: matrix multiplies and convolutions,
the bulk of the work; elementwise operations are not counted) and is the same number for every side,
which runs the same architecture. The peak is one float32 matrix product (2048 x 2048) in torch with
the job's threads, measured once per run and stored in its meta.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

GEMM_SIZE = 2048

PEAK_PROBE = """
import json, sys, time, torch
device, threads, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
a = torch.randn(n, n, device=device)
b = torch.randn(n, n, device=device)
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
for _ in range(3):
    a @ b
sync()
best = float("inf")
for _ in range(5):
    start = time.perf_counter()
    a @ b
    sync()
    best = min(best, time.perf_counter() - start)
print(json.dumps({"gflops": 2 * n**3 / best / 1e9, "size": n, "device": device, "threads": threads,
                  "library": "torch " + torch.__version__}))
"""


def gemm_peak(device: str, threads: int) -> dict[str, Any] | None:
    """Best of five float32 GEMMs, in a subprocess (torch stays out of the runner); None if it fails."""
    try:
        done = subprocess.run([sys.executable, "-c", PEAK_PROBE, device, str(threads), str(GEMM_SIZE)],
                              capture_output=True, text=True, timeout=300)
        return json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return None


def model_flops(model: Any, sample: Any) -> dict[str, float]:
    """FLOPs per sample of one forward pass and of one training step (forward + backward) of `model`
    on the batch `sample`, by torch.utils.flop_counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    n = sample.shape[0]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(sample)
    forward = counter.get_total_flops() / n
    with FlopCounterMode(display=False) as counter:
        model.train()(sample).sum().backward()
    train = counter.get_total_flops() / n
    model.zero_grad(set_to_none=True)
    return {"forward_per_sample": float(forward), "train_per_sample": float(train)}


def achieved_gflops(flops: dict[str, float], counts: dict[str, int], timings: dict[str, float]) -> dict[str, float]:
    """GFLOP/s of each phase of a training record from the shared FLOP counts."""
    out = {}
    for phase, samples in counts.items():
        per_sample = flops["train_per_sample"] if phase == "train" else flops["forward_per_sample"]
        if timings.get(phase):
            out[f"{phase}_gflops"] = per_sample * samples / timings[phase] / 1e9
    return out
