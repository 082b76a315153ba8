"""Rainbow's network and learner in PyTorch (Hessel et al. 2018), the `rainbow_dqn` algorithm of the
`dqn` task (python/tasks/rl/dqn.py), written in the compact shape its Rust twins (rust/dqn/src/
rainbow.rs on tch, candle_rainbow.rs on candle) mirror line by line. The protocol's `noisy` loop
(mlbench.agents) gives what is not the network's: prioritized replay (mlbench.priorities), n-step
transitions (mlbench.nstep) and the noise of the noisy layers (a shared stream, so no side draws).

The network: the DQN twin's MLP trunk (`trunk.0`, `trunk.2`, ...: Linear and ReLU), then dueling
heads that are noisy layers over `atoms` return values each: `value` (width to atoms) and
`advantage` (width to actions x atoms); logits = V + A - mean over actions of A, and each action's
return distribution is the softmax over its atoms. The support is atoms evenly spaced values from
v_min to v_max, z_j = v_min + j dz with dz = (v_max - v_min) / (atoms - 1) (float64, then float32).
Q(s, a) = sum_j p_j(s, a) z_j.

A noisy layer (Fortunato et al. 2018, factorised Gaussian noise): weight = weight_mu + weight_sigma
x (eps_out eps_in^T), bias = bias_mu + bias_sigma x eps_out, eps_in and eps_out set from a row of the
noise stream (already f(x) = sign(x) sqrt(|x|) of standard normals). Initial weights: mu uniform in
+-1/sqrt(inputs), weight_sigma noisy_std / sqrt(inputs), bias_sigma noisy_std / sqrt(outputs), as
the paper and Kaixhin's Rainbow set them. A noise row holds, for the online network and then the
target network, value's eps_in and eps_out, then advantage's eps_in and eps_out.

One update on a batch with importance-sampling weights: the next action is the online network's
argmax of Q at next_obs (double), its distribution p' the target network's; each atom's target
value Tz_i = clamp(R + discount (1 - done) z_i, v_min, v_max) is shared between its neighbouring
atoms by the projection m_j = sum_i p'_i max(0, 1 - |b_i - j|), b_i = (Tz_i - v_min) / dz
(Bellemare et al. 2017's projection, written densely as Dopamine does: a target that lands on an
atom gives it all its mass); each row's loss is the cross-entropy -sum_j m_j log p_j(s, a); the
update's loss is their mean weighted by the importance-sampling weights; Adam (PyTorch's defaults
but the learning rate) with the gradient's global norm clipped to max_grad_norm. Each row's loss
becomes its priority (as Kaixhin's Rainbow does). Epsilon-greedy is off by default: the noise
explores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class RainbowParams:
    learning_rate: float = 1e-3
    max_grad_norm: float = 10.0
    hidden: tuple[int, ...] = (64, 64)
    atoms: int = 51
    v_min: float = -100.0
    v_max: float = 100.0
    noisy_std: float = 0.5


class NoisyLinear(nn.Module):
    def __init__(self, inputs: int, outputs: int, std: float) -> None:
        super().__init__()
        self.weight_mu = nn.Parameter(torch.empty(outputs, inputs))
        self.weight_sigma = nn.Parameter(torch.full((outputs, inputs), std / math.sqrt(inputs)))
        self.bias_mu = nn.Parameter(torch.empty(outputs))
        self.bias_sigma = nn.Parameter(torch.full((outputs,), std / math.sqrt(outputs)))
        bound = 1.0 / math.sqrt(inputs)
        nn.init.uniform_(self.weight_mu, -bound, bound)
        nn.init.uniform_(self.bias_mu, -bound, bound)
        self.register_buffer("eps_in", torch.zeros(inputs), persistent=False)
        self.register_buffer("eps_out", torch.zeros(outputs), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight_mu + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        return nn.functional.linear(x, weight, self.bias_mu + self.bias_sigma * self.eps_out)


class RainbowNetwork(nn.Module):
    def __init__(self, observations: int, actions: int, params: RainbowParams) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = observations
        for size in params.hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.actions, self.atoms = actions, params.atoms
        self.value = NoisyLinear(width, params.atoms, params.noisy_std)
        self.advantage = NoisyLinear(width, actions * params.atoms, params.noisy_std)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """The logits of each action's return distribution: B x actions x atoms."""
        features = self.trunk(obs)
        value = self.value(features).view(-1, 1, self.atoms)
        advantage = self.advantage(features).view(-1, self.actions, self.atoms)
        return value + advantage - advantage.mean(dim=1, keepdim=True)

    def set_noise(self, noise: torch.Tensor) -> None:
        """The noisy layers' eps_in and eps_out from one network's part of a noise row."""
        at = 0
        for layer in (self.value, self.advantage):
            for buffer in (layer.eps_in, layer.eps_out):
                buffer.copy_(noise[at:at + len(buffer)])
                at += len(buffer)


