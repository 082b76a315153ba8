"""`mlbench noise-floor`: each job against itself through the run's machinery, and later runs judged
against the floor it measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import load_run, mlbench, write_yaml


@pytest.fixture(scope="module")
def floor_run(tmp_path_factory: pytest.TempPathFactory, datasets_dir: Path, rust_regression: Path) -> Path:
    folder = tmp_path_factory.mktemp("noise")
    matrix = write_yaml(folder / "m.yaml", {"task": "regression", "repetitions": 2, "processes": 2, "warmup": 1,
                                            "datasets": ["diabetes"], "algorithms": {"linear": {}}})
    # --no-host-watch: on a busy machine every process could be flagged disturbed and left out
    result = mlbench("noise-floor", matrix, "--out", folder / "run", "--datasets-dir", datasets_dir, "--no-host-watch")
    assert result.returncode == 0, result.stderr
    assert "false verdicts" in result.stdout and "floor m" in result.stdout
    return folder / "run"


def test_each_job_runs_twice_its_processes_sides_taking_turns(floor_run: Path) -> None:
    records = load_run(floor_run)
    jobs = {r["job_id"]: r["language"] for r in records}
    assert len(jobs) == 2 and {r["process"] for r in records} == {0, 1, 2, 3}
    order = [json.loads(line) for line in (floor_run / "schedule.jsonl").read_text().splitlines()]
    # round 0: python A, python B, rust A, rust B; round 1 reversed: rust B, rust A, python B, python A
    sides = [(jobs[u["job_id"]], "AB"[u["process"] % 2]) for u in order]
    assert sides == [("python", "A"), ("python", "B"), ("rust", "A"), ("rust", "B"),
                     ("rust", "B"), ("rust", "A"), ("python", "B"), ("python", "A")]


def test_the_floor_file_says_what_it_measured(floor_run: Path) -> None:
    floor = json.loads((floor_run / "noise_floor.json").read_text())
    assert floor["hardware_profile"] == "cpu" and floor["processes_per_side"] == 2
    entry = floor["tasks"]["regression"]
    assert entry["comparisons"] == 2 * 4  # python and linfa, each over fit, predict, load and startup
    assert 0 <= entry["false_share"] <= 1 and entry["floor"] >= 0 and entry["p90"] >= entry["floor"]
    assert json.loads((floor_run / "meta.json").read_text())["mode"] == "noise-floor"


def test_a_later_run_judges_against_the_measured_floor(tmp_path: Path, floor_run: Path, datasets_dir: Path) -> None:
    floor_file = floor_run / "noise_floor.json"
    floor = json.loads(floor_file.read_text())
    floor["tasks"]["regression"]["floor"] = 0.25  # as a noisy machine would measure
    floor_file.write_text(json.dumps(floor))
    matrix = write_yaml(tmp_path / "m.yaml", {"task": "regression", "repetitions": 1, "processes": 2, "warmup": 1,
                                              "datasets": ["diabetes"], "algorithms": {"linear": {}}})
    result = mlbench("run", matrix, "--out", tmp_path / "run", "--datasets-dir", datasets_dir,
                     "--noise-floor", floor_file, "--no-host-watch")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "run" / "meta.json").read_text())["noise_floor"]["path"] == str(floor_file)
    assert " 25% " in result.stdout  # m beside the ratio
