"""The PPO library comparison: stable-baselines3's PPO from the shared initial weights and episode
starts, against the Rust twins (the `ppo` binary), judged by the seeds' IQM CIs.

The library's PPO network under the shared weights gives the PyTorch twin's action probabilities
and values; its episodes start from the rollouts set's starts (its recorded actions, replayed in
plain gymnasium from those starts, give exactly its recorded episodes); every job runs or is
unsupported with a reason; the comparison is judged by the IQM; bad input is refused.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import ROOT, rust_binary
from rl_checks import (
    agent_job,
    assert_episodes_replay,
    assert_judged_by_iqm,
    assert_ran_or_unsupported,
    assert_refused,
    measured,
    outputs,
    program,
    quiet_run,
)

gym = pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")
torch = pytest.importorskip("torch", reason="the dl extra (torch) is not installed")
pytest.importorskip("stable_baselines3", reason="the rl extra (stable-baselines3) is not installed")

sys.path.insert(0, str(ROOT / "python" / "tasks" / "rl"))
import a2c_library  # noqa: E402

from tasks.rl import a2c  # noqa: E402

STEPS = 1024  # whole rollouts: the library finishes the rollout it is in, the twins stop at STEPS
PARAMS = {"total_timesteps": STEPS, "n_steps": 128, "batch_size": 32, "n_epochs": 2}
SETS = ["cartpole_random", "acrobot_random", "lunarlander_random"]
SEEDS = 2
UPDATES = STEPS // PARAMS["n_steps"]


@pytest.fixture(scope="module")
def library_run(tmp_path_factory: pytest.TempPathFactory, rl_sets_dir: Path) -> Path:
    rust_binary("ppo")
    return quiet_run(tmp_path_factory.mktemp("ppo_library"), rl_sets_dir, {
        "task": "ppo_library", "repetitions": SEEDS, "processes": 1, "warmup": 0, "datasets": SETS,
        "algorithms": {"ppo": PARAMS}})


def test_the_library_networks_compute_the_twins(tmp_path: Path) -> None:
    """The shared weights in stable-baselines3's PPO give PyTorch's twin's probabilities and values."""
    from safetensors.numpy import save_file
    from safetensors.torch import load_file
    from stable_baselines3 import PPO

    weights = tmp_path / "init.safetensors"
    save_file(a2c.init({"hidden_size": 16, "hidden_layers": 2}, 4, 2, 7), str(weights))
    twin = a2c.ActorCritic(4, 2, (16, 16))
    twin.load_state_dict(load_file(weights))
    model = PPO("MlpPolicy", gym.make("CartPole-v1"), device="cpu",
                policy_kwargs={"net_arch": {"pi": [16, 16], "vf": [16, 16]}, "activation_fn": torch.nn.Tanh})
    a2c_library.load_shared(model, weights)
    obs = torch.from_numpy(np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32))
    with torch.no_grad():
        logits, values = twin(obs)
        distribution = model.policy.get_distribution(obs).distribution
        assert torch.allclose(distribution.probs, torch.softmax(logits, dim=1), rtol=0, atol=1e-7)
        assert torch.equal(model.policy.predict_values(obs).squeeze(1), values)


def test_every_job_ran_or_is_unsupported(library_run: Path) -> None:
    python = [r for r in assert_ran_or_unsupported(library_run, STEPS, UPDATES) if r["language"] == "python"]
    assert len(python) == len(SETS) * SEEDS and all("stable-baselines3" in r["solver"]["name"] for r in python)


def test_library_episodes_start_from_the_set(library_run: Path, rl_sets_dir: Path) -> None:
    python = [r for r in measured(library_run) if r["language"] == "python"]
    assert all(len(outputs(library_run, r)["actions"]) == STEPS for r in python)
    assert_episodes_replay(library_run, rl_sets_dir, python)


def test_the_comparison_judges_by_the_iqm(library_run: Path) -> None:
    assert_judged_by_iqm(library_run, 2 * 2)  # CartPole and Acrobot x tch and candle


@pytest.mark.parametrize(("params", "message"), [({"n_steps": 16, "batch_size": 32}, "batch_size: 32 is above"),
                                                 ({"clip_range": 0.0}, "clip_range"), ({}, "fixtures_dir")])
def test_library_program_refuses_bad_job(params: dict[str, Any], message: str, tmp_path: Path,
                                         narrow_dir: Path) -> None:
    config = agent_job(tmp_path, narrow_dir, "ppo_library", "ppo", "stable-baselines3", **params)
    assert_refused(program("ppo_library", "stable-baselines3"), config, message)