def noise_size(width: int, actions: int, atoms: int) -> int:
    """Floats of one noise row: both networks' value and advantage eps_in and eps_out."""
    return 2 * (width + atoms + width + actions * atoms)


def support(params: RainbowParams) -> tuple[torch.Tensor, float]:
    """The support's values z_j = v_min + j dz (float64, then float32), and dz."""
    delta = (params.v_max - params.v_min) / (params.atoms - 1)
    return torch.tensor([params.v_min + j * delta for j in range(params.atoms)], dtype=torch.float32), delta


@dataclass
class Batch:
    obs: torch.Tensor  # B x observations, float32
    actions: torch.Tensor  # B, int64
    rewards: torch.Tensor  # B, float32: n-step returns
    next_obs: torch.Tensor  # B x observations, float32
    dones: torch.Tensor  # B, float32
    discounts: torch.Tensor  # B, float32: gamma^m


class RainbowLearner:
    """The online and target networks, the support and the optimizer; `weights` (PyTorch's names)
    are the shared initial weights."""

    def __init__(self, observations: int, actions: int, params: RainbowParams,
                 weights: dict[str, torch.Tensor] | None = None) -> None:
        self.params = params
        self.online = RainbowNetwork(observations, actions, params)
        if weights is not None:
            self.online.load_state_dict(weights)
        self.target = RainbowNetwork(observations, actions, params)
        self.target.load_state_dict(self.online.state_dict())
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=params.learning_rate)
        self.support, self.delta = support(params)
        self.positions = torch.arange(params.atoms, dtype=torch.float32)
        self.online_noise = noise_size(params.hidden[-1], actions, params.atoms) // 2

    def set_noise(self, row: torch.Tensor) -> None:
        self.online.set_noise(row[:self.online_noise])
        self.target.set_noise(row[self.online_noise:])

    def q_values(self, net: RainbowNetwork, obs: torch.Tensor) -> torch.Tensor:
        return (torch.softmax(net(obs), dim=2) * self.support).sum(dim=2)

    def projected(self, batch: Batch) -> torch.Tensor:
        """The target distribution m of each row: B x atoms."""
        with torch.no_grad():
            chosen = self.q_values(self.online, batch.next_obs).argmax(dim=1)
            index = chosen.view(-1, 1, 1).expand(-1, 1, self.params.atoms)
            next_p = torch.softmax(self.target(batch.next_obs), dim=2).gather(1, index).squeeze(1)
            scale = batch.discounts * (1.0 - batch.dones)
            tz = (batch.rewards.unsqueeze(1) + scale.unsqueeze(1) * self.support.unsqueeze(0))
            b = (tz.clamp(self.params.v_min, self.params.v_max) - self.params.v_min) / self.delta
            spread = (1.0 - (b.unsqueeze(2) - self.positions.view(1, 1, -1)).abs()).clamp(min=0.0)
            return (next_p.unsqueeze(2) * spread).sum(dim=1)

    def update_weighted(self, batch: Batch, weights: torch.Tensor) -> tuple[float, torch.Tensor]:
        """One update: the weighted loss and each row's cross-entropy (its new priority)."""
        m = self.projected(batch)
        index = batch.actions.view(-1, 1, 1).expand(-1, 1, self.params.atoms)
        log_p = torch.log_softmax(self.online(batch.obs), dim=2).gather(1, index).squeeze(1)
        losses = -(m * log_p).sum(dim=1)
        loss = (weights * losses).mean()
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), self.params.max_grad_norm)
        self.optimizer.step()
        return float(loss.item()), losses.detach()

    def greedy(self, observation: np.ndarray) -> int:
        with torch.no_grad():
            return int(self.q_values(self.online, torch.from_numpy(observation).unsqueeze(0)).argmax(dim=1).item())

    def sync_target(self) -> None:
        self.target.load_state_dict(self.online.state_dict())
