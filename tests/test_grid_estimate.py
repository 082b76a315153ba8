"""benchmarks/grid_estimate.py --calibrate: a grid priced at a finished run's own measured rates."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from conftest import ROOT, write_yaml
from mlbench import datasets as ds
from mlbench.config import expand_grid, load_matrix, matrix_defaults
from mlbench.training import shape_of
from tasks.deep_learning import cnn

SCRIPT = ROOT / "benchmarks" / "grid_estimate.py"


def load_script() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("grid_estimate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(framework: str, train: float, evaluate: float, *, warmup: bool = False, status: str = "ok") -> dict:
    return {"algorithm": "simple_cnn", "framework": framework, "status": status, "warmup": warmup,
            "throughput": {"train_gflops": train, "evaluate_gflops": evaluate},
            "timings_s": {"train": 1.0, "build": 0.5}, "process_timings_s": {"start": 1.0, "load": 0.5}}


@pytest.fixture
def run(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    records = [record("pytorch", g, 4.0) for g in (10.0, 20.0, 30.0)]
    records += [record("pytorch", 1000.0, 1000.0, warmup=True),  # a warm-up is not a rate
                record("pytorch", 1000.0, 1000.0, status="failed"),
                record("tch", 40.0, 8.0)]
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_each_side_is_priced_at_its_median_measured_rate_and_process_cost(tmp_path: Path, run: Path) -> None:
    grid_estimate = load_script()
    datasets = tmp_path / "datasets"
    ds.prepare(["synthetic_images_micro"], datasets, log=lambda _: None)
    path = write_yaml(tmp_path / "m.yaml", {
        "task": "cnn", "repetitions": 3, "processes": 2, "datasets": ["synthetic_images_micro"],
        "algorithms": {"simple_cnn": {"epochs": 2, "batch_size": [8, 16]}}})
    matrix, spec = load_matrix(path)
    rates = grid_estimate.measured_rates(run)
    assert rates[("simple_cnn", "pytorch")] == {"train_gflops": 20.0, "evaluate_gflops": 4.0, "process_s": 2.0}
    hours = grid_estimate.calibrated(matrix_defaults() | matrix, spec, cnn, ["synthetic_images_micro"], datasets,
                                     rates, run)

    meta = ds.read_meta("synthetic_images_micro", datasets)
    size = ds.sizes("synthetic_images_micro", datasets)
    combos = expand_grid(matrix["algorithms"]["simple_cnn"], spec.algorithms["simple_cnn"])
    assert [c["batch_size"] for c in combos] == [8, 16]
    for side, train, evaluate in (("pytorch", 20.0, 4.0), ("tch", 40.0, 8.0)):
        seconds = 0.0
        for params in combos:  # 6 trainings and 2 processes each
            flops = cnn.ALGORITHMS["simple_cnn"].flops(params, shape_of(meta))
            seconds += 6 * (flops["train_per_sample"] * 2 * size["n_train"] / (train * 1e9)
                            + flops["forward_per_sample"] * 2 * size["n_test"] / (evaluate * 1e9)) + 2 * 2.0
        assert hours[side] == pytest.approx(seconds / 3600)


def test_a_side_the_run_did_not_measure_is_refused_by_name(tmp_path: Path, run: Path) -> None:
    grid_estimate = load_script()
    datasets = tmp_path / "datasets"
    ds.prepare(["synthetic_images_micro"], datasets, log=lambda _: None)
    path = write_yaml(tmp_path / "m.yaml", {"task": "cnn", "repetitions": 1, "datasets": ["synthetic_images_micro"],
                                            "algorithms": {"attention_cnn": {"epochs": 1}}})
    matrix, spec = load_matrix(path)
    with pytest.raises(SystemExit, match=r"no ok pytorch record of attention_cnn to calibrate from"):
        grid_estimate.calibrated(matrix_defaults() | matrix, spec, cnn, ["synthetic_images_micro"], datasets,
                                 grid_estimate.measured_rates(run), run)


def test_a_folder_without_records_is_named(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), str(ROOT / "configs/deep_learning/cnn.yaml"), "--hw", "cpu",
                           "--calibrate", str(tmp_path)], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert f"{tmp_path}/records.jsonl: no records.jsonl" in done.stderr
