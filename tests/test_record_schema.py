"""Both languages' records, and the runner's failure records, satisfy record.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from conftest import mlbench, write_yaml
from mlbench.schema import load_schema


def validate_all(path: Path) -> list[dict]:
    schema = load_schema("record")
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        errors = list(validator.iter_errors(record))
        assert not errors, f"{record['language']} {record['algorithm']}: {errors[0].message}"
    return records


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory, datasets_dir: Path, rust_regression: Path) -> Path:
    folder = tmp_path_factory.mktemp("schema")
    matrix = write_yaml(folder / "m.yaml", {
        "task": "regression", "repetitions": 2, "processes": 2, "warmup": 1, "datasets": ["diabetes"],
        "algorithms": {"linear": {}, "ridge": {}, "lasso": {}, "elastic_net": {}}})
    result = mlbench("run", matrix, "--out", folder / "run", "--datasets-dir", datasets_dir, "--no-table")
    assert result.returncode == 0, result.stderr
    return folder / "run"


def test_both_languages_write_valid_records(small_run: Path) -> None:
    records = validate_all(small_run / "records.jsonl")
    assert {r["language"] for r in records} == {"python", "rust"}
    assert len(records) == 4 * 2 * 2 * 3  # algorithms x languages x processes x (warmup + repetitions)


def test_warmups_come_first_and_seeds_follow_repetitions(small_run: Path) -> None:
    records = validate_all(small_run / "records.jsonl")
    for r in records:
        assert r["warmup"] == (r["repetition"] == 0)
        assert r["seed"] == 42 + r["repetition"]
    assert {(r["process"], r["repetition"]) for r in records} == {(p, i) for p in (0, 1) for i in range(3)}


def test_sides_of_a_comparison_take_turns(small_run: Path) -> None:
    """Interleaved order: per comparison, round 0 runs Python then Rust, round 1 Rust then Python."""
    jobs = {r["job_id"]: r for r in validate_all(small_run / "records.jsonl")}
    order = [json.loads(line) for line in (small_run / "schedule.jsonl").read_text().splitlines()]
    assert len(order) == 4 * 2 * 2
    for start in range(0, len(order), 4):
        block = [(jobs[u["job_id"]]["algorithm"], jobs[u["job_id"]]["language"], u["process"])
                 for u in order[start:start + 4]]
        algorithm = block[0][0]
        assert block == [(algorithm, "python", 0), (algorithm, "rust", 0), (algorithm, "rust", 1),
                         (algorithm, "python", 1)]
    assert json.loads((small_run / "meta.json").read_text())["order"] == "interleaved"


def test_both_languages_measure_the_same_phases_and_resources(small_run: Path) -> None:
    records = validate_all(small_run / "records.jsonl")
    for r in records:
        assert set(r["timings_s"]) == {"fit", "predict"}
        assert set(r["process_timings_s"]) == {"startup", "load"}
        assert 0 < r["process_timings_s"]["startup"] < 60 and r["process_timings_s"]["load"] > 0
        assert set(r["inner_loops"]) == set(r["page_faults"]) == {"fit", "predict"}
        # calibrated in the first warm-up: a sample of k calls lasts at least min_sample_s
        if r["repetition"] == 0:
            assert r["timings_s"]["fit"] * r["inner_loops"]["fit"] >= 0.05 or r["inner_loops"]["fit"] == 1 << 20
        assert r["host"]["idle_cores"] is not None and r["host"]["disturbed"] in (True, False)
        assert r["env"]["thread_env"]["GLIBC_TUNABLES"].startswith("glibc.malloc.trim_threshold=")
        assert r["resources"]["peak_rss_mb"] > 0 and r["resources"]["cpu_time_s"] >= 0
        assert r["env"]["git_commit"] == records[0]["env"]["git_commit"]
        assert r["dataset_sha256"] == records[0]["dataset_sha256"]
        assert r["threads"] == 1 and r["env"]["thread_env"]["OMP_NUM_THREADS"] == "1"
    rust = next(r for r in records if r["language"] == "rust")
    assert "target-cpu=native" in rust["env"]["build"]["rustflags"]
    assert rust["env"]["build"]["profile"] == "release"
    assert rust["env"]["runtime"].startswith("rustc ")
    python = next(r for r in records if r["language"] == "python")
    assert python["process_timings_s"]["startup"] > rust["process_timings_s"]["startup"]  # interpreter + imports


def test_failure_records_are_valid(tmp_path: Path, datasets_dir: Path, fault_specs: Path) -> None:
    matrix = write_yaml(tmp_path / "m.yaml", {"task": "fault", "repetitions": 1, "processes": 1,
                                              "datasets": ["diabetes"], "algorithms": {"crash": {}}})
    result = mlbench("run", matrix, "--out", tmp_path / "run", "--datasets-dir", datasets_dir, specs=fault_specs)
    assert result.returncode == 1
    records = validate_all(tmp_path / "run" / "records.jsonl")
    assert {r["status"] for r in records} == {"failed"}


def test_repetitions_and_processes_can_be_overridden(tmp_path: Path, datasets_dir: Path,
                                                     rust_regression: Path) -> None:
    """CI's quick smoke: `--processes 1 --repetitions 1` gives one warm-up and one measured
    repetition per job, on both sides, whatever the matrix says; 0 is refused."""
    matrix = write_yaml(tmp_path / "m.yaml", {"task": "regression", "repetitions": 3, "processes": 2, "warmup": 1,
                                              "datasets": ["diabetes"], "algorithms": {"ridge": {}}})
    result = mlbench("run", matrix, "--out", tmp_path / "run", "--datasets-dir", datasets_dir, "--no-table",
                     "--processes", "1", "--repetitions", "1")
    assert result.returncode == 0, result.stderr
    records = validate_all(tmp_path / "run" / "records.jsonl")
    assert sorted((r["language"], r["process"], r["repetition"], r["warmup"]) for r in records) == \
        [("python", 0, 0, True), ("python", 0, 1, False), ("rust", 0, 0, True), ("rust", 0, 1, False)]
    refused = mlbench("run", matrix, "--out", tmp_path / "refused", "--datasets-dir", datasets_dir,
                      "--repetitions", "0")
    assert refused.returncode == 2 and "--repetitions: must be at least 1" in refused.stderr
