"""Sequence classification with PyTorch's recurrent layers: a tanh RNN, an LSTM or a GRU, stacked
and optionally bidirectional, read by a linear classifier (Rust twins: rust/rnn for tch and candle,
rust/rnn-burn for burn).

The classifier reads the last layer's output: the forward direction after the last step and, when
bidirectional, the backward direction after it has read the whole sequence (its output at step 0),
concatenated. Dropout (`dropout_rate`) acts between stacked layers, as PyTorch's `dropout` argument
does, so one layer has none. The protocol (mlbench.training) owns the epochs, clocks and artifacts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a plain script, too

import torch
from torch import nn

from mlbench.harness import run_task
from mlbench.torch_net import builder, initial_weights, kernels, setup
from mlbench.training import NetShape, TrainClassifier

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}  # nn.RNN's default nonlinearity is tanh
GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # stacked blocks of each weight matrix


class SequenceClassifier(nn.Module):
    """`rnn` (PyTorch's names: rnn.weight_ih_l0, ..._reverse) then `fc` on the last outputs."""

    def __init__(self, cell: str, shape: NetShape, params: dict[str, Any]) -> None:
        super().__init__()
        self.hidden = params["hidden_size"]
        self.bidirectional = params["bidirectional"]
        layers = params["num_layers"]
        self.rnn = CELLS[cell](shape.features, self.hidden, num_layers=layers, batch_first=True,
                               dropout=params["dropout_rate"] if layers > 1 else 0.0,
                               bidirectional=self.bidirectional)
        self.fc = nn.Linear(self.hidden * (2 if self.bidirectional else 1), shape.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)  # batch x steps x (directions * hidden)
        last = out[:, -1, :self.hidden]
        if self.bidirectional:
            last = torch.cat([last, out[:, 0, self.hidden:]], dim=1)
        return self.fc(last)


def network(cell: str) -> Any:
    def make(params: dict[str, Any], shape: NetShape) -> nn.Module:
        return SequenceClassifier(cell, shape, params)

    return make


def flop_count(cell: str) -> Any:
    """FLOPs per sample, counted from the shapes: torch.utils.flop_counter misses the fused LSTM kernel
    PyTorch runs on a CPU (it sees only the classifier), so the matrix products are counted here:
    2 x gates x hidden x (inputs + hidden) per step, layer and direction, plus the classifier; equal
    to the counter's figure where it sees them (the GRU and the RNN). A training step counts 3x the
    forward pass (forward, and the two products of the backward pass)."""

    def count(params: dict[str, Any], shape: NetShape) -> dict[str, float]:
        hidden, directions = params["hidden_size"], 2 if params["bidirectional"] else 1
        forward = 2.0 * directions * hidden * shape.classes
        for layer in range(params["num_layers"]):
            inputs = shape.features if layer == 0 else directions * hidden
            forward += directions * shape.steps * 2.0 * GATES[cell] * hidden * (inputs + hidden)
        return {"forward_per_sample": forward, "train_per_sample": 3 * forward}

    return count


ALGORITHMS = {cell: TrainClassifier(init=initial_weights(network(cell)), build=builder(network(cell)),
                                    flops=flop_count(cell)) for cell in CELLS}

if __name__ == "__main__":
    run_task(ALGORITHMS, torch.__version__, ["torch", "numpy"], setup=setup, kernels=kernels)
