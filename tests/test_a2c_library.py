"""The A2C library comparison: stable-baselines3's A2C from the shared initial weights and episode
starts, against the Rust twins (the `a2c` binary), judged by the seeds' IQM CIs.

The library's networks under the shared weights give the PyTorch twin's action probabilities and
values exactly; its episodes start from the rollouts set's starts (its recorded actions, replayed
in plain gymnasium from those starts, give exactly its recorded episodes); every job runs or is
unsupported with a reason; the comparison is judged by the IQM; bad input is refused.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import ROOT, load_run, rust_binary
from mlbench import datasets as ds
from mlbench.yamlio import dump_yaml
from test_bad_input import assert_usage_error

gym = pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")
torch = pytest.importorskip("torch", reason="the dl extra (torch) is not installed")
pytest.importorskip("stable_baselines3", reason="the rl extra (stable-baselines3) is not installed")

sys.path.insert(0, str(ROOT / "python" / "tasks" / "rl"))
import a2c_library  # noqa: E402

from tasks.rl import a2c  # noqa: E402
from test_dqn_train import quiet_run, replay  # noqa: E402

STEPS = 1000
PARAMS = {"total_timesteps": STEPS, "n_steps": 5}
SETS = ["cartpole_random", "acrobot_random", "lunarlander_random"]
SEEDS = 2


@pytest.fixture(scope="module")
def library_run(tmp_path_factory: pytest.TempPathFactory, rl_sets_dir: Path) -> Path:
    rust_binary("a2c")
    return quiet_run(tmp_path_factory.mktemp("a2c_library"), rl_sets_dir, {
        "task": "a2c_library", "repetitions": SEEDS, "processes": 1, "warmup": 0, "datasets": SETS,
        "algorithms": {"a2c": PARAMS}})


def test_the_library_networks_compute_the_twins(tmp_path: Path) -> None:
    """The shared weights under stable-baselines3's names give PyTorch's twin's probabilities and values."""
    from safetensors.numpy import save_file
    from safetensors.torch import load_file
    from stable_baselines3 import A2C

    params = {"hidden_size": 16, "hidden_layers": 3}
    weights = tmp_path / "init.safetensors"
    save_file(a2c.ALGORITHMS["a2c"].init(params, 6, 3, 7), str(weights))
    twin = a2c.ActorCritic(6, 3, (16, 16, 16))
    twin.load_state_dict(load_file(weights))
    model = A2C("MlpPolicy", gym.make("Acrobot-v1"), device="cpu",
                policy_kwargs={"net_arch": {"pi": [16] * 3, "vf": [16] * 3}, "activation_fn": torch.nn.Tanh})
    model.policy.load_state_dict(a2c_library.shared_weights(weights), strict=False)
    obs = torch.from_numpy(np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32))
    with torch.no_grad():
        logits, values = twin(obs)
        distribution = model.policy.get_distribution(obs).distribution
        assert torch.allclose(distribution.probs, torch.softmax(logits, dim=1), rtol=0, atol=1e-7)
        assert torch.equal(model.policy.predict_values(obs).squeeze(1), values)


def test_every_job_ran_or_is_unsupported(library_run: Path) -> None:
    records = load_run(library_run)
    for r in records:
        if r["language"] == "rust" and r["dataset"] == "lunarlander_random":
            assert r["status"] == "unsupported" and "Box2D" in r["error"]
            continue
        assert r["status"] == "ok", r["error"]
        assert r["counts"]["train"] == STEPS and r["counts"]["update"] == STEPS // PARAMS["n_steps"]
        assert r["metrics"]["episodes"] >= 1
    python = [r for r in records if r["language"] == "python"]
    assert len(python) == len(SETS) * SEEDS and all("stable-baselines3" in r["solver"]["name"] for r in python)


def test_library_episodes_start_from_the_set(library_run: Path, rl_sets_dir: Path) -> None:
    for r in load_run(library_run):
        if r["language"] != "python" or r["dataset"] == "lunarlander_random":
            continue
        data = ds.load_rollouts(r["dataset"], rl_sets_dir)
        got = {name: np.load(library_run / path) for name, path in r["artifacts"].items()}
        assert len(got["actions"]) == STEPS
        expected = replay(data, r["seed"] % data.n_envs, got["actions"])
        for name, values in expected.items():
            assert np.array_equal(got[name], values), f"{r['dataset']} seed {r['seed']}: {name}"


def test_the_comparison_judges_by_the_iqm(library_run: Path) -> None:
    from mlbench import stats

    table, loaded = stats.load([library_run])
    comparisons = stats.compare(table, loaded, phase="train")
    assert len(comparisons) == 2 * 2  # CartPole and Acrobot x tch and candle
    assert comparisons["quality_ci_python"].notna().all()


@pytest.mark.parametrize(("params", "message"), [({"n_steps": 0}, "n_steps"), ({}, "fixtures_dir")])
def test_library_program_refuses_bad_job(params: dict[str, Any], message: str, tmp_path: Path,
                                         narrow_dir: Path) -> None:
    defaults = {"total_timesteps": 100, "learning_rate": 7e-4, "n_steps": 5, "gamma": 0.99, "gae_lambda": 1.0,
                "ent_coef": 0.0, "vf_coef": 0.5, "max_grad_norm": 0.5, "rms_alpha": 0.99, "rms_eps": 1e-5,
                "hidden_size": 8, "hidden_layers": 1}
    job = {"schema_version": 3, "job_id": "0123456789abcdef", "run": "bad", "task": "a2c_library", "domain": "rl",
           "language": "python", "framework": "stable-baselines3", "algorithm": "a2c", "dataset": "cartpole_random",
           "datasets_dir": str(narrow_dir), "hyperparameters": defaults | params, "hardware_profile": "cpu",
           "device": "cpu", "threads": 1, "precision": "float32", "repetitions": 1, "warmup": 0, "seed": 1,
           "timeout_s": 60, "predictions_dir": str(tmp_path / "predictions"), "min_sample_s": 0.0, "processes": 1,
           "fixtures_dir": str(tmp_path / "fixtures")}
    config = tmp_path / "job.yaml"
    config.write_text(dump_yaml(job))
    out = tmp_path / "records.jsonl"
    result = subprocess.run([sys.executable, str(ROOT / "python/tasks/rl/a2c_library.py"), "--config", str(config),
                             "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert_usage_error(result, str(config), message)
    assert not out.exists() and not (tmp_path / "predictions").exists()
