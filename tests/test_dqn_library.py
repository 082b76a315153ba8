"""The DQN library comparison: stable-baselines3 against the Rust twins (`dqn_library`).

The library runs its own loop and random generator, so the runs are not step-identical; what the
sides must share is checked instead: stable-baselines3's Q-network computes exactly what PyTorch's
twin computes from the shared initial weights (so the name mapping is right), its episodes start
from the rollouts set's starts (its recorded actions, replayed in plain gymnasium from those starts,
give exactly the episodes it recorded), and the Rust twins run the same job under the task's linear
schedule; LunarLander runs in the library only. Bad jobs are refused with one line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import ROOT, load_run, rust_binary
from mlbench import agents
from mlbench import datasets as ds
from mlbench.yamlio import dump_yaml
from test_bad_input import assert_usage_error

gym = pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")
torch = pytest.importorskip("torch", reason="the dl extra (torch) is not installed")
pytest.importorskip("stable_baselines3", reason="the rl extra (stable-baselines3) is not installed")

sys.path.insert(0, str(ROOT / "python" / "tasks" / "rl"))
import dqn_library  # noqa: E402

from tasks.rl import dqn  # noqa: E402
from test_dqn_train import quiet_run, replay  # noqa: E402

STEPS = 1200
PARAMS = {"total_timesteps": STEPS, "buffer_size": 1000, "batch_size": 32, "learning_starts": 200, "train_freq": 4,
          "target_update_freq": 100, "exploration_fraction": 0.3}
SETS = ["cartpole_random", "chain_random", "lunarlander_random"]
SEEDS = 2


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
    records = load_run(library_run)
    for r in records:
        if r["language"] == "rust" and r["dataset"] == "lunarlander_random":
            assert r["status"] == "unsupported" and "Box2D" in r["error"]
            continue
        assert r["status"] == "ok", r["error"]
        assert r["counts"]["train"] == STEPS
        assert r["counts"]["update"] == len(agents.update_steps(PARAMS, STEPS))
        assert r["metrics"]["final_return"] is not None
    python = [r for r in records if r["language"] == "python"]
    assert len(python) == len(SETS) * SEEDS and all("stable-baselines3" in r["solver"]["name"] for r in python)


def test_library_episodes_start_from_the_set(library_run: Path, sets_dir: Path) -> None:
    for r in load_run(library_run):
        if r["language"] != "python" or r["dataset"] == "lunarlander_random":
            continue
        data = ds.load_rollouts(r["dataset"], sets_dir)
        got = {name: np.load(library_run / path) for name, path in r["artifacts"].items()}
        assert len(got["actions"]) == STEPS
        expected = replay(data, r["seed"] % data.n_envs, got["actions"])
        for name, values in expected.items():
            assert np.array_equal(got[name], values), f"{r['dataset']} seed {r['seed']}: {name}"


def test_the_comparison_judges_by_the_iqm(library_run: Path) -> None:
    from mlbench import stats

    table, loaded = stats.load([library_run])
    comparisons = stats.compare(table, loaded, phase="train")
    assert len(comparisons) == 2 * 2  # CartPole and the chain x tch and candle
    assert comparisons["quality_ci_python"].notna().all()


def job_file(folder: Path, datasets: Path, **params: Any) -> Path:
    defaults = {"total_timesteps": 100, "learning_rate": 1e-3, "buffer_size": 50, "batch_size": 8, "gamma": 0.99,
                "target_update_freq": 10, "learning_starts": 10, "train_freq": 1, "exploration": "linear",
                "epsilon_start": 1.0, "epsilon_end": 0.05, "epsilon_decay": 0.99, "decay_every": "step",
                "exploration_fraction": 0.1, "max_grad_norm": 10.0, "hidden_size": 8, "hidden_layers": 1}
    job = {"schema_version": 3, "job_id": "0123456789abcdef", "run": "bad", "task": "dqn_library", "domain": "rl",
           "language": "python", "framework": "stable-baselines3", "algorithm": "dqn", "dataset": "cartpole_random",
           "datasets_dir": str(datasets), "hyperparameters": defaults | params, "hardware_profile": "cpu",
           "device": "cpu", "threads": 1, "precision": "float32", "repetitions": 1, "warmup": 0, "seed": 1,
           "timeout_s": 60, "predictions_dir": str(folder / "predictions"), "min_sample_s": 0.0, "processes": 1,
           "fixtures_dir": str(folder / "fixtures")}
    path = folder / "job.yaml"
    path.write_text(dump_yaml(job))
    return path


@pytest.mark.parametrize(("params", "message"), [
    ({"exploration": "multiplicative"}, "exploration"),
    ({"batch_size": 64}, "batch_size: 64 is above buffer_size 50"),
    ({}, "fixtures_dir"),
])
def test_library_program_refuses_bad_job(params: dict[str, Any], message: str, tmp_path: Path,
                                         narrow_dir: Path) -> None:
    config = job_file(tmp_path, narrow_dir, **params)
    out = tmp_path / "records.jsonl"
    result = subprocess.run([sys.executable, str(ROOT / "python/tasks/rl/dqn_library.py"), "--config", str(config),
                             "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert_usage_error(result, str(config), message)
    assert not out.exists() and not (tmp_path / "predictions").exists()
