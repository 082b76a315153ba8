"""REINFORCE in PyTorch, written once in the compact shape its Rust twins (rust/reinforce: tch and
candle) mirror line by line: the language comparison. The training loop (sampling the policy from
the shared draws, the episode's discounted and standardised returns, one update per finished
episode, the clocks) is the on-policy loop of the `train_agent` protocol (mlbench.policy), the same
on every side; this file is the policy and its update. tests/test_reinforce.py checks that the
sides take the same actions and the same updates.

Williams 1992, as the usual CartPole baseline writes it: an MLP policy (`hidden` sizes, ReLU) from
the observation to one logit per action, softmax probabilities; per finished episode the loss
-mean_k(log pi(a_k | s_k) w_k) over its steps, w the per-step weights the protocol computes (the
returns-to-go, standardised with `normalize_returns`); Adam (PyTorch's defaults but the learning
rate); the gradient's global norm clipped to `max_grad_norm`. No baseline and no entropy bonus.
PyTorch's names (`trunk.0.weight`, `head.bias`) are the safetensors names both sides load.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a plain script, too

import numpy as np
import torch
from torch import nn

from mlbench import agents


@dataclass(frozen=True)
class LearnerParams:
    learning_rate: float = 1e-3
    max_grad_norm: float = 10.0
    hidden: tuple[int, ...] = (64, 64)


class PolicyNetwork(nn.Module):
    def __init__(self, observations: int, actions: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = observations
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(width, actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(obs))  # logits


class Learner:
    """The policy (from the shared initial weights, PyTorch's names) and its optimizer."""

    def __init__(self, observations: int, actions: int, params: LearnerParams,
                 weights: dict[str, torch.Tensor] | None = None) -> None:
        self.params = params
        self.policy = PolicyNetwork(observations, actions, params.hidden)
        if weights is not None:
            self.policy.load_state_dict(weights)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=params.learning_rate)

    def probabilities(self, observation: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = self.policy(torch.from_numpy(observation).unsqueeze(0))
            return torch.softmax(logits, dim=1).squeeze(0).numpy()

    def update(self, obs: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor) -> float:
        log_probs = torch.log_softmax(self.policy(obs), dim=1).gather(1, actions.unsqueeze(1)).squeeze(1)
        loss = -(log_probs * weights).mean()
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.policy.parameters(), self.params.max_grad_norm)
        self.optimizer.step()
        return float(loss.item())


def learner_params(params: dict[str, Any]) -> LearnerParams:
    return LearnerParams(learning_rate=params["learning_rate"], max_grad_norm=params["max_grad_norm"],
                         hidden=(params["hidden_size"],) * params["hidden_layers"])


class TorchAgent:
    """The protocol's agent (mlbench.policy.PolicyAgent) on the learner: numpy in, PyTorch tensors."""

    def __init__(self, learner: Learner) -> None:
        self.learner = learner

    def probabilities(self, observation: np.ndarray) -> np.ndarray:
        return self.learner.probabilities(observation)

    def update(self, observations: np.ndarray, actions: np.ndarray, weights: np.ndarray) -> float:
        return self.learner.update(torch.from_numpy(observations), torch.from_numpy(actions),
                                   torch.from_numpy(weights))


def init(params: dict[str, Any], observations: int, actions: int, seed: int) -> dict[str, np.ndarray]:
    torch.manual_seed(seed)
    net = PolicyNetwork(observations, actions, (params["hidden_size"],) * params["hidden_layers"])
    return {k: v.detach().numpy() for k, v in net.state_dict().items()}


def build(params: dict[str, Any], observations: int, actions: int, weights: Path) -> TorchAgent:
    from safetensors.torch import load_file

    return TorchAgent(Learner(observations, actions, learner_params(params), load_file(weights)))


ALGORITHMS = {"reinforce": agents.TrainAgent(
    init=init, build=build, loop="episodes",
    describe=lambda params: "REINFORCE (PyTorch, Adam, returns-to-go"
                            f"{', standardised' if params['normalize_returns'] else ''}, no baseline)")}

if __name__ == "__main__":
    from mlbench.harness import run_task
    from mlbench.torch_net import setup

    run_task(ALGORITHMS, torch.__version__, ["torch", "numpy", "gymnasium"], setup=setup)
