"""PPO in PyTorch, written once in the compact shape its Rust twins (rust/ppo: tch and candle) mirror
line by line: the language comparison. The training loop (sampling the policy from the shared draws,
rollouts of n_steps, the truncation and rollout bootstraps, generalised advantage estimation, the
shared shuffles of the minibatches, the clocks) is the `minibatches` loop of the `train_agent`
protocol (mlbench.policy), the same on every side; this file is the clipped update. The networks
are A2C's (python/tasks/rl/a2c.py: separate tanh actor and critic MLPs, a softmax policy, the same
safetensors names), so the two algorithms differ only in their update. tests/test_ppo.py checks
that the sides take the same actions and the same updates.

Schulman et al. 2017 (clipped surrogate), as stable-baselines3's PPO computes it with one
environment. Per rollout: the old log-probabilities log pi_old(a|s) of its rows from the network
before the update (the acting network: weights do not change inside a rollout); then for each of
n_epochs epochs, the rollout's rows in that epoch's shared shuffle, cut into minibatches of
batch_size rows (the last one shorter where batch_size does not divide n_steps), each one step of:
  advantages standardised over the minibatch, (A - mean) / (std + 1e-8) with the unbiased std
    (`normalize_advantage`, skipped for a single row, as the library skips it);
  ratio = exp(log pi(a|s) - log pi_old(a|s));
  loss = -mean(min(A ratio, A clip(ratio, 1 - clip_range, 1 + clip_range)))
         + ent_coef (-mean(entropy)) + vf_coef mean((returns - V(s))^2);
  Adam (eps `adam_eps`, stable-baselines3's 1e-5; betas 0.9, 0.999), the gradient's global norm
  clipped to `max_grad_norm`.
The update's loss is the mean of its minibatches' losses (summed in order in float64). Not here:
the library's value clipping (`clip_range_vf`, off by default) and early stopping on the KL
divergence (`target_kl`, off by default).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a plain script, too

import torch
from torch import nn

from mlbench import agents

sys.path.insert(0, str(Path(__file__).resolve().parent))
import a2c  # the actor-critic networks, their initial weights and the protocol's agent

ADVANTAGE_EPS = 1e-8


@dataclass(frozen=True)
class LearnerParams:
    learning_rate: float = 3e-4
    batch_size: int = 64
    clip_range: float = 0.2
    normalize_advantage: bool = True
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    adam_eps: float = 1e-5
    hidden: tuple[int, ...] = (64, 64)


class Learner:
    """The actor-critic (from the shared initial weights, PyTorch's names) and Adam."""

    def __init__(self, observations: int, actions: int, params: LearnerParams,
                 weights: dict[str, torch.Tensor] | None = None) -> None:
        self.params = params
        self.net = a2c.ActorCritic(observations, actions, params.hidden)
        if weights is not None:
            self.net.load_state_dict(weights)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=params.learning_rate, eps=params.adam_eps)

    def update(self, obs: torch.Tensor, actions: torch.Tensor, returns: torch.Tensor, advantages: torch.Tensor,
               order: torch.Tensor) -> float:
        p = self.params
        with torch.no_grad():
            old_log_probs, _, _ = self.net.evaluate(obs, actions)
        total, count = 0.0, 0
        for shuffle in order:
            for start in range(0, len(shuffle), p.batch_size):
                rows = shuffle[start:start + p.batch_size]
                log_probs, entropy, values = self.net.evaluate(obs[rows], actions[rows])
                adv = advantages[rows]
                if p.normalize_advantage and len(rows) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + ADVANTAGE_EPS)
                ratio = torch.exp(log_probs - old_log_probs[rows])
                clipped = torch.clamp(ratio, 1 - p.clip_range, 1 + p.clip_range)
                policy_loss = -torch.min(adv * ratio, adv * clipped).mean()
                value_loss = nn.functional.mse_loss(returns[rows], values)
                loss = policy_loss + p.ent_coef * -entropy.mean() + p.vf_coef * value_loss
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.net.parameters(), p.max_grad_norm)
                self.optimizer.step()
                total += float(loss.item())
                count += 1
        return total / count


def learner_params(params: dict[str, Any]) -> LearnerParams:
    return LearnerParams(learning_rate=params["learning_rate"], batch_size=params["batch_size"],
                         clip_range=params["clip_range"], normalize_advantage=params["normalize_advantage"],
                         ent_coef=params["ent_coef"], vf_coef=params["vf_coef"], max_grad_norm=params["max_grad_norm"],
                         adam_eps=params["adam_eps"], hidden=(params["hidden_size"],) * params["hidden_layers"])


def build(params: dict[str, Any], observations: int, actions: int, weights: Path) -> a2c.TorchAgent:
    from safetensors.torch import load_file

    return a2c.TorchAgent(Learner(observations, actions, learner_params(params), load_file(weights)))


def describe(params: dict[str, Any]) -> str:
    return (f"PPO (PyTorch, Adam, {params['n_steps']}-step rollouts, {params['n_epochs']} epochs of "
            f"{params['batch_size']}-row minibatches, clip {params['clip_range']:g})")


ALGORITHMS = {"ppo": agents.TrainAgent(init=a2c.init, build=build, loop="minibatches", describe=describe)}

if __name__ == "__main__":
    from mlbench.harness import run_task
    from mlbench.torch_net import setup

    run_task(ALGORITHMS, torch.__version__, ["torch", "numpy", "gymnasium"], setup=setup)
