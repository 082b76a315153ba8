"""What the RL tests share: running a matrix quietly; a run's records and artifacts; the independent
replay of recorded actions in plain gymnasium; the checks every agent task makes (each job ran or is
unsupported with a reason, the recorded episodes are what the actions give, a twin follows
PyTorch's actions and losses, the comparison is judged by the IQM); and the bad-job cases (a job
file for one side from the task spec's defaults, and the check that a program refuses it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from conftest import ROOT, load_run, mlbench, rust_binary, write_yaml
from mlbench import datasets as ds
from mlbench import rollouts
from mlbench.config import load_task_spec
from mlbench.yamlio import dump_yaml
from test_bad_input import assert_usage_error

SMALL = {"total_timesteps": 100, "hidden_size": 8, "hidden_layers": 1}


def agent_job(folder: Path, datasets: Path, task: str, algorithm: str, framework: str, **params: Any) -> Path:
    """One job of `task` for `framework` (its language from the spec) on CartPole's rollouts set."""
    spec = load_task_spec(task)
    defaults = {name: schema["default"] for name, schema in spec.algorithms[algorithm].items()}
    language = "python" if framework in spec.frameworks("python") else "rust"
    job = {"schema_version": 3, "job_id": "0123456789abcdef", "run": "bad", "task": task, "domain": "rl",
           "language": language, "framework": framework, "algorithm": algorithm, "dataset": "cartpole_random",
           "datasets_dir": str(datasets), "hyperparameters": defaults | SMALL | params, "hardware_profile": "cpu",
           "device": "cpu", "threads": 1, "precision": "float32", "repetitions": 1, "warmup": 0, "seed": 1,
           "timeout_s": 60, "predictions_dir": str(folder / "predictions"), "min_sample_s": 0.0, "processes": 1,
           "fixtures_dir": str(folder / "fixtures")}
    path = folder / f"{framework}.yaml"
    path.write_text(dump_yaml(job))
    return path


def assert_refused(program: list[str], config: Path, message: str) -> None:
    """The program refuses the job: one line naming the file and `message`, exit 2, nothing written."""
    out = config.parent / "records.jsonl"
    result = subprocess.run([*program, "--config", str(config), "--out", str(out)], capture_output=True, text=True,
                            timeout=120)
    assert_usage_error(result, str(config), message)
    assert not out.exists() and not (config.parent / "predictions").exists()


def program(task: str, framework: str) -> list[str]:
    """The command of a side: the spec's Python script, or its Rust binary."""
    spec = load_task_spec(task)
    if framework in spec.frameworks("python"):
        return [sys.executable, str(ROOT / spec.python["script"])]
    return [str(rust_binary(spec.binary(framework)))]


def quiet_run(folder: Path, datasets_dir: Path, matrix: dict[str, Any]) -> Path:
    """Run a matrix with the host watch off: these tests judge quality and agreement, and a repetition
    flagged disturbed by other work on the machine would leave its comparison out."""
    result = mlbench("run", write_yaml(folder / "matrix.yaml", matrix), "--out", folder / "run", "--datasets-dir",
                     datasets_dir, "--no-table", "--no-host-watch")
    assert result.returncode == 0, result.stderr + result.stdout
    return folder / "run"


def measured(run: Path) -> list[dict[str, Any]]:
    return [r for r in load_run(run) if not r["warmup"] and r["status"] == "ok"]


def outputs(run: Path, record: dict[str, Any]) -> dict[str, np.ndarray]:
    return {name: np.load(run / path) for name, path in record["artifacts"].items()}


def side(run: Path, dataset: str, framework: str, seed: int, **hyperparameters: Any) -> dict[str, np.ndarray]:
    """The artifacts of the measured record of a side, seed and dataset (with these hyperparameters)."""
    for r in measured(run):
        if (r["dataset"], r["framework"], r["seed"]) == (dataset, framework, seed) and all(
                r["hyperparameters"][name] == value for name, value in hyperparameters.items()):
            return outputs(run, r)
    raise AssertionError(f"no record of {framework} on {dataset}, seed {seed}, {hyperparameters}")


