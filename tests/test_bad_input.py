"""Bad input: one clear line naming file and field, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import mlbench, write_yaml
from mlbench.datasets import sha256_file

GOOD: dict[str, Any] = {"task": "regression", "repetitions": 2, "processes": 1, "datasets": ["diabetes"],
                        "algorithms": {"ridge": {"alpha": 1.0}}}

CASES = {
    "unknown task": ({"task": "regresion"}, "task: unknown task 'regresion'"),
    "unknown algorithm": ({"algorithms": {"ridge2": {}}}, "algorithms.ridge2: unknown algorithm"),
    "unknown dataset": ({"datasets": ["iris2"]}, "datasets: unknown dataset 'iris2'"),
    "unknown top-level key": ({"repetition": 3}, "Additional properties are not allowed ('repetition'"),
    "unknown hyperparameter": ({"algorithms": {"ridge": {"alpha": 1.0, "beta": 2}}},
                               "algorithms.ridge: (top level): Additional properties are not allowed ('beta'"),
    "wrong type": ({"repetitions": "three"}, "repetitions: 'three' is not of type 'integer'"),
    "wrong hyperparameter type": ({"algorithms": {"ridge": {"alpha": "big"}}},
                                  "algorithms.ridge: alpha: 'big' is not of type 'number'"),
    "negative repetitions": ({"repetitions": -1}, "repetitions: -1 is less than the minimum of 1"),
    "bad hyperparameter value": ({"algorithms": {"elastic_net": {"l1_ratio": 1.5}}},
                                 "l1_ratio: 1.5 is greater than the maximum of 1"),
}


def assert_usage_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


GARBLED_SAFETENSORS = b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}"  # a header length, then no header


def changed_copy(datasets_dir: Path, name: str, folder: Path, change: Callable[[Path], None]) -> Path:
    """A copy of dataset `name` in `folder`/sets with `change(its folder)` applied and meta.json's
    hashes updated, so that only the change is wrong; returns the copy's datasets folder."""
    copy = folder / "sets"
    shutil.copytree(datasets_dir / name, copy / name)
    change(copy / name)
    meta = json.loads((copy / name / "meta.json").read_text())
    for file in meta["files"]:
        meta["files"][file]["sha256"] = sha256_file(copy / name / file)
    (copy / name / "meta.json").write_text(json.dumps(meta))
    return copy


def assert_program_refuses(program: list[str], config: Path, message: str) -> None:
    """A task program refuses the job file `config` with one line naming it and `message`, exit 2,
    and writes nothing (no records beside the job, no predictions)."""
    out = config.parent / "records.jsonl"
    result = subprocess.run([*program, "--config", str(config), "--out", str(out)], capture_output=True, text=True,
                            timeout=120)
    assert_usage_error(result, str(config), message)
    assert not out.exists() and not (config.parent / "predictions").exists()


def assert_bad_matrix(matrix_data: dict[str, Any], message: str, tmp_path: Path, datasets_dir: Path) -> None:
    """`mlbench run` refuses the matrix with one line naming it and `message`, and writes nothing."""
    matrix = write_yaml(tmp_path / "bad.yaml", matrix_data)
    out = tmp_path / "out"
    result = mlbench("run", matrix, "--out", out, "--datasets-dir", datasets_dir)
    assert_usage_error(result, str(matrix), message)
    assert not out.exists()


@pytest.mark.parametrize("case", list(CASES))
def test_bad_matrix(case: str, tmp_path: Path, datasets_dir: Path) -> None:
    change, message = CASES[case]
    assert_bad_matrix(GOOD | change, message, tmp_path, datasets_dir)


def test_malformed_yaml(tmp_path: Path, datasets_dir: Path) -> None:
    matrix = tmp_path / "bad.yaml"
    matrix.write_text("task: regression\nalgorithms: {ridge: [\n")
    result = mlbench("run", matrix, "--out", tmp_path / "out", "--datasets-dir", datasets_dir)
    assert_usage_error(result, str(matrix), "malformed YAML", "line")
    assert not (tmp_path / "out").exists()


