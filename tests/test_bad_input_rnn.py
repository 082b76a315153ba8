"""Bad input for the RNN task: one line naming the file and field, exit 2, nothing written, from
`mlbench run` and from each task program started by hand (PyTorch, tch/candle, burn)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlbench import datasets as ds
from test_bad_input import assert_bad_matrix, assert_usage_error
from test_bad_input_cnn import job_file, run_program

GOOD: dict[str, Any] = {"task": "rnn", "repetitions": 1, "processes": 1, "warmup": 0,
                        "datasets": ["adding_tiny"], "algorithms": {"lstm": {"epochs": 1, "batch_size": 16}}}

MATRIX_CASES = {
    "unknown cell": ({"algorithms": {"transformer": {}}}, "algorithms.transformer: unknown algorithm"),
    "no hidden units": ({"algorithms": {"gru": {"hidden_size": 0}}}, "hidden_size: 0 is less than the minimum of 1"),
    "an image dataset": ({"datasets": ["synthetic_images"]}, "datasets: unknown dataset 'synthetic_images'"),
    "batch above the training set": ({"algorithms": {"lstm": {"batch_size": 100}}},
                                     "batch_size: 100 is above the training set of adding_tiny (64 samples)"),
}


@pytest.fixture(scope="module")
def sequence_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sequences")
    ds.prepare(["adding_tiny", "synthetic_images"], folder, log=lambda _: None)
    return folder


@pytest.mark.parametrize("case", list(MATRIX_CASES))
def test_bad_rnn_matrix(case: str, tmp_path: Path, sequence_dir: Path) -> None:
    change, message = MATRIX_CASES[case]
    assert_bad_matrix(GOOD | change, message, tmp_path, sequence_dir)


PROGRAMS = {"pytorch": None, "tch": "rnn", "candle": "rnn", "burn": "rnn-burn"}
TASK_CASES = {
    "no hidden units": ({"hidden_size": 0}, "hidden_size"),
    "an image dataset": ({"dataset": "synthetic_images"}, "dataset"),
}


@pytest.mark.slow
@pytest.mark.parametrize("framework", list(PROGRAMS))
@pytest.mark.parametrize("case", list(TASK_CASES))
def test_rnn_program_refuses_bad_job(framework: str, case: str, tmp_path: Path, sequence_dir: Path) -> None:
    params, message = TASK_CASES[case]
    binary = PROGRAMS[framework]
    recurrent = {"hidden_size": 8, "num_layers": 1, "bidirectional": False, "dropout_rate": 0.0, "batch_size": 16}
    job = {"task": "rnn", "algorithm": "lstm", "dataset": "adding_tiny"} | recurrent | params
    config = job_file(tmp_path, sequence_dir, "python" if binary is None else "rust", framework, **job)
    out = tmp_path / "records.jsonl"
    result = run_program("rnn", binary, config, out)
    assert_usage_error(result, str(config), message)
    assert not out.exists() and not (tmp_path / "predictions").exists()
