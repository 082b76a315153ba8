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
        "task": "regression", "repetitions": 2, "warmup": 1, "datasets": ["diabetes"],
        "algorithms": {"linear": {}, "ridge": {}, "lasso": {}, "elastic_net": {}}})
    result = mlbench("run", matrix, "--out", folder / "run", "--datasets-dir", datasets_dir, "--no-table")
    assert result.returncode == 0, result.stderr
    return folder / "run"


def test_both_languages_write_valid_records(small_run: Path) -> None:
    records = validate_all(small_run / "records.jsonl")
    assert {r["language"] for r in records} == {"python", "rust"}
    assert len(records) == 4 * 2 * 3  # algorithms x languages x (warmup + repetitions)


def test_warmups_come_first_and_seeds_follow_repetitions(small_run: Path) -> None:
    for r in validate_all(small_run / "records.jsonl"):
        assert r["warmup"] == (r["repetition"] == 0)
        assert r["seed"] == 42 + r["repetition"]


def test_both_languages_measure_the_same_phases_and_resources(small_run: Path) -> None:
    records = validate_all(small_run / "records.jsonl")
    for r in records:
        assert set(r["timings_s"]) == {"load", "fit", "predict"}
        assert r["resources"]["peak_rss_mb"] > 0 and r["resources"]["cpu_time_s"] >= 0
        assert r["env"]["git_commit"] == records[0]["env"]["git_commit"]
        assert r["dataset_sha256"] == records[0]["dataset_sha256"]
        assert r["threads"] == 1 and r["env"]["thread_env"]["OMP_NUM_THREADS"] == "1"
    rust = next(r for r in records if r["language"] == "rust")
    assert "target-cpu=native" in rust["env"]["build"]["rustflags"]
    assert rust["env"]["build"]["profile"] == "release"
    assert rust["env"]["runtime"].startswith("rustc ")


def test_failure_records_are_valid(tmp_path: Path, datasets_dir: Path, fault_specs: Path) -> None:
    matrix = write_yaml(tmp_path / "m.yaml", {"task": "fault", "repetitions": 1, "datasets": ["diabetes"],
                                              "algorithms": {"crash": {}}})
    result = mlbench("run", matrix, "--out", tmp_path / "run", "--datasets-dir", datasets_dir, specs=fault_specs)
    assert result.returncode == 1
    records = validate_all(tmp_path / "run" / "records.jsonl")
    assert {r["status"] for r in records} == {"failed"}