def shared_prefix(a: np.ndarray, b: np.ndarray) -> int:
    differ = np.flatnonzero(a != b)
    return int(differ[0]) if len(differ) else len(a)


def replay(data: rollouts.Rollouts, copy: int, actions: np.ndarray) -> dict[str, np.ndarray]:
    """The episodes `actions` give in plain gymnasium from the set's starts of `copy`."""
    import gymnasium as gym

    from mlbench import synthetic_env
    from mlbench.starts import Starts

    synthetic_env.register()
    env, starts = gym.make(data.environment), Starts(data, copy)
    starts.reset(env)
    returns, lengths, ends, total, length = [], [], [], 0.0, 0
    for t, action in enumerate(actions.tolist()):
        _, reward, terminated, truncated, _ = env.step(action)
        total, length = total + reward, length + 1
        if terminated or truncated:
            returns.append(total)
            lengths.append(length)
            ends.append(t + 1)
            total, length = 0.0, 0
            starts.reset(env)
    return {"returns": np.asarray(returns), "lengths": np.asarray(lengths, dtype=np.float64),
            "episode_ends": np.asarray(ends, dtype=np.float64)}


def assert_ran_or_unsupported(run: Path, steps: int, updates: int,
                              *declined: tuple[str, str, str]) -> list[dict[str, Any]]:
    """Every job ran (`steps` environment steps, `updates` updates) but the Rust sides' LunarLander,
    unsupported for want of a Rust Box2D, and the `declined` (framework, algorithm, a word of the
    reason) jobs; the measured records."""
    reasons = {(framework, algorithm): word for framework, algorithm, word in declined}
    for r in load_run(run):
        if r["language"] == "rust" and r["dataset"] == "lunarlander_random":
            assert r["status"] == "unsupported" and "Box2D" in r["error"]
            continue
        if (r["framework"], r["algorithm"]) in reasons:
            assert r["status"] == "unsupported" and reasons[r["framework"], r["algorithm"]] in r["error"]
            continue
        assert r["status"] == "ok", r["error"]
        if not r["warmup"]:
            assert r["counts"]["train"] == steps and r["counts"]["update"] == updates, r["counts"]
            assert r["metrics"]["episodes"] >= 1
    return measured(run)


def assert_episodes_replay(run: Path, sets_dir: Path, records: list[dict[str, Any]]) -> None:
    """Each record's episodes are what its recorded actions give in plain gymnasium from its starts."""
    for r in records:
        data = ds.load_rollouts(r["dataset"], sets_dir)
        got = outputs(run, r)
        expected = replay(data, r["seed"] % data.n_envs, got["actions"])
        for name, values in expected.items():
            assert np.array_equal(got[name], values), f"{r['framework']} {r['dataset']} seed {r['seed']}: {name}"


def assert_follows(py: dict[str, np.ndarray], twin: dict[str, np.ndarray], where: str, least: int,
                   steps_per_update: int, rtol: float, atol: float, most_updates: int | None = None) -> int:
    """The twin takes PyTorch's actions over at least `least` steps, the losses of the updates inside
    that prefix (at most `most_updates`) agree, and so do the episodes finished there; the number of
    those episodes cut by the 500-step limit."""
    prefix = shared_prefix(py["actions"], twin["actions"])
    assert prefix >= least, f"{where}: actions differ from step {prefix}"
    inside = prefix // steps_per_update if most_updates is None else min(prefix // steps_per_update, most_updates)
    np.testing.assert_allclose(twin["losses"][:inside], py["losses"][:inside], rtol=rtol, atol=atol, err_msg=where)
    done = int(np.searchsorted(py["episode_ends"], prefix, side="right"))
    assert np.array_equal(py["returns"][:done], twin["returns"][:done]), where
    return int(np.sum(py["lengths"][:done] == 500))


def assert_judged_by_iqm(run: Path, comparisons: int) -> None:
    """The run's `comparisons` comparisons carry the Python side's IQM CI (the agent kind's rule)."""
    from mlbench import stats

    table, loaded = stats.load([run])
    compared = stats.compare(table, loaded, phase="train")
    assert len(compared) == comparisons
    assert compared["quality_ci_python"].notna().all()
