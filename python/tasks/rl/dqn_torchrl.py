"""torchrl's DQN family (the maintained library for what stable-baselines3 lacks: double and
dueling DQN) for the `dqn_torchrl` task: the library comparison against the project's Rust
twins (rust/dqn). Read configs/tasks/dqn_torchrl.yaml for what the sides share and what they do not.

Built from torchrl's parts, as its DQN examples build it: the environment through `GymWrapper`
(categorical actions), the Q-network (the twin's `QNetwork` module, plain or dueling, under the
shared initial weights: torchrl takes any module) in a `QValueActor`, exploration by `EGreedyModule`
(linear from epsilon_start to epsilon_end over exploration_fraction of the run, the task's schedule),
a `Collector` handing over train_freq steps at a time, a `TensorDictReplayBuffer` on a
`LazyTensorStorage` of buffer_size rows, `DQNLoss` (smooth L1, the target network's value,
`double_dqn` for the double variants) with gamma, Adam (lr; PyTorch's eps), the gradient norm
clipped to max_grad_norm, and `HardUpdate` syncing the target at the steps the twins sync it (every
target_update_freq steps). One update per batch once more than learning_starts steps are stored, as
the twins schedule it. Episodes start from the rollouts set's starts; gymnasium's Monitor gives the
episodes, a wrapper records the actions; torchrl's own random generators (torch's, seeded with the
repetition's seed) draw exploration and replay rows. torchrl's prioritized DQN is `unsupported`
(configs/tasks/dqn_torchrl.yaml says why).
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a plain script, too

import gymnasium as gym
import torch
import torchrl

from mlbench import agents

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dqn  # the twin's network and initial weights: the same network on every side
import library

VARIANTS = {"dqn": (False, False), "ddqn": (True, False), "dueling_dqn": (True, True)}


class TorchRLDQN:
    """torchrl's parts assembled into a DQN learner with a `learn(total_timesteps)` loop."""

    def __init__(self, params: dict[str, Any], env: gym.Env, double: bool, dueling: bool, seed: int) -> None:
        from tensordict.nn import TensorDictSequential
        from torchrl.data import LazyTensorStorage, TensorDictReplayBuffer
        from torchrl.envs import GymWrapper
        from torchrl.modules import EGreedyModule, QValueActor
        from torchrl.objectives import DQNLoss, HardUpdate

        torch.manual_seed(seed)
        self.params = params
        self.env = GymWrapper(env, categorical_action_encoding=True)
        observations, actions = env.observation_space.shape[0], int(env.action_space.n)
        self.net = dqn.QNetwork(observations, actions, dqn.hidden(params), dueling)
        self.actor = QValueActor(self.net, in_keys=["observation"], spec=self.env.action_spec)
        steps = params["total_timesteps"]
        self.explore = EGreedyModule(self.env.action_spec, eps_init=params["epsilon_start"],
                                     eps_end=params["epsilon_end"],
                                     annealing_num_steps=max(1, int(params["exploration_fraction"] * steps)))
        self.policy = TensorDictSequential(self.actor, self.explore)
        self.buffer = TensorDictReplayBuffer(storage=LazyTensorStorage(params["buffer_size"]),
                                             batch_size=params["batch_size"])
        self.loss = DQNLoss(self.actor, loss_function="smooth_l1", delay_value=True, double_dqn=double)
        self.loss.make_value_estimator(gamma=params["gamma"])
        self.target = HardUpdate(self.loss, value_network_update_interval=1)  # a sync at each step() the loop calls
        self.optimizer = torch.optim.Adam(self.loss.parameters(), lr=params["learning_rate"])
        self._n_updates = 0

    def load(self, weights: Path) -> None:
        """The shared initial weights into the Q-network and its target."""
        from safetensors.torch import load_file

        self.net.load_state_dict(load_file(weights))
        with warnings.catch_warnings():  # torchrl warns that the target was set at construction: it is reset here
            warnings.simplefilter("ignore", UserWarning)
            self.target.init_()

    def learn(self, total_timesteps: int) -> None:
        from torchrl.collectors import Collector

        p = self.params
        # no transforms appended to the environment (InitTracker serves recurrent policies; this one is not)
        collector = Collector(self.env, self.policy, frames_per_batch=p["train_freq"], total_frames=total_timesteps,
                              auto_register_policy_transforms=False)
        frames, every = 0, p["target_update_freq"]
        for data in collector:
            self.buffer.extend(data.reshape(-1))
            frames += data.numel()
            self.explore.step(data.numel())
            # the twins sync after step n when n % target_update_freq == 0: a sync point inside this
            # batch comes before its update, one at its last step after it
            at_end = frames % every == 0
            if frames // every > (frames - data.numel()) // every and not at_end:
                self.target.step()
            if frames > p["learning_starts"]:
                sample = self.buffer.sample()
                loss = self.loss(sample)["loss"]
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.loss.parameters(), p["max_grad_norm"])
                self.optimizer.step()
                self._n_updates += 1
            if at_end:
                self.target.step()
        collector.shutdown()


def learner(name: str) -> agents.TrainAgent:
    double, dueling = VARIANTS[name]

    def learn(params: dict[str, Any], env: gym.Env, weights: Path, steps: int, seed: int) -> agents.AgentRun:
        def make_model(monitored: Any) -> TorchRLDQN:
            return TorchRLDQN(params, monitored, double, dueling, seed)

        return library.run(make_model, lambda model: model.load(weights), env, steps)

    return agents.TrainAgent(init=dqn.ALGORITHMS[name].init, build=None, learn=learn, describe=lambda params: (
                                 f"torchrl {torchrl.__version__} {name} (its collector, replay buffer, DQNLoss and "
                                 "random generator)"))


# torchrl cannot run prioritized DQN or Rainbow here (the spec's rules decline their jobs); these
# entries draw the twins' fixtures (initial weights, strata, noise) for those cells, nothing more.
ALGORITHMS = {name: learner(name) for name in VARIANTS} | {name: dataclasses.replace(
    dqn.ALGORITHMS[name], build=None, describe=lambda params, name=name: f"torchrl {name} (unsupported)")
    for name in ("prioritized_dqn", "rainbow_dqn")}

if __name__ == "__main__":
    from mlbench.harness import run_task
    from mlbench.torch_net import setup

    run_task(ALGORITHMS, torchrl.__version__, ["torchrl", "tensordict", "torch", "gymnasium"], setup=setup)
