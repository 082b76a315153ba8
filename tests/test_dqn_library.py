"""The DQN library comparison: stable-baselines3 against the Rust twins (`dqn_library`).

The library runs its own loop and random generator, so the runs are not step-identical; what the
sides must share is checked instead: stable-baselines3's Q-network computes exactly what PyTorch's
twin computes from the shared initial weights (so the name mapping is right), its episodes start
from the rollouts set's starts (its recorded actions, replayed in plain gymnasium from those starts,
give exactly the episodes it recorded), and the Rust twins run the same job under the task's linear
schedule; LunarLander runs in the library only. Bad jobs are refused with one line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import ROOT, rust_binary
from mlbench import agents
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
import dqn_library  # noqa: E402

from tasks.rl import dqn  # noqa: E402

STEPS = 1200
PARAMS = {"total_timesteps": STEPS, "buffer_size": 1000, "batch_size": 32, "learning_starts": 200, "train_freq": 4,
          "target_update_freq": 100, "exploration_fraction": 0.3}
SETS = ["cartpole_random", "chain_random", "lunarlander_random"]
SEEDS = 2
UPDATES = len(agents.update_steps(PARAMS, STEPS))


@pytest.fixture(scope="module")
def sets_dir(rl_sets_dir: Path) -> Path:
    return rl_sets_dir


@pytest.fixture(scope="module")
def library_run(tmp_path_factory: pytest.TempPathFactory, sets_dir: Path) -> Path:
    rust_binary("dqn")
    return quiet_run(tmp_path_factory.mktemp("dqn_library"), sets_dir, {
        "task": "dqn_library", "repetitions": SEEDS, "processes": 1, "warmup": 0, "datasets": SETS,
        "algorithms": {"dqn": PARAMS}})


def test_the_library_network_computes_the_twins(tmp_path: Path) -> None:
    """The shared weights under stable-baselines3's names give PyTorch's twin's Q-values."""
    from safetensors.numpy import save_file
    from stable_baselines3 import DQN

    params = {"hidden_size": 16, "hidden_layers": 3}
    weights = tmp_path / "init.safetensors"
    save_file(dqn.ALGORITHMS["dqn"].init(params, 4, 2, 7), str(weights))
    twin = dqn.QNetwork(4, 2, (16, 16, 16), dueling=False)
    from safetensors.torch import load_file

    twin.load_state_dict(load_file(weights))
    model = DQN("MlpPolicy", gym.make("CartPole-v1"), policy_kwargs={"net_arch": [16, 16, 16]}, device="cpu")
    model.q_net.load_state_dict(dqn_library.shared_weights(weights, 3))
    obs = torch.from_numpy(np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32))
    with torch.no_grad():
        assert torch.equal(model.q_net(obs), twin(obs))


def test_every_job_ran_or_is_unsupported(library_run: Path) -> None:
    records = assert_ran_or_unsupported(library_run, STEPS, UPDATES)
    assert all(r["metrics"]["final_return"] is not None for r in records)
    python = [r for r in records if r["language"] == "python"]
    assert len(python) == len(SETS) * SEEDS and all("stable-baselines3" in r["solver"]["name"] for r in python)


def test_library_episodes_start_from_the_set(library_run: Path, sets_dir: Path) -> None:
    python = [r for r in measured(library_run) if r["language"] == "python"]
    assert all(len(outputs(library_run, r)["actions"]) == STEPS for r in python)
    assert_episodes_replay(library_run, sets_dir, python)


def test_the_comparison_judges_by_the_iqm(library_run: Path) -> None:
    assert_judged_by_iqm(library_run, 2 * 2)  # CartPole and the chain x tch and candle


@pytest.mark.parametrize(("params", "message"), [
    ({"exploration": "multiplicative"}, "exploration"),
    ({"buffer_size": 50, "batch_size": 64}, "batch_size: 64 is above buffer_size 50"),
    ({}, "fixtures_dir"),
])
def test_library_program_refuses_bad_job(params: dict[str, Any], message: str, tmp_path: Path,
                                         narrow_dir: Path) -> None:
    config = agent_job(tmp_path, narrow_dir, "dqn_library", "dqn", "stable-baselines3", **params)
    assert_refused(program("dqn_library", "stable-baselines3"), config, message)
