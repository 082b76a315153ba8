"""DQN's learner in PyTorch, written once in the compact shape its Rust twin (rust/dqn, tch) mirrors
line by line: the language comparison of issue 11. The training loop (acting, the replay buffer,
the epsilon schedule) is not built yet; the update is, and tests/test_dqn_update.py checks that
both sides take the same step.

The network: an MLP (`hidden` sizes, ReLU) from the observation to one Q-value per action, or with
`dueling` a shared trunk, a value head and an advantage head, Q = V + A - mean(A) (Wang et al.
2016). PyTorch's names (`trunk.0.weight`, `head.weight`, `value.weight`, `advantage.bias`) are the
safetensors names both sides load.

One update on a batch (obs, actions, rewards, next_obs, dones): the TD target r + gamma (1 - done)
Q_target(s', a'), a' the target network's argmax, or the online network's with `double` (van
Hasselt et al. 2016), computed without gradients; the Huber loss (smooth L1, beta 1, as
stable-baselines3's DQN) between it and Q_online(s, a); Adam (PyTorch's defaults but the learning
rate); the gradient's global norm clipped to `max_grad_norm`. The target network is a copy of the
online one, refreshed by `sync_target` (hard update, every `target_update_freq` updates).

Exploration: the specification's multiplicative epsilon (`epsilon = max(end, epsilon * decay)`
after every episode or every step, the caller's choice, one multiplication at a time so both sides
round alike) and stable-baselines3's linear one (`get_linear_fn`: from start to end over the first
`fraction` of the run's steps, then end), written out in its operation order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class LearnerParams:
    gamma: float = 0.99
    learning_rate: float = 1e-3
    double: bool = False
    dueling: bool = False
    max_grad_norm: float = 10.0
    hidden: tuple[int, ...] = (64, 64)


class QNetwork(nn.Module):
    def __init__(self, observations: int, actions: int, hidden: tuple[int, ...], dueling: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = observations
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.dueling = dueling
        if dueling:
            self.value = nn.Linear(width, 1)
            self.advantage = nn.Linear(width, actions)
        else:
            self.head = nn.Linear(width, actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.trunk(obs)
        if not self.dueling:
            return self.head(features)
        advantage = self.advantage(features)
        return self.value(features) + advantage - advantage.mean(dim=1, keepdim=True)


@dataclass
class Batch:
    obs: torch.Tensor  # B x observations, float32
    actions: torch.Tensor  # B, int64
    rewards: torch.Tensor  # B, float32
    next_obs: torch.Tensor  # B x observations, float32
    dones: torch.Tensor  # B, float32: 1 where the transition terminated the episode (not truncated)


class Learner:
    """The online and target networks (the target a copy of the online one) and the optimizer;
    `weights` (PyTorch's names) are the shared initial weights, if given."""

    def __init__(self, observations: int, actions: int, params: LearnerParams,
                 weights: dict[str, torch.Tensor] | None = None) -> None:
        self.params = params
        self.online = QNetwork(observations, actions, params.hidden, params.dueling)
        if weights is not None:
            self.online.load_state_dict(weights)
        self.target = QNetwork(observations, actions, params.hidden, params.dueling)
        self.target.load_state_dict(self.online.state_dict())
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=params.learning_rate)

    def targets(self, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            next_q = self.target(batch.next_obs)
            if self.params.double:
                chosen = self.online(batch.next_obs).argmax(dim=1, keepdim=True)
            else:
                chosen = next_q.argmax(dim=1, keepdim=True)
            best = next_q.gather(1, chosen).squeeze(1)
            return batch.rewards + self.params.gamma * (1.0 - batch.dones) * best

    def update(self, batch: Batch) -> float:
        target = self.targets(batch)
        q = self.online(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
        loss = nn.functional.smooth_l1_loss(q, target)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), self.params.max_grad_norm)
        self.optimizer.step()
        return float(loss.item())

    def sync_target(self) -> None:
        self.target.load_state_dict(self.online.state_dict())


@dataclass
class MultiplicativeEpsilon:
    """epsilon = max(end, epsilon * decay) at every `advance` (per episode or per step)."""

    start: float
    end: float
    decay: float
    value: float = field(init=False)

    def __post_init__(self) -> None:
        self.value = self.start

    def advance(self) -> None:
        self.value = max(self.end, self.value * self.decay)


def linear_epsilon(start: float, end: float, fraction: float, step: int, total_steps: int) -> float:
    """stable-baselines3's exploration rate at `step` of `total_steps` (get_linear_fn of the
    remaining progress, as its DQN computes it)."""
    progress_remaining = 1.0 - float(step) / float(total_steps)
    if (1 - progress_remaining) > fraction:
        return end
    return start + (1 - progress_remaining) * (end - start) / fraction
