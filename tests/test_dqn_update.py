"""DQN's update: PyTorch (python/tasks/rl/dqn.py) and its Rust twins on tch and candle (rust/dqn)
take the same steps.

From the same initial weights (safetensors written here by PyTorch) and the same batches, six
updates with the target network refreshed every third: the online network's weights must agree to
1e-5 on both sides, and the losses to a relative 1e-5, for the plain and dueling networks, with and
without double Q-learning, and with a gradient-norm limit low enough to clip every step. The
updates move the weights by far more than the tolerance, and the other side's rule (double against
plain) leaves it, so the comparison can fail.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import rust_binary

torch = pytest.importorskip("torch", reason="the dl extra (torch) is not installed")
from safetensors.torch import load_file, save_file  # noqa: E402

from tasks.rl import dqn  # noqa: E402

OBSERVATIONS, ACTIONS, BATCH, UPDATES, TARGET_UPDATE_FREQ = 4, 3, 32, 6, 3
WEIGHTS_ATOL = 1e-5
LOSS_RTOL = 1e-5
VARIANTS = {
    "plain": {},
    "double": {"double": True},
    "dueling": {"dueling": True},
    "double dueling": {"double": True, "dueling": True},
    "clipped": {"max_grad_norm": 0.05},
}


def write_batches(folder: Path, seed: int) -> list[dqn.Batch]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(UPDATES):
        arrays = {"obs": rng.normal(size=(BATCH, OBSERVATIONS)).astype(np.float32),
                  "actions": rng.integers(0, ACTIONS, size=BATCH).astype(np.int64),
                  "rewards": rng.normal(size=BATCH).astype(np.float32),
                  "next_obs": rng.normal(size=(BATCH, OBSERVATIONS)).astype(np.float32),
                  "dones": (rng.random(BATCH) < 0.2).astype(np.float32)}
        for name, values in arrays.items():
            np.save(folder / f"batch-{k}-{name}.npy", values)
        out.append(dqn.Batch(**{name: torch.from_numpy(values) for name, values in arrays.items()}))
    return out


def python_updates(params: dqn.LearnerParams, weights: dict, batches: list[dqn.Batch]) -> tuple[dict, list[float]]:
    learner = dqn.Learner(OBSERVATIONS, ACTIONS, params, weights)
    losses = []
    for k, batch in enumerate(batches):
        losses.append(learner.update(batch))
        if (k + 1) % TARGET_UPDATE_FREQ == 0:
            learner.sync_target()
    return learner.online.state_dict(), losses


def rust_updates(params: dqn.LearnerParams, weights: Path, batches: Path, out: Path,
                 framework: str = "tch") -> tuple[dict, np.ndarray]:
    flags = [*(["--double"] if params.double else []), *(["--dueling"] if params.dueling else [])]
    done = subprocess.run([str(rust_binary("dqn")), "update", "--framework", framework, "--weights", str(weights),
                           "--batches", str(batches), "--out", str(out), "--observations", str(OBSERVATIONS),
                           "--actions", str(ACTIONS),
                           "--hidden", ",".join(map(str, params.hidden)), "--gamma", str(params.gamma),
                           "--learning-rate", str(params.learning_rate), "--max-grad-norm", str(params.max_grad_norm),
                           "--target-update-freq", str(TARGET_UPDATE_FREQ), *flags],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return load_file(out / "weights.safetensors"), np.load(out / "losses.npy")


def initial_weights(params: dqn.LearnerParams, path: Path) -> dict:
    torch.manual_seed(7)
    weights = dqn.QNetwork(OBSERVATIONS, ACTIONS, params.hidden, params.dueling).state_dict()
    save_file({name: tensor.contiguous() for name, tensor in weights.items()}, path)
    return weights


@pytest.mark.parametrize("framework", ["tch", "candle"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_both_sides_take_the_same_updates(variant: str, framework: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    params = dqn.LearnerParams(**VARIANTS[variant])
    weights = initial_weights(params, tmp_path / "init.safetensors")
    batches = write_batches(tmp_path / "batches", seed=11)
    expected, losses = python_updates(params, {k: v.clone() for k, v in weights.items()}, batches)
    got, rust_losses = rust_updates(params, tmp_path / "init.safetensors", tmp_path / "batches", tmp_path / "rust",
                                    framework)
    assert set(got) == set(expected)
    for name, tensor in expected.items():
        gap = float((got[name] - tensor).abs().max())
        assert gap <= WEIGHTS_ATOL, f"{framework} {variant}: {name} differs by {gap:.2e}"
        moved = float((tensor - weights[name]).abs().max())
        assert moved > 100 * WEIGHTS_ATOL, f"{variant}: {name} moved only {moved:.2e}: the test would not see a change"
    assert np.allclose(rust_losses, losses, rtol=LOSS_RTOL, atol=0), (rust_losses, losses)


@pytest.mark.parametrize("framework", ["tch", "candle"])
def test_the_comparison_sees_a_different_target_rule(framework: str, tmp_path: Path) -> None:
    """PyTorch with plain targets, Rust with double ones: the weights part beyond the tolerance."""
    torch.set_num_threads(1)
    plain = dqn.LearnerParams()
    weights = initial_weights(plain, tmp_path / "init.safetensors")
    batches = write_batches(tmp_path / "batches", seed=11)
    expected, _ = python_updates(plain, {k: v.clone() for k, v in weights.items()}, batches)
    got, _ = rust_updates(dqn.LearnerParams(double=True), tmp_path / "init.safetensors", tmp_path / "batches",
                          tmp_path / "rust", framework)
    assert max(float((got[name] - tensor).abs().max()) for name, tensor in expected.items()) > 10 * WEIGHTS_ATOL


@pytest.mark.parametrize("framework", ["tch", "candle"])
@pytest.mark.parametrize(("change", "fragment"), [
    ("missing weights", "--weights: "),
    ("dueling weights for a plain network", "--weights: "),
    ("no batches", "--batches: no batch-0-obs.npy"),
])
def test_update_refuses_bad_input(change: str, fragment: str, framework: str, tmp_path: Path) -> None:
    params = dqn.LearnerParams(dueling=change == "dueling weights for a plain network")
    weights = tmp_path / "init.safetensors"
    if change != "missing weights":
        initial_weights(params, weights)
    (tmp_path / "batches").mkdir()
    if change != "no batches":
        write_batches(tmp_path / "batches", seed=1)
    done = subprocess.run([str(rust_binary("dqn")), "update", "--framework", framework, "--weights", str(weights),
                           "--batches",
                           str(tmp_path / "batches"), "--out", str(tmp_path / "out"), "--observations",
                           str(OBSERVATIONS), "--actions", str(ACTIONS)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and fragment in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()
