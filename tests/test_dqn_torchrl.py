"""The torchrl library comparison for the DQN family (`dqn_torchrl`): torchrl's parts from the shared
initial weights and episode starts, against the Rust twins (the `dqn` binary), judged by the seeds'
IQM CIs.

torchrl's DQNLoss on the shared weights computes the twin's loss on the same batch (plain, double
and dueling: the same targets, the same Huber loss), so the library runs the algorithm the twins
run; its episodes start from the rollouts set's starts (its recorded actions, replayed in plain
gymnasium, give exactly its recorded episodes); every job runs or is unsupported with a reason;
bad input is refused.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import ROOT, rust_binary
from mlbench import agents
from mlbench.config import load_task_spec
from rl_checks import (
    agent_job,
    assert_episodes_replay,
    assert_judged_by_iqm,
    assert_ran_or_unsupported,
    assert_refused,
    measured,
    outputs,
    program,
    quiet_run,
)

gym = pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")
torch = pytest.importorskip("torch", reason="the dl extra (torch) is not installed")
pytest.importorskip("torchrl", reason="the rl extra (torchrl) is not installed")

sys.path.insert(0, str(ROOT / "python" / "tasks" / "rl"))
import dqn  # noqa: E402
import dqn_torchrl  # noqa: E402

STEPS = 1200
PARAMS = {"total_timesteps": STEPS, "buffer_size": 1000, "batch_size": 32, "learning_starts": 200, "train_freq": 4,
          "target_update_freq": 100, "exploration_fraction": 0.3}
ALGORITHMS = ["ddqn", "dueling_dqn"]
SETS = ["cartpole_random", "lunarlander_random"]
SEEDS = 2
DECLINED = {"prioritized_dqn": "C++ extension", "rainbow_dqn": "no Rainbow agent"}  # torchrl's, with a word of why
UPDATES = len(agents.update_steps(PARAMS, STEPS))


@pytest.fixture(scope="module")
def library_run(tmp_path_factory: pytest.TempPathFactory, rl_sets_dir: Path) -> Path:
    rust_binary("dqn")
    return quiet_run(tmp_path_factory.mktemp("dqn_torchrl"), rl_sets_dir, {
        "task": "dqn_torchrl", "repetitions": SEEDS, "processes": 1, "warmup": 0, "datasets": SETS,
        "algorithms": {name: PARAMS for name in [*ALGORITHMS, *DECLINED]}})


@pytest.mark.parametrize(("double", "dueling"), [(False, False), (True, False), (True, True)])
def test_torchrls_loss_is_the_twins(double: bool, dueling: bool, tmp_path: Path) -> None:
    from safetensors.numpy import save_file
    from safetensors.torch import load_file
    from tensordict import TensorDict

    spec = load_task_spec("dqn_torchrl").algorithms["ddqn"]
    params = {name: schema["default"] for name, schema in spec.items()} | {"hidden_size": 16, "hidden_layers": 2,
                                                                           "gamma": 0.9}
    weights = tmp_path / "init.safetensors"
    save_file(dqn.variant(double, dueling, "check").init(params, 4, 2, 7), str(weights))
    twin = dqn.Learner(4, 2, dqn.LearnerParams(gamma=0.9, double=double, dueling=dueling, hidden=(16, 16)),
                       load_file(weights))
    model = dqn_torchrl.TorchRLDQN(params, gym.make("CartPole-v1"), double, dueling, seed=0)
    model.load(weights)
    rng = np.random.default_rng(1)
    batch = dqn.Batch(*(torch.from_numpy(values) for values in (
        rng.normal(size=(32, 4)).astype(np.float32), rng.integers(0, 2, 32), rng.normal(size=32).astype(np.float32),
        rng.normal(size=(32, 4)).astype(np.float32), (rng.random(32) < 0.3).astype(np.float32))))
    done = batch.dones.bool().unsqueeze(1)
    sample = TensorDict({"observation": batch.obs, "action": batch.actions,
                         "next": {"observation": batch.next_obs, "reward": batch.rewards.unsqueeze(1), "done": done,
                                  "terminated": done}}, batch_size=[32])
    got = float(model.loss(sample)["loss"].detach())
    q = twin.online(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
    expected = float(torch.nn.functional.smooth_l1_loss(q, twin.targets(batch)).detach())
    assert got == pytest.approx(expected, rel=1e-6)


def test_every_job_ran_or_is_unsupported(library_run: Path) -> None:
    # torchrl's prioritized buffer cannot run with the pinned torch, nor Rainbow, which needs it
    records = assert_ran_or_unsupported(library_run, STEPS, UPDATES,
                                        *(("torchrl", name, word) for name, word in DECLINED.items()))
    python = [r for r in records if r["language"] == "python"]
    assert len(python) == len(ALGORITHMS) * len(SETS) * SEEDS
    assert all(r["solver"]["name"].startswith("torchrl") for r in python)


def test_library_episodes_start_from_the_set(library_run: Path, rl_sets_dir: Path) -> None:
    python = [r for r in measured(library_run) if r["language"] == "python" and r["dataset"] != "lunarlander_random"]
    assert all(len(outputs(library_run, r)["actions"]) == STEPS for r in python)
    assert_episodes_replay(library_run, rl_sets_dir, python)


def test_the_comparison_judges_by_the_iqm(library_run: Path) -> None:
    assert_judged_by_iqm(library_run, len(ALGORITHMS) * 2)  # CartPole x tch and candle (the declined: no library side)


@pytest.mark.parametrize(("params", "message"), [
    ({"buffer_size": 50, "batch_size": 64}, "batch_size: 64 is above buffer_size 50"),
    ({"exploration": "multiplicative"}, "exploration"),
    ({}, "fixtures_dir"),
])
def test_library_program_refuses_bad_job(params: dict[str, Any], message: str, tmp_path: Path,
                                         narrow_dir: Path) -> None:
    config = agent_job(tmp_path, narrow_dir, "dqn_torchrl", "ddqn", "torchrl", **params)
    assert_refused(program("dqn_torchrl", "torchrl"), config, message)
