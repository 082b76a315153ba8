"""stable-baselines3's PPO (the library a Python user would pick) for the `ppo_library` task: the
library comparison against the project's Rust twins (rust/ppo). Read configs/tasks/ppo_library.yaml
for what the sides share and what they do not.

The job's hyperparameters map one to one onto `stable_baselines3.PPO`: learning_rate, n_steps,
batch_size, n_epochs, gamma, gae_lambda, clip_range, normalize_advantage, ent_coef, vf_coef,
max_grad_norm, Adam's eps (`optimizer_kwargs`), and the networks (net_arch: separate actor and
critic, hidden_layers x hidden_size, tanh: the library's defaults). The shared initial weights (the
`ppo` task's, PyTorch's names) are loaded into its policy under the names a2c_library.py maps.
Episodes start from the rollouts set's starts; its own random generator (seeded with the
repetition's seed) samples the actions and shuffles the minibatches.
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
import a2c_library  # the shared weights under the library's actor-critic names
import library
import ppo  # the PPO twin's initial weights: the same networks on every side


def learn(params: dict[str, Any], env: gym.Env, weights: Path, steps: int, seed: int) -> agents.AgentRun:
    from stable_baselines3 import PPO

    hidden = [params["hidden_size"]] * params["hidden_layers"]

    def make_model(monitored: Any) -> PPO:
        return PPO("MlpPolicy", monitored, learning_rate=params["learning_rate"], n_steps=params["n_steps"],
                   batch_size=params["batch_size"], n_epochs=params["n_epochs"], gamma=params["gamma"],
                   gae_lambda=params["gae_lambda"], clip_range=params["clip_range"],
                   normalize_advantage=params["normalize_advantage"], ent_coef=params["ent_coef"],
                   vf_coef=params["vf_coef"], max_grad_norm=params["max_grad_norm"], seed=seed, device="cpu",
                   policy_kwargs={"net_arch": {"pi": hidden, "vf": hidden}, "activation_fn": torch.nn.Tanh,
                                  "optimizer_kwargs": {"eps": params["adam_eps"]}})

    # the library counts an update per epoch; the twins (and this record) one per rollout
    return library.run(make_model, lambda model: a2c_library.load_shared(model, weights), env, steps,
                       updates=lambda model: model._n_updates // params["n_epochs"])


def describe(params: dict[str, Any]) -> str:
    return f"stable-baselines3 {stable_baselines3.__version__} PPO (its own loop, random generator and shuffles)"


ALGORITHMS = {"ppo": agents.TrainAgent(init=ppo.ALGORITHMS["ppo"].init, build=None, describe=describe, learn=learn,
                                      loop="minibatches")}  # the twins read the minibatches loop's streams

if __name__ == "__main__":
    from mlbench.harness import run_task
    from mlbench.torch_net import setup

    run_task(ALGORITHMS, stable_baselines3.__version__, ["stable-baselines3", "torch", "gymnasium"], setup=setup)
