"""RNN parity: PyTorch's nn.RNN, nn.LSTM and nn.GRU against tch, candle and burn from the same initial
weights on the same batches, as tests/test_parity_cnn.py does for the CNNs (read its docstring).

The float64 run is the proof that each Rust arm maps PyTorch's stacked gate weights to its framework's
layout correctly (LSTM i, f, g, o; GRU r, z, n with the reset gate on (W_hn h + b_hn); `_reverse` for
the backward direction): a gate swapped, a bias on the wrong side of the reset gate or a direction
reading the sequence the wrong way moves the logits by far more than float64 rounding. Every case is
two stacked bidirectional layers, so the second layer's input (both directions concatenated) and
the classifier's (the forward output at the last step, the backward one at step 0) are checked too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlbench import datasets as ds
from training_parity import check_cuda_parity, check_training_parity, make_job

COMMON = {"hidden_size": 8, "num_layers": 2, "bidirectional": True, "batch_size": 16}
CASES = {
    "rnn-sgd": ("rnn", {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.9}),
    "lstm-adamw": ("lstm", {"optimizer": "adamw", "learning_rate": 0.01}),
    "gru-sgd": ("gru", {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.9, "weight_decay": 1e-3}),
}


@pytest.fixture(scope="module")
def sequence_datasets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sequence_datasets")
    ds.prepare(["adding_tiny"], folder, log=lambda _: None)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_every_rust_framework_does_the_same_recurrent_training_as_pytorch(case: str, tmp_path: Path,
                                                                         sequence_datasets: Path) -> None:
    cell, params = CASES[case]
    job = make_job(tmp_path, sequence_datasets, cell, "adding_tiny", task="rnn", **(COMMON | params))
    failures = check_training_parity(case, job, tmp_path)
    assert not failures, "\n".join(failures)


@pytest.mark.slow
@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
def test_tch_does_the_same_recurrent_training_as_pytorch_on_cuda(case: str, tmp_path: Path,
                                                                sequence_datasets: Path) -> None:
    """On a GPU both sides call cuDNN's fused recurrent kernels through libtorch."""
    cell, params = CASES[case]
    job = make_job(tmp_path, sequence_datasets, cell, "adding_tiny", device="cuda", task="rnn",
                   **(COMMON | params))
    failures = check_cuda_parity(case, job, tmp_path)
    assert not failures, "\n".join(failures)
