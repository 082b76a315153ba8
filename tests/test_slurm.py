"""The Slurm executor against a real one-node cluster (scripts/slurm-up.sh; .ci/run starts one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT, mlbench, write_yaml


def cluster_is_up() -> bool:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return False
    result = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    return result.returncode == 0 and "idle" in result.stdout.split()


# CI starts a cluster and sets MLBENCH_REQUIRE_SLURM=1: there a missing cluster fails these tests
# instead of skipping them, so a broken cluster start cannot pass unnoticed.
REQUIRED = os.environ.get("MLBENCH_REQUIRE_SLURM") == "1"
UP = cluster_is_up()
if REQUIRED and not UP:
    slurm = pytest.mark.usefixtures("missing_cluster")
else:
    slurm = pytest.mark.skipif(not UP, reason="no idle Slurm cluster here: `sudo scripts/slurm-up.sh` starts a "
                               "one-node one (installs Debian's slurm packages)")


@pytest.fixture
def missing_cluster() -> None:
    pytest.fail("MLBENCH_REQUIRE_SLURM=1 but no idle Slurm cluster answers `sinfo`: scripts/slurm-up.sh failed")


def read(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]


def identities(records: list[dict]) -> Counter:
    return Counter((r["job_id"], r["repetition"], r["language"], r["status"]) for r in records)


@pytest.mark.slurm
@slurm
def test_slurm_gives_the_same_records_as_local(tmp_path: Path, datasets_dir: Path, rust_regression: Path) -> None:
    matrix = write_yaml(tmp_path / "m.yaml", {"task": "regression", "repetitions": 2, "processes": 1, "warmup": 1,
                                              "datasets": ["diabetes"],
                                              "algorithms": {"linear": {}, "lasso": {"alpha": 0.1}}})
    common = ["--datasets-dir", datasets_dir, "--no-table"]
    local = mlbench("run", matrix, "--out", tmp_path / "local", *common)
    assert local.returncode == 0, local.stderr
    start = time.monotonic()
    on_slurm = mlbench("run", matrix, "--out", tmp_path / "slurm", "--executor", "slurm", *common)
    print(f"slurm matrix: {time.monotonic() - start:.1f}s")
    assert on_slurm.returncode == 0, on_slurm.stderr
    assert "submitted 4 job(s)" in on_slurm.stderr
    local_records, slurm_records = read(tmp_path / "local"), read(tmp_path / "slurm")
    assert identities(local_records) == identities(slurm_records)
    assert all(r["env"]["scheduler"]["SLURMD_NODENAME"] == "localhost" for r in slurm_records)
    assert all("SLURM_JOB_ID" in r["env"]["scheduler"] for r in slurm_records)
    assert all("scheduler" not in r["env"] for r in local_records)
    assert {r["metrics"]["r2"] for r in local_records} == {r["metrics"]["r2"] for r in slurm_records}


def array_job(run: Path) -> str | None:
    log = run / "slurm"
    outputs = sorted(log.glob("slurm-*_*.out")) if log.exists() else []
    return outputs[0].name.split("-")[1].split("_")[0] if outputs else None


@pytest.mark.slurm
@slurm
def test_scancel_is_a_failed_record_and_resume_resubmits_only_it(tmp_path: Path, datasets_dir: Path,
                                                                   fault_specs: Path) -> None:
    matrix = write_yaml(tmp_path / "m.yaml", {"task": "fault", "repetitions": 1, "processes": 1, "warmup": 0,
                                              "datasets": ["diabetes"], "algorithms": {"mean": {"sleep_s": [0, 6]}}})
    run = tmp_path / "run"
    env = os.environ | {"MLBENCH_TASK_SPECS": str(fault_specs)}
    command = [sys.executable, "-m", "mlbench", "run", str(matrix), "--out", str(run), "--langs", "python",
               "--executor", "slurm", "--datasets-dir", str(datasets_dir), "--no-table"]
    runner = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sleeping = json.dumps({"sleep_s": 6})
    deadline = time.monotonic() + 60
    cancelled = False
    while time.monotonic() < deadline and not cancelled:
        time.sleep(0.5)
        scripts = list((run / "slurm").glob("job-*.sh")) if (run / "slurm").exists() else []
        target = next((s for s in scripts if "sleep_s=6" in s.read_text()), None)
        job = array_job(run)
        if target is not None and job is not None:
            index = target.stem.split("-")[1]
            state = subprocess.run(["squeue", "-h", "-j", f"{job}_{index}", "-o", "%T"], capture_output=True,
                                   text=True).stdout.strip()
            if state == "RUNNING":
                subprocess.run(["scancel", f"{job}_{index}"], check=True)
                cancelled = True
    assert cancelled, "the sleeping element never ran"
    _, stderr = runner.communicate(timeout=120)
    assert runner.returncode == 1, stderr
    records = read(run)
    by_params = {json.dumps(r["hyperparameters"]): r for r in records}
    assert by_params[json.dumps({"sleep_s": 0})]["status"] == "ok"
    failed = by_params[sleeping]
    assert failed["status"] == "failed" and "CANCELLED" in failed["error"]

    resumed = subprocess.run([*command, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "submitted 1 job(s)" in resumed.stderr
    final = read(run)
    assert Counter((r["job_id"], r["repetition"]) for r in final).most_common(1)[0][1] == 1
    assert len(final) == 2 and all(r["status"] == "ok" for r in final)


def test_missing_sbatch_points_to_the_local_executor(tmp_path: Path, datasets_dir: Path) -> None:
    matrix = write_yaml(tmp_path / "m.yaml", {"task": "regression", "repetitions": 1, "processes": 1,
                                              "datasets": ["diabetes"], "algorithms": {"linear": {}}})
    env_path = os.environ["PATH"]
    os.environ["PATH"] = str(Path(sys.executable).parent)  # python, but no Slurm tools
    try:
        result = mlbench("run", matrix, "--out", tmp_path / "run", "--executor", "slurm",
                         "--datasets-dir", datasets_dir)
    finally:
        os.environ["PATH"] = env_path
    assert result.returncode == 2
    assert "sbatch" in result.stderr and "--executor local" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
