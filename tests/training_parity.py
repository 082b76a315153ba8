"""What the training tasks' parity tests share (tests/test_parity_cnn.py, tests/test_parity_rnn.py):
a job of a task, each side's program run with `--parity DIR`, and the gap measures and bounds. Read
test_parity_cnn.py's docstring for what is compared and why in float64 and in float32."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import ROOT, rust_binary
from mlbench.buildinfo import links_cuda
from mlbench.config import Job, load_task_spec
from mlbench.runner import library_path
from mlbench.training import weights_sha256
from mlbench.yamlio import dump_yaml

# Each task's Rust binary per framework, and its Python program.
RUST = {"cnn": {"tch": "cnn", "candle": "cnn", "burn": "cnn-burn"},
        "rnn": {"tch": "rnn", "candle": "rnn", "burn": "rnn-burn"}}
PYTHON = {task: ROOT / f"python/tasks/deep_learning/{task}.py" for task in RUST}
INIT_RTOL = 1e-5  # float32 forward logits of the same weights: rounding of different kernels
EPOCH_LOSS_RTOL = 0.01  # float32 mean training loss over one epoch: the 1%
# float64: every output and tensor, relative to the tensor's largest value. The outputs are float32,
# so two sides agreeing to float64 rounding differ by at most one float32 rounding (6e-8). A tensor
# whose values all lie below F64_SCALE is compared to F64_RTOL x F64_SCALE absolutely: such are the
# ones that are zero but for rounding (a bias before batch norm gets a zero gradient; MobileNetV2's
# were ~1e-19 after two steps, on every side).
F64_RTOL = 1e-6
F64_SCALE = 1e-3
# burn's AdamWConfig holds beta1, beta2 and epsilon as f32: 0.999 in float32 is 1 - 9.99987e-4, a
# 1.3e-5 relative error in (1 - beta2) that two Adam steps carry into the logits (measured 2e-6).
F64_RTOL_BURN_ADAMW = 2e-5
CUDA_STEP_RTOL = 1e-4  # tch and PyTorch on CUDA call the same kernels (cuDNN may pick different ones)


def make_job(folder: Path, datasets_dir: Path, algorithm: str, dataset: str, device: str = "cpu",
             task: str = "cnn", **params: object) -> Job:
    spec = load_task_spec(task)
    full = {k: v["default"] for k, v in spec.algorithms[algorithm].items()} | params
    return Job(run="parity", task=task, domain="deep_learning", language="python", framework="pytorch",
               algorithm=algorithm, dataset=dataset, datasets_dir=str(datasets_dir), hyperparameters=full,
               hardware_profile="gpu" if device == "cuda" else "cpu", device=device, threads=1,
               precision="float32", repetitions=1, warmup=0, seed=7, timeout_s=300.0,
               predictions_dir=str(folder / "predictions"), fixtures_dir=str(folder / "fixtures"),
               inference_batch_sizes=[1])


def run_side(job: Job, folder: Path, *extra: str) -> subprocess.CompletedProcess:
    path = folder / f"{job.framework}.yaml"
    path.write_text(dump_yaml(job.to_dict()))
    if job.language == "python":
        command = [sys.executable, str(PYTHON[job.task])]
    else:
        command = [str(rust_binary(RUST[job.task][job.framework]))]
    env = os.environ.copy()
    if libs := library_path(job):  # this Python's libtorch (and CUDA libraries), as the runner gives them
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [*libs, env.get("LD_LIBRARY_PATH")]))
    return subprocess.run([*command, "--config", str(path), "--out", str(folder / "records.jsonl"), *extra],
                          capture_output=True, text=True, timeout=300, env=env)


def parity(folder: Path, job: Job, frameworks: tuple[str, ...] = ("tch", "candle", "burn")
           ) -> dict[str, dict[str, np.ndarray]]:
    """Each side's parity outputs (the fixtures written first by the Python task: `--fixtures`)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    sides = [job] + [replace(job, language="rust", framework=f, job_id="") for f in frameworks]
    for side in sides:
        target = folder / f"parity-{side.framework}"
        done = run_side(side, folder, "--parity", str(target))
        assert done.returncode == 0, f"{side.framework}: {done.stderr}"
        out[side.framework] = {p.stem: np.load(p) for p in target.glob("*.npy")}
        out[side.framework]["step_weights"] = {p.stem: np.load(p) for p in (target / "step_weights").glob("*.npy")}
        out[side.framework]["weights_sha256"] = json.loads((target / "weights_sha256.json").read_text())
    return out