def test_one_invalid_matrix_stops_all(tmp_path: Path, datasets_dir: Path) -> None:
    good = write_yaml(tmp_path / "good.yaml", GOOD)
    bad = write_yaml(tmp_path / "bad.yaml", GOOD | {"repetitions": 0})
    result = mlbench("run", good, bad, "--out", tmp_path / "out", "--datasets-dir", datasets_dir)
    assert_usage_error(result, str(bad))
    assert not (tmp_path / "out").exists()


def test_missing_dataset(tmp_path: Path) -> None:
    matrix = write_yaml(tmp_path / "m.yaml", GOOD)
    result = mlbench("run", matrix, "--out", tmp_path / "out", "--datasets-dir", tmp_path / "empty")
    assert_usage_error(result, "dataset 'diabetes' is not prepared", "make datasets")
    assert not (tmp_path / "out").exists()


def test_sha256_mismatch(tmp_path: Path, datasets_dir: Path) -> None:
    copy = tmp_path / "datasets"
    shutil.copytree(datasets_dir / "diabetes", copy / "diabetes")
    target = copy / "diabetes" / "X_train.npy"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    matrix = write_yaml(tmp_path / "m.yaml", GOOD)
    result = mlbench("run", matrix, "--out", tmp_path / "out", "--datasets-dir", copy)
    assert_usage_error(result, "X_train.npy", "sha256 mismatch")
    assert not (tmp_path / "out").exists()


def test_unknown_hardware_profile_and_language(tmp_path: Path, datasets_dir: Path) -> None:
    matrix = write_yaml(tmp_path / "m.yaml", GOOD)
    assert_usage_error(mlbench("run", matrix, "--out", tmp_path / "o", "--hw", "tpu",
                               "--datasets-dir", datasets_dir), "--hw", "tpu")
    assert_usage_error(mlbench("run", matrix, "--out", tmp_path / "o", "--langs", "python,go",
                               "--datasets-dir", datasets_dir), "--langs", "go")
    assert_usage_error(mlbench("run", matrix, "--out", tmp_path / "o", "--frameworks", "scikit-learn,jax",
                               "--datasets-dir", datasets_dir), "--frameworks", "'jax'", "known:")


def test_existing_run_needs_resume_or_overwrite(tmp_path: Path, datasets_dir: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "records.jsonl").write_text("")
    matrix = write_yaml(tmp_path / "m.yaml", GOOD)
    result = mlbench("run", matrix, "--out", tmp_path / "out", "--datasets-dir", datasets_dir)
    assert_usage_error(result, "--resume", "--overwrite")


def test_validate_command(tmp_path: Path) -> None:
    good = write_yaml(tmp_path / "good.yaml", GOOD)
    assert mlbench("validate", good).returncode == 0
    bad = write_yaml(tmp_path / "bad.yaml", GOOD | {"colour": "red"})
    assert_usage_error(mlbench("validate", bad), str(bad), "colour")


def job_file(tmp_path: Path, datasets_dir: Path, language: str, **change: Any) -> Path:
    """A valid job as the runner writes it, then changed."""
    from mlbench.config import HardwareProfile, expand_matrix

    matrix = write_yaml(tmp_path / "m.yaml", GOOD)
    jobs, _ = expand_matrix(matrix, HardwareProfile("cpu", "cpu", 1), [language], "r", tmp_path, datasets_dir)
    return write_yaml(tmp_path / "job.yaml", jobs[0].to_dict() | change)


def run_task(language: str, job: Path, out: Path, rust_binary: Path) -> subprocess.CompletedProcess:
    import sys

    root = Path(__file__).resolve().parents[1]
    command = ([sys.executable, str(root / "python/tasks/classical/regression.py")] if language == "python"
               else [str(rust_binary)])
    return subprocess.run([*command, "--config", str(job), "--out", str(out)], capture_output=True, text=True)


