"""stable-baselines3's DQN (the library a Python user would pick) for the `dqn_library` task: the
library comparison against the project's Rust twins (rust/dqn). Read configs/tasks/dqn_library.yaml
for what the sides share and what they do not.

The job's hyperparameters map one to one onto `stable_baselines3.DQN`: learning_rate, buffer_size,
learning_starts, batch_size, gamma, train_freq (steps, one gradient step each), target_update_freq
(target_update_interval, in steps, as the twins count it), max_grad_norm, the linear exploration
(exploration_initial_eps, exploration_final_eps, exploration_fraction) and the network
(net_arch: hidden_layers x hidden_size, ReLU). Adam's eps is set to PyTorch's default 1e-8, the
twins'. The shared initial weights (the `dqn` task's plain network, PyTorch's names) are loaded into
its Q-network and its target: `trunk.{2i}` -> `q_net.{2i}`, `head` -> `q_net.{2L}`. Episodes start
from the rollouts set's starts (a wrapper the library's own resets go through); gymnasium's Monitor
gives the episodes' returns and lengths, a wrapper records the actions. Its own random generator
(seeded with the repetition's seed) draws exploration and replay rows.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a plain script, too

import gymnasium as gym
import stable_baselines3
import torch

from mlbench import agents

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dqn  # the PyTorch twin's initial weights: the same network on every side
import library


def shared_weights(weights: Path, layers: int) -> dict[str, torch.Tensor]:
    """The shared file's tensors under stable-baselines3's QNetwork names (`q_net.K.weight`)."""
    from safetensors.torch import load_file

    named = load_file(weights)
    renamed = {}
    for name, tensor in named.items():
        module, _, kind = name.rpartition(".")
        index = 2 * layers if module == "head" else int(module.removeprefix("trunk."))
        renamed[f"q_net.{index}.{kind}"] = tensor
    return renamed


def learn(params: dict[str, Any], env: gym.Env, weights: Path, steps: int, seed: int) -> agents.AgentRun:
    from stable_baselines3 import DQN

    def make_model(monitored: Any) -> DQN:
        return DQN("MlpPolicy", monitored, learning_rate=params["learning_rate"], buffer_size=params["buffer_size"],
                   learning_starts=params["learning_starts"], batch_size=params["batch_size"], gamma=params["gamma"],
                   train_freq=params["train_freq"], gradient_steps=1,
                   target_update_interval=params["target_update_freq"],
                   exploration_fraction=params["exploration_fraction"],
                   exploration_initial_eps=params["epsilon_start"], exploration_final_eps=params["epsilon_end"],
                   max_grad_norm=params["max_grad_norm"], seed=seed, device="cpu",
                   policy_kwargs={"net_arch": [params["hidden_size"]] * params["hidden_layers"],
                                  "optimizer_kwargs": {"eps": 1e-8}})

    def load_weights(model: DQN) -> None:
        state = shared_weights(weights, params["hidden_layers"])
        model.q_net.load_state_dict(state)
        model.q_net_target.load_state_dict(state)

    return library.run(make_model, load_weights, env, steps)


def describe(params: dict[str, Any]) -> str:
    return f"stable-baselines3 {stable_baselines3.__version__} DQN (its own loop and random generator)"


ALGORITHMS = {"dqn": agents.TrainAgent(init=dqn.ALGORITHMS["dqn"].init, build=None, describe=describe, learn=learn)}

if __name__ == "__main__":
    from mlbench.harness import run_task
    from mlbench.torch_net import setup

    run_task(ALGORITHMS, stable_baselines3.__version__, ["stable-baselines3", "torch", "gymnasium"], setup=setup)
