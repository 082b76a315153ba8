"""A2C in PyTorch, written once in the compact shape its Rust twins (rust/a2c: tch and candle)
mirror line by line: the language comparison. The training loop (sampling the policy from the shared
draws, rollouts of n_steps, the truncation and rollout bootstraps, generalised advantage
estimation, the clocks) is the `rollouts` loop of the `train_agent` protocol (mlbench.policy), the
same on every side; this file is the actor, the critic and their update. tests/test_a2c.py checks
that the sides take the same actions and the same updates.

Mnih et al. 2016, synchronous with one environment, as stable-baselines3's A2C computes it: separate
actor and critic MLPs (`hidden` sizes, tanh, stable-baselines3's default for A2C), a softmax policy;
per rollout the loss -mean(A log pi(a|s)) + vf_coef mean((R - V(s))^2) - ent_coef mean(H(pi(.|s)))
with A and R the protocol's advantages and returns; RMSprop (alpha `rms_alpha`, eps `rms_eps`, as
stable-baselines3's A2C builds it); the gradient's global norm clipped to `max_grad_norm`.
PyTorch's names (`actor.0.weight`, `actor_head.bias`, `critic.2.weight`, `critic_head.weight`)
are the safetensors names both sides load.
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

from mlbench import agents, policy


@dataclass(frozen=True)
class LearnerParams:
    learning_rate: float = 7e-4
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    rms_alpha: float = 0.99
    rms_eps: float = 1e-5
    hidden: tuple[int, ...] = (64, 64)


def mlp(observations: int, hidden: tuple[int, ...]) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    width = observations
    for size in hidden:
        layers += [nn.Linear(width, size), nn.Tanh()]
        width = size
    return nn.Sequential(*layers), width


class ActorCritic(nn.Module):
    def __init__(self, observations: int, actions: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.actor, width = mlp(observations, hidden)
        self.actor_head = nn.Linear(width, actions)
        self.critic, width = mlp(observations, hidden)
        self.critic_head = nn.Linear(width, 1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.actor_head(self.actor(obs)), self.critic_head(self.critic(obs)).squeeze(1)  # logits, V

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log pi(a|s), the policy's entropy and V(s) of each row (the updates' shared first half)."""
        logits, values = self(obs)
        log_all = torch.log_softmax(logits, dim=1)
        log_probs = log_all.gather(1, actions.unsqueeze(1)).squeeze(1)
        entropy = -(torch.softmax(logits, dim=1) * log_all).sum(dim=1)
        return log_probs, entropy, values

    def act(self, observation: np.ndarray) -> tuple[np.ndarray, float]:
        with torch.no_grad():
            logits, value = self(torch.from_numpy(observation).unsqueeze(0))
            return torch.softmax(logits, dim=1).squeeze(0).numpy(), float(value.item())

    def values(self, observations: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.critic_head(self.critic(torch.from_numpy(observations))).squeeze(1).numpy()


class Learner:
    """The actor-critic (from the shared initial weights, PyTorch's names) and its optimizer."""

    def __init__(self, observations: int, actions: int, params: LearnerParams,
                 weights: dict[str, torch.Tensor] | None = None) -> None:
        self.params = params
        self.net = ActorCritic(observations, actions, params.hidden)
        if weights is not None:
            self.net.load_state_dict(weights)
        self.optimizer = torch.optim.RMSprop(self.net.parameters(), lr=params.learning_rate, alpha=params.rms_alpha,
                                             eps=params.rms_eps)

    def update(self, obs: torch.Tensor, actions: torch.Tensor, returns: torch.Tensor,
               advantages: torch.Tensor) -> float:
        log_probs, entropy, values = self.net.evaluate(obs, actions)
        policy_loss = -(advantages * log_probs).mean()
        value_loss = nn.functional.mse_loss(returns, values)
        loss = policy_loss + self.params.vf_coef * value_loss - self.params.ent_coef * entropy.mean()
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), self.params.max_grad_norm)
        self.optimizer.step()
        return float(loss.item())


def learner_params(params: dict[str, Any]) -> LearnerParams:
    return LearnerParams(learning_rate=params["learning_rate"], vf_coef=params["vf_coef"],
                         ent_coef=params["ent_coef"], max_grad_norm=params["max_grad_norm"],
                         rms_alpha=params["rms_alpha"], rms_eps=params["rms_eps"],
                         hidden=(params["hidden_size"],) * params["hidden_layers"])


class TorchAgent:
    """The protocol's agent (mlbench.policy.ActorCritic) on a learner (this file's, or PPO's): numpy
    in, PyTorch tensors."""

    def __init__(self, learner: Any) -> None:
        self.learner = learner

    def act(self, observation: np.ndarray) -> tuple[np.ndarray, float]:
        return self.learner.net.act(observation)

    def values(self, observations: np.ndarray) -> np.ndarray:
        return self.learner.net.values(observations)

    def update(self, rollout: policy.Rollout) -> float:
        tensors = [torch.from_numpy(rollout.obs), torch.from_numpy(rollout.actions), torch.from_numpy(rollout.returns),
                   torch.from_numpy(rollout.advantages)]
        if rollout.order is not None:  # the minibatches' shuffles, as row indices
            tensors.append(torch.from_numpy(rollout.order.astype(np.int64)))
        return self.learner.update(*tensors)


def init(params: dict[str, Any], observations: int, actions: int, seed: int) -> dict[str, np.ndarray]:
    torch.manual_seed(seed)
    net = ActorCritic(observations, actions, (params["hidden_size"],) * params["hidden_layers"])
    return {k: v.detach().numpy() for k, v in net.state_dict().items()}


def build(params: dict[str, Any], observations: int, actions: int, weights: Path) -> TorchAgent:
    from safetensors.torch import load_file

    return TorchAgent(Learner(observations, actions, learner_params(params), load_file(weights)))


ALGORITHMS = {"a2c": agents.TrainAgent(
    init=init, build=build, loop="rollouts",
    describe=lambda params: f"A2C (PyTorch, RMSprop, {params['n_steps']}-step rollouts, GAE lambda "
                            f"{params['gae_lambda']:g})")}

if __name__ == "__main__":
    from mlbench.harness import run_task
    from mlbench.torch_net import setup

    run_task(ALGORITHMS, torch.__version__, ["torch", "numpy", "gymnasium"], setup=setup)
