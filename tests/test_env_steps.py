"""The env_steps task: gymnasium and the Rust ports step through the same transitions.

Both sides replay a rollouts set's actions from its episode starts, one copy (a plain loop) and
vectors of 3 and 8 (a finished copy resets on its next step). The completed episodes (returns,
lengths, in copy order) and the copies' last observations must be identical between the sides and
equal to a reference computed here, outside either harness, with plain `gym.make` environments stepped
copy by copy (so the test also pins down what SyncVectorEnv's autoreset does). CartPole, Acrobot and
the synthetic chain run on both sides; LunarLander runs in gymnasium only: the Rust side records
`unsupported` with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import ROOT, load_run, run_matrix, rust_binary
from mlbench import datasets as ds
from mlbench import rollouts
from mlbench.yamlio import dump_yaml
from test_bad_input import assert_bad_matrix, assert_usage_error

gym = pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")

from mlbench import synthetic_env  # noqa: E402  (after the gymnasium skip)

synthetic_env.register()

STEPS = 3000
WIDTHS = [1, 3, 8]
PORTED = ["cartpole_random", "acrobot_random", "chain_random"]
SETS = [*PORTED, "lunarlander_random"]


@pytest.fixture(scope="module")
def rollouts_dir(rl_sets_dir: Path) -> Path:
    return rl_sets_dir


@pytest.fixture(scope="module")
def steps_run(tmp_path_factory: pytest.TempPathFactory, rollouts_dir: Path) -> Path:
    rust_binary("rl-envs")
    return run_matrix(tmp_path_factory.mktemp("env_steps"), rollouts_dir, {
        "task": "env_steps", "repetitions": 1, "processes": 1, "warmup": 1, "datasets": SETS,
        "algorithms": {"random_actions": {"num_envs": WIDTHS, "steps": STEPS}}})


def measured(run: Path) -> list[dict[str, Any]]:
    return [r for r in load_run(run) if not r["warmup"]]


def outputs(run: Path, record: dict[str, Any]) -> dict[str, np.ndarray]:
    return {name: np.load(run / path) for name, path in record["artifacts"].items()}


def reference(data: rollouts.Rollouts, num_envs: int, steps: int) -> dict[str, np.ndarray]:
    """Each copy stepped alone in `gym.make`: episode k from start k; in a vector (num_envs > 1) the
    step after an episode ended only resets the copy."""
    returns, lengths, last = [], [], []
    for copy in range(num_envs):
        env = gym.make(data.environment)
        episode, resetting, total, length = 0, False, 0.0, 0

        def reset(episode: int, env: gym.Env = env, copy: int = copy) -> np.ndarray:
            env.reset()
            env.unwrapped.state = data.starts[copy, episode].copy()
            return np.asarray(env.unwrapped.state if data.environment == "CartPole-v1"
                              else env.unwrapped._get_ob(), dtype=np.float32)

        observation = reset(0)
        for t in range(steps):
            if resetting:
                episode += 1
                observation, resetting = reset(episode), False
                continue
            observation, reward, terminated, truncated, _ = env.step(int(data.actions[t, copy]))
            total, length = total + reward, length + 1
            if terminated or truncated:
                returns.append(total)
                lengths.append(length)
                total, length = 0.0, 0
                if num_envs > 1:
                    resetting = True
                else:
                    episode += 1
                    observation = reset(episode)
        last.append(np.asarray(observation, dtype=np.float32))
    return {"returns": np.asarray(returns, dtype=np.float64), "lengths": np.asarray(lengths, dtype=np.float64),
            "final_observations": np.stack(last)}


def test_every_job_ran_or_is_unsupported_with_a_reason(steps_run: Path) -> None:
    records = [r for r in load_run(steps_run) if not r["warmup"] or r["status"] == "unsupported"]
    assert len(records) == len(SETS) * len(WIDTHS) * 2
    for r in records:
        if r["language"] == "rust" and r["dataset"] == "lunarlander_random":
            assert r["status"] == "unsupported" and "Box2D" in r["error"]
            continue
        assert r["status"] == "ok", r["error"]
        n = r["hyperparameters"]["num_envs"]
        assert r["counts"] == {"step": STEPS * n}
        assert r["throughput"]["step_samples_per_s"] == pytest.approx(STEPS * n / r["timings_s"]["step"])
        assert r["metrics"]["episodes"] >= 3 * n, "the comparison must cross resets"


@pytest.mark.parametrize("dataset", PORTED)
def test_both_sides_complete_the_reference_episodes(steps_run: Path, rollouts_dir: Path, dataset: str) -> None:
    data = ds.load_rollouts(dataset, rollouts_dir)
    for num_envs in WIDTHS:
        expected = reference(data, num_envs, STEPS)
        for r in measured(steps_run):
            if r["dataset"] != dataset or r["hyperparameters"]["num_envs"] != num_envs:
                continue
            got = outputs(steps_run, r)
            for name, values in expected.items():
                assert np.array_equal(got[name], values), f"{r['language']} {dataset} x{num_envs}: {name} differ"


def test_lunarlander_runs_in_gymnasium(steps_run: Path, rollouts_dir: Path) -> None:
    """No Rust port; gymnasium's own runs reset with the set's seeds, so two processes agree."""
    python = [r for r in measured(steps_run) if r["dataset"] == "lunarlander_random" and r["language"] == "python"]
    assert {r["hyperparameters"]["num_envs"] for r in python} == set(WIDTHS)
    assert all(r["metrics"]["mean_return"] < 0 for r in python)  # random actions crash the lander


def test_the_comparison_calls_the_quality_the_same(steps_run: Path) -> None:
    from mlbench import stats

    table, loaded = stats.load([steps_run])
    comparisons = stats.compare(table, loaded, phase="step")
    assert len(comparisons) == len(PORTED) * len(WIDTHS)
    assert not comparisons["quality_mismatch"].any()
    assert (comparisons["agreement"] == 1.0).all()
    assert (comparisons["quality_tolerance"] == 0.0).all()


def test_a_changed_episode_is_a_quality_mismatch(steps_run: Path, tmp_path: Path) -> None:
    """The judge can fail: one Rust episode one step longer is no longer the same quality."""
    from mlbench import stats

    records = load_run(steps_run)
    changed = next(r for r in records if r["language"] == "rust" and r["status"] == "ok" and not r["warmup"])
    returns = np.load(steps_run / changed["artifacts"]["returns"])
    returns[0] += 1.0
    np.save(steps_run / changed["artifacts"]["returns"], returns)
    changed["metrics"]["mean_return"] += 1.0 / len(returns)
    run = tmp_path / "run"
    run.mkdir()
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run / "meta.json").write_text((steps_run / "meta.json").read_text())
    (run / "predictions").symlink_to(steps_run / "predictions")
    table, loaded = stats.load([run])
    comparisons = stats.compare(table, loaded, phase="step")
    row = comparisons[(comparisons["dataset"] == changed["dataset"])
                      & comparisons["params"].str.contains(f'"num_envs": {changed["hyperparameters"]["num_envs"]}')]
    assert len(row) == 1 and bool(row["quality_mismatch"].iloc[0]) and row["agreement"].iloc[0] < 1.0


# Bad input: refused with one line naming the file and field, nothing written. `narrow_dir` holds a
# two-copy, 500-step CartPole set under the name cartpole_random, and iris under the name
# acrobot_random (a dataset that is not a rollouts set).
GOOD: dict[str, Any] = {"task": "env_steps", "repetitions": 1, "processes": 1, "warmup": 0,
                        "datasets": ["cartpole_random"], "algorithms": {"random_actions": {"steps": 100}}}
MATRIX_CASES = {
    "zero steps": ({"algorithms": {"random_actions": {"steps": 0}}}, "steps: 0 is less than the minimum of 1"),
    "too wide": ({"algorithms": {"random_actions": {"num_envs": 9}}}, "num_envs: 9 is greater than the maximum of 8"),
    "unknown environment": ({"datasets": ["mountaincar_random"]}, "datasets: unknown dataset 'mountaincar_random'"),
    "more copies than the set": ({"algorithms": {"random_actions": {"num_envs": 4}}},
                                 "num_envs: 4 is above the 2 copies of rollouts set cartpole_random"),
    "more steps than the set": ({"algorithms": {"random_actions": {"steps": 501}}},
                                "steps: 501 is above the 500 steps of rollouts set cartpole_random"),
    "not a rollouts set": ({"datasets": ["acrobot_random"]},
                           "dataset 'acrobot_random' is not an environment's rollouts set"),
}


@pytest.fixture(scope="module")
def narrow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("narrow")
    ds.write("cartpole_random", rollouts.random_rollouts("CartPole-v1", seed=5, steps=500, n_envs=2), folder)
    ds.write("acrobot_random", ds.BUILDERS["iris"](False), folder)
    return folder


@pytest.mark.parametrize("case", list(MATRIX_CASES))
def test_bad_env_steps_matrix(case: str, tmp_path: Path, narrow_dir: Path) -> None:
    change, message = MATRIX_CASES[case]
    assert_bad_matrix(GOOD | change, message, tmp_path, narrow_dir)


def job_file(folder: Path, datasets: Path, language: str, framework: str, dataset: str, **params: Any) -> Path:
    job = {"schema_version": 3, "job_id": "0123456789abcdef", "run": "bad", "task": "env_steps", "domain": "rl",
           "language": language, "framework": framework, "algorithm": "random_actions", "dataset": dataset,
           "datasets_dir": str(datasets), "hyperparameters": {"num_envs": 1, "steps": 100} | params,
           "hardware_profile": "cpu", "device": "cpu", "threads": 1, "precision": "float64", "repetitions": 1,
           "warmup": 0, "seed": 1, "timeout_s": 60, "predictions_dir": str(folder / "predictions"),
           "min_sample_s": 0.0, "processes": 1}
    path = folder / f"{framework}.yaml"
    path.write_text(dump_yaml(job))
    return path


SIDES = {"gymnasium": ("python", [sys.executable, str(ROOT / "python/tasks/rl/env_steps.py")]),
         "rl-envs": ("rust", None)}
PROGRAM_CASES = {
    "more copies than the set": ("cartpole_random", {"num_envs": 4}, "num_envs: 4 is above the 2 copies"),
    "more steps than the set": ("cartpole_random", {"steps": 501}, "steps: 501 is above the 500 steps"),
    "zero steps": ("cartpole_random", {"steps": 0}, "steps"),
    "not a rollouts set": ("acrobot_random", {}, "is not an environment's rollouts set"),
}


@pytest.mark.slow
@pytest.mark.parametrize("framework", list(SIDES))
@pytest.mark.parametrize("case", list(PROGRAM_CASES))
def test_env_steps_program_refuses_bad_job(framework: str, case: str, tmp_path: Path, narrow_dir: Path) -> None:
    dataset, params, message = PROGRAM_CASES[case]
    language, command = SIDES[framework]
    config = job_file(tmp_path, narrow_dir, language, framework, dataset, **params)
    out = tmp_path / "records.jsonl"
    program = command if command is not None else [str(rust_binary("rl-envs"))]
    result = subprocess.run([*program, "--config", str(config), "--out", str(out)], capture_output=True, text=True,
                            timeout=120)
    assert_usage_error(result, str(config), message)
    assert not out.exists() and not (tmp_path / "predictions").exists()
