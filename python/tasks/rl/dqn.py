"""DQN in PyTorch, written once in the compact shape its Rust twins (rust/dqn: tch and candle) mirror
line by line: the language comparison. The training loop (epsilon-greedy acting, the replay buffer,
the update and target-sync schedule, the clocks) is the `train_agent` protocol of mlbench.agents,
the same on every side; this file is the learner the protocol calls. tests/test_dqn_update.py checks
that both sides take the same update step, tests/test_dqn_train.py that they train alike.

Algorithms: `dqn` (Mnih et al. 2015: plain network and target), `ddqn` (double targets),
`dueling_dqn` (the dueling network with double targets, as Wang et al. 2016 train it) and
`prioritized_dqn` (double targets from prioritized replay, as Schaul et al. 2016 train it: the
protocol's `prioritized` loop samples the rows and weights them, mlbench.priorities) and
`rainbow_dqn` (Hessel et al. 2018: double targets, prioritized replay, n-step returns, the dueling
network with a distributional head over noisy layers; the network and its learner are rainbow.py,
the protocol's `noisy` loop gives the replay, the n-step transitions and the noise).

The network: an MLP (`hidden` sizes, ReLU) from the observation to one Q-value per action, or with
`dueling` a shared trunk, a value head and an advantage head, Q = V + A - mean(A) (Wang et al.
2016). PyTorch's names (`trunk.0.weight`, `head.weight`, `value.weight`, `advantage.bias`) are the
safetensors names both sides load.

One update on a batch (obs, actions, rewards, next_obs, dones): the TD target r + gamma (1 - done)
Q_target(s', a'), a' the target network's argmax, or the online network's with `double` (van
Hasselt et al. 2016), computed without gradients; the Huber loss (smooth L1, beta 1, as
stable-baselines3's DQN) between it and Q_online(s, a); Adam (PyTorch's defaults but the learning
rate); the gradient's global norm clipped to `max_grad_norm`. The target network is a copy of the
online one, refreshed by `sync_target` (hard update, every `target_update_freq` updates). With
importance-sampling weights (prioritized replay) the loss is the mean of each row's Huber loss times
its weight, and the update also returns each row's |Q_online(s, a) - target|, the TD error that
becomes its priority.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rainbow  # Rainbow's network and learner


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
        return self.value(features) + advantage - advantage.mean(dim=-1, keepdim=True)  # one row or a batch


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
        return self.step(nn.functional.smooth_l1_loss(q, target))

    def update_weighted(self, batch: Batch, weights: torch.Tensor) -> tuple[float, torch.Tensor]:
        """The update with each row's loss weighted; the loss and the rows' absolute TD errors."""
        target = self.targets(batch)
        q = self.online(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
        loss = (weights * nn.functional.smooth_l1_loss(q, target, reduction="none")).mean()
        return self.step(loss), (q - target).detach().abs()

    def step(self, loss: torch.Tensor) -> float:
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), self.params.max_grad_norm)
        self.optimizer.step()
        return float(loss.item())

    def sync_target(self) -> None:
        self.target.load_state_dict(self.online.state_dict())


def learner_params(params: dict[str, Any], double: bool, dueling: bool) -> LearnerParams:
    return LearnerParams(gamma=params["gamma"], learning_rate=params["learning_rate"], double=double, dueling=dueling,
                         max_grad_norm=params["max_grad_norm"], hidden=hidden(params))


def hidden(params: dict[str, Any]) -> tuple[int, ...]:
    return (params["hidden_size"],) * params["hidden_layers"]


class TorchAgent:
    """The protocol's agent (mlbench.agents.Agent) on the learner: numpy rows in, PyTorch tensors."""

    def __init__(self, learner: Learner) -> None:
        self.learner = learner

    def greedy(self, observation: np.ndarray) -> int:
        with torch.no_grad():
            return int(self.learner.online(torch.from_numpy(observation).unsqueeze(0)).argmax(dim=1).item())

    def update(self, batch: agents.Batch) -> tuple[float, np.ndarray | None]:
        tensors = Batch(torch.from_numpy(batch.obs), torch.from_numpy(batch.actions), torch.from_numpy(batch.rewards),
                        torch.from_numpy(batch.next_obs), torch.from_numpy(batch.dones))
        if batch.weights is None:
            return self.learner.update(tensors), None
        loss, errors = self.learner.update_weighted(tensors, torch.from_numpy(batch.weights))
        return loss, errors.numpy()

    def sync_target(self) -> None:
        self.learner.sync_target()