TASK_CASES = {
    "unknown key": ({"colour": "red"}, "colour"),
    "unknown hyperparameter": ({"hyperparameters": {"alpha": 1.0, "tol": 1e-4, "max_iter": 10, "beta": 1}},
                               "beta"),
    "wrong type": ({"threads": "many"}, "threads"),
    "unknown algorithm": ({"algorithm": "ridge2"}, "ridge2"),
    "missing dataset": ({"dataset": "nothing_here"}, "nothing_here"),
    # out of the spec's range: Python's jsonschema and Rust's jsonschema crate refuse it alike,
    # before any library sees it (it used to reach linfa and exit 1)
    "out of range": ({"hyperparameters": {"alpha": -1.0, "tol": 1e-4, "max_iter": 10}}, "alpha"),
    "not finite": ({"hyperparameters": {"alpha": float("nan"), "tol": 1e-4, "max_iter": 10}}, "alpha"),
    "infinite": ({"hyperparameters": {"alpha": 1.0, "tol": float("inf"), "max_iter": 10}}, "tol"),
}


@pytest.mark.parametrize("language", ["python", "rust"])
@pytest.mark.parametrize("case", list(TASK_CASES))
def test_task_refuses_a_bad_job(language: str, case: str, tmp_path: Path, datasets_dir: Path,
                                rust_regression: Path) -> None:
    change, fragment = TASK_CASES[case]
    job = job_file(tmp_path, datasets_dir, language, **change)
    out = tmp_path / "records.jsonl"
    result = run_task(language, job, out, rust_regression)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert fragment in result.stderr and str(job) in result.stderr, result.stderr
    assert not out.exists()


@pytest.mark.parametrize("language", ["python", "rust"])
@pytest.mark.parametrize("case", ["not utf-8", "empty", "a directory"])
def test_task_refuses_an_unreadable_job_file(language: str, case: str, tmp_path: Path,
                                             rust_regression: Path) -> None:
    job = tmp_path / "job.yaml"
    if case == "not utf-8":
        job.write_bytes(b"\xff\xfe job")
    elif case == "empty":
        job.write_text("")
    else:
        job.mkdir()
    out = tmp_path / "records.jsonl"
    result = run_task(language, job, out, rust_regression)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(job) in result.stderr and not out.exists()


def test_job_files_round_trip_through_yaml(tmp_path: Path, datasets_dir: Path) -> None:
    job = job_file(tmp_path, datasets_dir, "python")
    assert yaml.safe_load(job.read_text())["hyperparameters"] == {"alpha": 1.0, "max_iter": 1000, "tol": 1e-4}


@pytest.mark.parametrize(("task", "algorithm", "change", "fragment"), [
    ("svm", "svc", {"gama": 0.1}, "gama"),
    ("svm", "svc", {"kernel": "sigmoid"}, "sigmoid"),
    ("clustering", "agglomerative", {"linkage": "single"}, "single"),
    ("clustering", "kmeans", {"n_clusters": -3}, "n_clusters"),
])
def test_rust_classical_tasks_refuse_bad_hyperparameters(task: str, algorithm: str, change: dict, fragment: str,
                                                          tmp_path: Path, datasets_dir: Path,
                                                          rust_classical: list[Path]) -> None:
    from mlbench.config import HardwareProfile, expand_matrix

    matrix = write_yaml(tmp_path / "m.yaml", {"task": task, "repetitions": 1, "processes": 1, "datasets": ["iris"],
                                             "algorithms": {algorithm: {}}})
    jobs, _ = expand_matrix(matrix, HardwareProfile("cpu", "cpu", 1), ["rust"], "r", tmp_path, datasets_dir)
    job = jobs[0].to_dict()
    job["hyperparameters"] = job["hyperparameters"] | change
    path = write_yaml(tmp_path / "job.yaml", job)
    binary = next(b for b in rust_classical if b.name == task)
    result = subprocess.run([str(binary), "--config", str(path), "--out", str(tmp_path / "r.jsonl")],
                            capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "r.jsonl").exists()
