"""What the RL tests' bad-job cases share: a single job file for one side of an agent task (the
task spec's defaults, a tiny network and run, the test's changes), and the check that a side's
program refuses it with one line, exit 2, and writes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import ROOT, rust_binary
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
