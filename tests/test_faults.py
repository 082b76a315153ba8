"""A crashing, hanging or killed task becomes a record and the matrix goes on; resume is exact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import ROOT, mlbench, write_yaml


def read(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines() if line.strip()]


def fault_matrix(tmp_path: Path, algorithms: dict[str, Any], **extra: Any) -> Path:
    return write_yaml(tmp_path / "m.yaml", {"task": "fault", "repetitions": 2, "processes": 1, "warmup": 0,
                                            "datasets": ["diabetes"], "algorithms": algorithms} | extra)


def test_crash_is_recorded_and_the_matrix_goes_on(tmp_path: Path, datasets_dir: Path, fault_specs: Path) -> None:
    matrix = fault_matrix(tmp_path, {"crash": {}, "mean": {}})
    result = mlbench("run", matrix, "--out", tmp_path / "run", "--langs", "python",
                     "--datasets-dir", datasets_dir, specs=fault_specs)
    assert result.returncode == 1
    records = read(tmp_path / "run")
    by_algorithm = Counter((r["algorithm"], r["status"]) for r in records)
    assert by_algorithm == {("crash", "failed"): 1, ("mean", "ok"): 2}
    crash = next(r for r in records if r["algorithm"] == "crash")
    assert "exit code 1" in crash["error"] and "RuntimeError: injected crash" in crash["error"]
    assert "failures:" in result.stdout and "injected" not in result.stdout.split("failures:")[0]
    assert "RuntimeError: injected crash" in (tmp_path / "run" / "logs" / f"{crash['job_id']}-p0.err").read_text()


def test_rust_panic_is_recorded(tmp_path: Path, datasets_dir: Path, fault_specs: Path) -> None:
    matrix = fault_matrix(tmp_path, {"mean": {}})
    result = mlbench("run", matrix, "--out", tmp_path / "run", "--langs", "rust",
                     "--datasets-dir", datasets_dir, specs=fault_specs)
    assert result.returncode == 1
    [record] = read(tmp_path / "run")
    assert record["status"] == "failed" and "exit code 101" in record["error"] and "panicked" in record["error"]


def test_hanging_task_times_out(tmp_path: Path, datasets_dir: Path, fault_specs: Path) -> None:
    matrix = fault_matrix(tmp_path, {"hang": {}, "mean": {}})
    start = time.monotonic()
    # 8 s: long enough for a fresh clone's first Python process to import a cold venv (3 s timed out
    # the healthy job once in CI), short enough to show the hanging one is killed
    result = mlbench("run", matrix, "--out", tmp_path / "run", "--langs", "python", "--timeout", "8",
                     "--datasets-dir", datasets_dir, specs=fault_specs)
    assert time.monotonic() - start < 60
    assert result.returncode == 1
    statuses = Counter((r["algorithm"], r["status"]) for r in read(tmp_path / "run"))
    assert statuses == {("hang", "timeout"): 1, ("mean", "ok"): 2}


def test_killed_task_is_reported_as_oom(tmp_path: Path, datasets_dir: Path, fault_specs: Path) -> None:
    matrix = fault_matrix(tmp_path, {"sigkill": {}})
    result = mlbench("run", matrix, "--out", tmp_path / "run", "--langs", "python",
                     "--datasets-dir", datasets_dir, specs=fault_specs)
    assert result.returncode == 1
    [record] = read(tmp_path / "run")
    assert record["status"] == "oom" and "SIGKILL" in record["error"]


def test_kill_then_resume_gives_exactly_the_expected_records(tmp_path: Path, datasets_dir: Path,
                                                             fault_specs: Path) -> None:
    sleeps = [0.0, 0.3, 0.31, 0.32, 0.33]  # five distinct jobs, each 2 processes of warmup 1 + 2 repetitions
    matrix = fault_matrix(tmp_path, {"mean": {"sleep_s": sleeps}}, warmup=1, processes=2)
    run = tmp_path / "run"
    env = os.environ | {"MLBENCH_TASK_SPECS": str(fault_specs)}
    command = [sys.executable, "-m", "mlbench", "run", str(matrix), "--out", str(run), "--langs", "python",
               "--datasets-dir", str(datasets_dir), "--no-table"]
    runner = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        records_path = run / "records.jsonl"
        if records_path.exists() and len(records_path.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    os.killpg(runner.pid, signal.SIGKILL)  # the runner and the task it was running
    runner.wait()
    first = read(run)
    assert 3 <= len(first) < 30, "the kill should land mid-matrix"
    with (run / "records.jsonl").open("a") as f:
        f.write('{"schema_version": 1, "job_id": "trunc')  # a line cut off by the kill
    result = subprocess.run([*command, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "truncated" in result.stderr
    final = read(run)
    keys = Counter((r["job_id"], r["process"], r["repetition"]) for r in final)
    assert len(keys) == 5 * 2 * 3 and set(keys.values()) == {1}
    assert all(r["status"] == "ok" for r in final)
    kept = {(r["job_id"], r["process"], r["repetition"]): r["started_at"] for r in first}
    assert all(kept[k] == r["started_at"] for r in final
               if (k := (r["job_id"], r["process"], r["repetition"])) in kept)


def test_target_ci_adds_processes_to_both_sides_up_to_the_cap(tmp_path: Path, datasets_dir: Path,
                                                             rust_regression: Path) -> None:
    """A target no CI can reach: both sides grow from 2 to 4 processes (one more round), no further;
    the job ids stay the same, and the comparison says it missed the target."""
    matrix = write_yaml(tmp_path / "m.yaml", {"task": "regression", "repetitions": 2, "processes": 2, "warmup": 1,
                                              "datasets": ["diabetes"], "algorithms": {"linear": {}}})
    result = mlbench("run", matrix, "--out", tmp_path / "run", "--datasets-dir", datasets_dir,
                     "--target-ci", "0.0001", "--max-processes", "4", "--no-host-watch")
    assert result.returncode == 0, result.stderr
    records = read(tmp_path / "run")
    per_job = Counter(r["job_id"] for r in records)
    assert len(per_job) == 2 and set(per_job.values()) == {4 * 3}
    assert {r["process"] for r in records} == {0, 1, 2, 3}
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert set(meta["processes_per_job"].values()) == {4} and meta["target_ci"] == 0.0001
    assert "wider than the target" in result.stdout
