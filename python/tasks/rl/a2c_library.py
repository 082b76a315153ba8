"""stable-baselines3's A2C (the library a Python user would pick) for the `a2c_library` task: the
library comparison against the project's Rust twins (rust/a2c). Read configs/tasks/a2c_library.yaml
for what the sides share and what they do not.

The job's hyperparameters map one to one onto `stable_baselines3.A2C`: learning_rate, n_steps,
gamma, gae_lambda, ent_coef, vf_coef, max_grad_norm, RMSprop's alpha and eps (`use_rms_prop`,
`rms_prop_eps`, `optimizer_kwargs`), no advantage normalisation, and the networks (net_arch: separate
actor and critic, hidden_layers x hidden_size, tanh: the library's A2C defaults). The shared initial
weights (the `a2c` task's, PyTorch's names) are loaded into its policy: `actor.K` ->
`mlp_extractor.policy_net.K`, `critic.K` -> `mlp_extractor.value_net.K`, `actor_head` ->
`action_net`, `critic_head` -> `value_net`. Episodes start from the rollouts set's starts; its own
random generator (seeded with the repetition's seed) samples the actions.
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
import a2c  # the PyTorch twin's initial weights: the same networks on every side
import library

NAMES = {"actor": "mlp_extractor.policy_net", "critic": "mlp_extractor.value_net", "actor_head": "action_net",
         "critic_head": "value_net"}


def shared_weights(weights: Path) -> dict[str, torch.Tensor]:
    """The shared file's tensors under stable-baselines3's ActorCriticPolicy names."""
    from safetensors.torch import load_file

    renamed = {}
    for name, tensor in load_file(weights).items():
        module, _, rest = name.partition(".")
        renamed[f"{NAMES[module]}.{rest}"] = tensor
    return renamed


def load_shared(model: Any, weights: Path) -> None:
    """The shared file loaded into a stable-baselines3 actor-critic policy (A2C's or PPO's)."""
    missing, unexpected = model.policy.load_state_dict(shared_weights(weights), strict=False)
    if unexpected or any(not name.startswith("log_std") for name in missing):
        raise ValueError(f"the shared weights do not fit stable-baselines3's {type(model).__name__} policy: "
                         f"missing {missing}, unexpected {unexpected}")


def learn(params: dict[str, Any], env: gym.Env, weights: Path, steps: int, seed: int) -> agents.AgentRun:
    from stable_baselines3 import A2C

    hidden = [params["hidden_size"]] * params["hidden_layers"]

    def make_model(monitored: Any) -> A2C:
        return A2C("MlpPolicy", monitored, learning_rate=params["learning_rate"], n_steps=params["n_steps"],
                   gamma=params["gamma"], gae_lambda=params["gae_lambda"], ent_coef=params["ent_coef"],
                   vf_coef=params["vf_coef"], max_grad_norm=params["max_grad_norm"], use_rms_prop=True,
                   rms_prop_eps=params["rms_eps"], normalize_advantage=False, seed=seed, device="cpu",
                   policy_kwargs={"net_arch": {"pi": hidden, "vf": hidden}, "activation_fn": torch.nn.Tanh,
                                  "optimizer_kwargs": {"alpha": params["rms_alpha"], "eps": params["rms_eps"],
                                                       "weight_decay": 0}})

    return library.run(make_model, lambda model: load_shared(model, weights), env, steps)


def describe(params: dict[str, Any]) -> str:
    return f"stable-baselines3 {stable_baselines3.__version__} A2C (its own loop and random generator)"


ALGORITHMS = {"a2c": agents.TrainAgent(init=a2c.ALGORITHMS["a2c"].init, build=None, describe=describe, learn=learn,
                                      loop="rollouts")}  # the twins read the rollouts loop's draws

if __name__ == "__main__":
    from mlbench.harness import run_task
    from mlbench.torch_net import setup

    run_task(ALGORITHMS, stable_baselines3.__version__, ["stable-baselines3", "torch", "gymnasium"], setup=setup)
