"""The `reinforce_library` task's Python side: torchrl, which has no plain REINFORCE, so every job
records `unsupported` with the reason configs/tasks/reinforce_library.yaml gives. The entry below
only draws the Rust twins' fixtures (the shared initial weights and draws of the `reinforce` task)
for the cells the twins run; it trains nothing.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a plain script, too

import torchrl

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reinforce  # the twins' network, initial weights and draws

ALGORITHMS = {"reinforce": dataclasses.replace(reinforce.ALGORITHMS["reinforce"], build=None,
                                               describe=lambda params: "torchrl reinforce (unsupported)")}

if __name__ == "__main__":
    from mlbench.harness import run_task
    from mlbench.torch_net import setup

    run_task(ALGORITHMS, torchrl.__version__, ["torchrl", "torch", "gymnasium"], setup=setup)