def variant(double: bool, dueling: bool, name: str, loop: str = "replay") -> agents.TrainAgent:
    def init(params: dict[str, Any], observations: int, actions: int, seed: int) -> dict[str, np.ndarray]:
        torch.manual_seed(seed)
        net = QNetwork(observations, actions, hidden(params), dueling)
        return {k: v.detach().numpy() for k, v in net.state_dict().items()}

    def build(params: dict[str, Any], observations: int, actions: int, weights: Path) -> TorchAgent:
        from safetensors.torch import load_file

        return TorchAgent(Learner(observations, actions, learner_params(params, double, dueling), load_file(weights)))

    return agents.TrainAgent(init=init, build=build, loop=loop,
                             describe=lambda params: f"{name} (PyTorch, Adam, Huber loss, hard target sync)")


class RainbowAgent:
    """The protocol's agent (the `noisy` loop) on Rainbow's learner."""

    def __init__(self, learner: rainbow.RainbowLearner) -> None:
        self.learner = learner

    def greedy(self, observation: np.ndarray) -> int:
        return self.learner.greedy(observation)

    def reset_noise(self, noise: np.ndarray) -> None:
        self.learner.set_noise(torch.from_numpy(noise))

    def update(self, batch: agents.Batch) -> tuple[float, np.ndarray | None]:
        assert batch.weights is not None, "Rainbow learns from prioritized replay"
        tensors = rainbow.Batch(*(torch.from_numpy(values) for values in (
            batch.obs, batch.actions, batch.rewards, batch.next_obs, batch.dones, batch.discounts)))
        loss, errors = self.learner.update_weighted(tensors, torch.from_numpy(batch.weights))
        return loss, errors.numpy()

    def sync_target(self) -> None:
        self.learner.sync_target()


def rainbow_params(params: dict[str, Any]) -> rainbow.RainbowParams:
    return rainbow.RainbowParams(learning_rate=params["learning_rate"],
                                 max_grad_norm=params["max_grad_norm"], hidden=hidden(params), atoms=params["atoms"],
                                 v_min=params["v_min"], v_max=params["v_max"], noisy_std=params["noisy_std"])


def rainbow_variant() -> agents.TrainAgent:
    def init(params: dict[str, Any], observations: int, actions: int, seed: int) -> dict[str, np.ndarray]:
        torch.manual_seed(seed)
        net = rainbow.RainbowNetwork(observations, actions, rainbow_params(params))
        return {k: v.detach().numpy() for k, v in net.state_dict().items()}

    def build(params: dict[str, Any], observations: int, actions: int, weights: Path) -> RainbowAgent:
        from safetensors.torch import load_file

        learner = rainbow.RainbowLearner(observations, actions, rainbow_params(params), load_file(weights))
        return RainbowAgent(learner)

    return agents.TrainAgent(
        init=init, build=build, loop="noisy",
        noise=lambda params, actions: rainbow.noise_size(params["hidden_size"], actions, params["atoms"]),
        describe=lambda params: "Rainbow DQN (PyTorch, Adam, distributional cross-entropy, hard target sync)")


ALGORITHMS = {"dqn": variant(double=False, dueling=False, name="DQN"),
              "ddqn": variant(double=True, dueling=False, name="double DQN"),
              "dueling_dqn": variant(double=True, dueling=True, name="dueling double DQN"),
              "prioritized_dqn": variant(double=True, dueling=False, name="prioritized double DQN",
                                         loop="prioritized"),
              "rainbow_dqn": rainbow_variant()}

if __name__ == "__main__":
    from mlbench.harness import run_task
    from mlbench.torch_net import setup

    run_task(ALGORITHMS, torch.__version__, ["torch", "numpy", "gymnasium"], setup=setup)