def relative(a: np.ndarray, b: np.ndarray, scale: float = 1e-30) -> float:
    """max |a - b| / max |a| (max |a| taken as at least `scale`)."""
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), scale))


def gaps_float64(reference: dict, side: dict) -> dict[str, float]:
    """Every output and every tensor after the steps, as relative gaps (a missing tensor: inf)."""
    gaps = {name: relative(reference[name], side[name], F64_SCALE)
            for name in ("init_logits", "step_logits", "step_loss")}
    for name, values in reference["step_weights"].items():
        gaps[f"{name} after 2 steps"] = (relative(values, side["step_weights"][name], F64_SCALE)
                                         if name in side["step_weights"] else float("inf"))
    return gaps


def check_training_parity(case: str, job: Job, folder: Path) -> list[str]:
    """Both precisions of one case (test_parity_cnn.py's docstring): the failures, each one line."""
    assert run_side(job, folder, "--fixtures").returncode == 0
    optimizer = job.hyperparameters["optimizer"]
    file_digests = weights_sha256(load_file(str(folder / "fixtures" / "init-7.safetensors")))
    failures = []
    for precision in ("float64", "float32"):
        outputs = parity(folder / precision, replace(job, precision=precision))
        reference = outputs.pop("pytorch")
        assert set(outputs) == set(RUST[job.task])
        assert reference["weights_sha256"] == file_digests  # PyTorch holds the file's values, to the bit
        for framework, side in outputs.items():
            if precision == "float64":
                bound = F64_RTOL_BURN_ADAMW if (framework, optimizer) == ("burn", "adamw") else F64_RTOL
                gaps = {name: (gap, bound) for name, gap in gaps_float64(reference, side).items()}
            else:
                if side["weights_sha256"] != file_digests:
                    differing = sorted(k for k in file_digests if side["weights_sha256"].get(k) != file_digests[k])
                    failures.append(f"{framework}: loaded weights differ from the file in {differing}")
                gaps = {"init logits": (relative(reference["init_logits"], side["init_logits"]), INIT_RTOL),
                        "epoch loss": (relative(reference["epoch_loss"], side["epoch_loss"]), EPOCH_LOSS_RTOL)}
                print(f"{case} float32 {framework}: logits after 2 steps "
                      f"{relative(reference['step_logits'], side['step_logits']):.1e} (not asserted)")
            failures += [f"{precision} {framework}: {name} differ by {gap:.2e} (allowed {allowed:.0e})"
                         for name, (gap, allowed) in gaps.items() if not gap <= allowed]
            worst = max(((gap / allowed, name) for name, (gap, allowed) in gaps.items()))
            print(f"{case} {precision} {framework}: worst gap/allowed {worst[0]:.2f} ({worst[1]})")
        if precision == "float32" and optimizer == "sgd":  # libtorch's kernels in PyTorch's order
            for name in ("init_logits", "step_logits", "epoch_loss", "epoch_logits"):
                np.testing.assert_array_equal(reference[name], outputs["tch"][name], err_msg=f"tch {name}")
    return failures


def check_cuda_parity(case: str, job: Job, folder: Path) -> list[str]:
    """tch against PyTorch on CUDA (skipped without a GPU), and candle where the binary is its `cuda`
    build: the loaded weights to the bit, the initial logits, the logits after two steps (tch, the
    same kernels; candle's own kernels: printed, as float32 steps are on the CPU) and the epoch's
    loss within bounds; prints the gaps."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device visible to torch")
    assert run_side(job, folder, "--fixtures").returncode == 0
    frameworks = ("tch", "candle") if links_cuda(rust_binary(RUST[job.task]["candle"])) else ("tch",)
    outputs = parity(folder, job, frameworks=frameworks)
    reference, failures = outputs["pytorch"], []
    for framework in frameworks:
        side = outputs[framework]
        assert side["weights_sha256"] == reference["weights_sha256"]
        step_rtol = CUDA_STEP_RTOL if framework == "tch" else math.inf
        gaps = {"init logits": (relative(reference["init_logits"], side["init_logits"]), INIT_RTOL),
                "logits after 2 steps": (relative(reference["step_logits"], side["step_logits"]), step_rtol),
                "epoch loss": (relative(reference["epoch_loss"], side["epoch_loss"]), EPOCH_LOSS_RTOL)}
        print(f"{case}: {framework} vs PyTorch on CUDA: " + ", ".join(f"{k} {g:.1e}" for k, (g, _) in gaps.items()))
        failures += [f"{framework}: {name} differ by {gap:.2e} (allowed {allowed:.0e})"
                     for name, (gap, allowed) in gaps.items() if not gap <= allowed]
    return failures
