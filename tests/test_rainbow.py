"""Rainbow DQN (`rainbow_dqn`, the `noisy` loop of the `train_agent` protocol): PyTorch and its twins
on tch and candle.

The parts checked on their own: the n-step window stores what the definition says (returns, discounts,
the flush at an episode's end); the dense projection equals Bellemare et al.'s split between the two
neighbouring atoms (the l/u projection with Kaixhin's fix for a target on an atom); a noisy layer is
mu + sigma x noise. Then trained end to end from the same weights, strata draws and noise, the twins
take PyTorch's actions and losses until one float32 rounding moves a priority or flips an action;
n_step 1 against 3 (and noise scale 0 against 0.5) from the same weights and streams part early (the
negative controls). Bad settings are refused by `mlbench run` and by each program.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import ROOT, rust_binary
from mlbench import agents
from mlbench.nstep import NStep
from rl_checks import (
    agent_job,
    assert_episodes_replay,
    assert_ran_or_unsupported,
    assert_refused,
    measured,
    program,
    quiet_run,
    shared_prefix,
    side,
)
from test_bad_input import assert_bad_matrix

pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")
torch = pytest.importorskip("torch", reason="the dl extra (torch) is not installed")
sys.path.insert(0, str(ROOT / "python" / "tasks" / "rl"))
import rainbow  # noqa: E402

STEPS = 1000
PARAMS = {"total_timesteps": STEPS, "buffer_size": 1000, "batch_size": 32, "learning_starts": 200, "train_freq": 1,
          "target_update_freq": 100, "learning_rate": 1e-3}
PORTED = ["cartpole_random", "chain_random"]
RUST = ["tch", "candle"]
SEEDS = 2
# Steps every twin must share with PyTorch, and the updates whose losses must agree (measured here:
# both twins took all 1,000 of PyTorch's actions on both sets and both seeds, the first 75 losses
# within 4.3e-7 relative; on a 2,000-step CartPole run candle parted at step 1,557, tch never).
# Noise scale 0 against 0.5 parted at step 7 on CartPole and 201 on the chain (its first greedy step).
SHARED_PREFIX, LOSS_UPDATES, LOSS_RTOL = 700, 75, 1e-5


def test_the_window_stores_n_step_returns_and_flushes_at_an_episode_end() -> None:
    window = NStep(3, 0.5)
    obs = [np.full(1, float(i), dtype=np.float32) for i in range(5)]
    assert window.push(obs[0], 0, 1.0, obs[1], False, False) == []
    assert window.push(obs[1], 1, 2.0, obs[2], False, False) == []
    (third,) = window.push(obs[2], 0, 4.0, obs[3], False, False)
    assert (third.obs[0], third.action, third.reward, third.next_obs[0], third.discount) == (0.0, 0, 3.0, 3.0, 0.125)
    end = window.push(obs[3], 1, 8.0, obs[4], True, True)  # terminated: the window flushes, oldest first
    assert [t.reward for t in end] == [6.0, 8.0, 8.0] and [t.discount for t in end] == [0.125, 0.25, 0.5]
    assert all(t.terminated and t.next_obs[0] == 4.0 for t in end) and [t.obs[0] for t in end] == [1.0, 2.0, 3.0]
    one = NStep(1, 0.9)
    (only,) = one.push(obs[0], 1, 2.5, obs[1], False, False)
    assert (only.reward, only.discount) == (2.5, 0.9)  # one-step DQN's transition


def split_projection(next_p: torch.Tensor, tz: torch.Tensor, params: rainbow.RainbowParams) -> torch.Tensor:
    """Bellemare et al. 2017's projection as Kaixhin's Rainbow writes it: each atom's mass to its
    lower and upper neighbour, in proportion to the distance (an independent reference)."""
    delta = (params.v_max - params.v_min) / (params.atoms - 1)
    b = (tz.clamp(params.v_min, params.v_max) - params.v_min) / delta
    lower, upper = b.floor().long(), b.ceil().long()
    lower[(upper > 0) & (lower == upper)] -= 1
    upper[(lower < params.atoms - 1) & (lower == upper)] += 1
    m = torch.zeros_like(next_p, dtype=torch.float64)
    m.scatter_add_(1, lower, (next_p * (upper.double() - b)).double())
    m.scatter_add_(1, upper, (next_p * (b - lower.double())).double())
    return m


def test_the_dense_projection_is_the_split_between_neighbouring_atoms() -> None:
    params = rainbow.RainbowParams(hidden=(8,), atoms=11, v_min=-5.0, v_max=5.0)
    learner = rainbow.RainbowLearner(3, 2, params)
    generator = torch.Generator().manual_seed(0)
    rows = 64
    batch = rainbow.Batch(obs=torch.randn(rows, 3, generator=generator), actions=torch.randint(0, 2, (rows,)),
                          rewards=torch.randn(rows, generator=generator) * 4,
                          next_obs=torch.randn(rows, 3, generator=generator),
                          dones=(torch.rand(rows, generator=generator) < 0.2).float(),
                          discounts=torch.full((rows,), 0.9 ** 3))
    batch.rewards[:4] = torch.tensor([0.0, 1.0, 100.0, -100.0])  # on an atom, on an atom, clipped above and below
    batch.dones[:4] = 1.0
    m = learner.projected(batch)
    with torch.no_grad():
        chosen = learner.q_values(learner.online, batch.next_obs).argmax(dim=1)
        next_p = torch.softmax(learner.target(batch.next_obs), dim=2)[torch.arange(rows), chosen]
        scale = batch.discounts * (1.0 - batch.dones)
        tz = batch.rewards.unsqueeze(1) + scale.unsqueeze(1) * learner.support.unsqueeze(0)
    np.testing.assert_allclose(m.numpy(), split_projection(next_p, tz, params).numpy(), atol=1e-6)
    np.testing.assert_allclose(m.sum(dim=1).numpy(), 1.0, atol=1e-5)  # mass is kept
    assert m[0, 5] == pytest.approx(1.0) and m[2, -1] == pytest.approx(1.0) and m[3, 0] == pytest.approx(1.0)


def test_a_noisy_layer_is_mu_plus_sigma_times_the_noise() -> None:
    layer = rainbow.NoisyLinear(3, 2, std=0.5)
    x = torch.randn(4, 3)
    with torch.no_grad():
        np.testing.assert_allclose(layer(x).numpy(), (x @ layer.weight_mu.T + layer.bias_mu).numpy(), rtol=1e-6)
        eps_in, eps_out = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.25, -1.0])
        layer.eps_in.copy_(eps_in)
        layer.eps_out.copy_(eps_out)
        weight = layer.weight_mu + layer.weight_sigma * eps_out[:, None] * eps_in[None, :]
        expected = x @ weight.T + layer.bias_mu + layer.bias_sigma * eps_out
        np.testing.assert_allclose(layer(x).numpy(), expected.numpy(), rtol=1e-6)
    assert layer.weight_sigma[0, 0].item() == pytest.approx(0.5 / 3 ** 0.5)
    assert layer.bias_sigma[0].item() == pytest.approx(0.5 / 2 ** 0.5)
    assert set(rainbow.RainbowNetwork(3, 2, rainbow.RainbowParams(hidden=(8,))).state_dict()) == {
        "trunk.0.weight", "trunk.0.bias", *(f"{head}.{name}" for head in ("value", "advantage")
                                            for name in ("weight_mu", "weight_sigma", "bias_mu", "bias_sigma"))}


@pytest.fixture(scope="module")
def train_run(tmp_path_factory: pytest.TempPathFactory, rl_sets_dir: Path) -> Path:
    rust_binary("dqn")
    return quiet_run(tmp_path_factory.mktemp("rainbow"), rl_sets_dir, {
        "task": "dqn", "repetitions": SEEDS, "processes": 1, "warmup": 1, "datasets": PORTED,
        "algorithms": {"rainbow_dqn": PARAMS | {"n_step": [3, 1], "noisy_std": [0.5, 0.0]}}})


def test_every_job_ran(train_run: Path) -> None:
    for r in assert_ran_or_unsupported(train_run, STEPS, len(agents.update_steps(PARAMS, STEPS))):
        assert r["solver"]["name"].startswith("Rainbow DQN")


@pytest.mark.parametrize("framework", RUST)
def test_twins_learn_as_pytorch_does(train_run: Path, framework: str) -> None:
    for dataset in PORTED:
        for seed in range(42 + 1, 42 + 1 + SEEDS):
            py = side(train_run, dataset, "pytorch", seed, n_step=3, noisy_std=0.5)
            rs = side(train_run, dataset, framework, seed, n_step=3, noisy_std=0.5)
            where = f"{framework} {dataset} seed {seed}"
            prefix = shared_prefix(py["actions"], rs["actions"])
            assert prefix >= SHARED_PREFIX, f"{where}: actions differ from step {prefix}"
            np.testing.assert_allclose(rs["losses"][:LOSS_UPDATES], py["losses"][:LOSS_UPDATES], rtol=LOSS_RTOL,
                                       err_msg=where)


@pytest.mark.parametrize("framework", ["pytorch", *RUST])
def test_n_step_and_noise_change_what_is_learnt(train_run: Path, framework: str) -> None:
    rainbow_run = side(train_run, "cartpole_random", framework, 43, n_step=3, noisy_std=0.5)
    one_step = side(train_run, "cartpole_random", framework, 43, n_step=1, noisy_std=0.5)
    quiet = side(train_run, "cartpole_random", framework, 43, n_step=3, noisy_std=0.0)
    # the same weights and streams: n_step changes the stored rows from the first update on
    assert not np.allclose(rainbow_run["losses"][:5], one_step["losses"][:5], rtol=LOSS_RTOL)
    # without noise the first greedy actions are the mean network's
    assert shared_prefix(rainbow_run["actions"], quiet["actions"]) < SHARED_PREFIX, framework


def test_recorded_episodes_are_what_the_actions_give(train_run: Path, rl_sets_dir: Path) -> None:
    assert_episodes_replay(train_run, rl_sets_dir, measured(train_run))


GOOD = {"task": "dqn", "repetitions": 1, "datasets": ["cartpole_random"],
        "algorithms": {"rainbow_dqn": {"total_timesteps": 100, "buffer_size": 50, "learning_starts": 10}}}


@pytest.mark.parametrize(("change", "message"), [
    ({"rainbow_dqn": {"v_min": 10.0, "v_max": 10.0}}, "v_min: 10.0 is not below v_max 10.0"),
    ({"rainbow_dqn": {"n_step": 5, "learning_starts": 2}}, "learning_starts: 2 is below n_step - 1"),
    ({"rainbow_dqn": {"atoms": 1}}, "atoms"),
    ({"dqn": {"n_step": 3}}, "n_step"),  # a plain DQN has no n-step setting
])
def test_bad_rainbow_matrix(change: dict, message: str, tmp_path: Path, narrow_dir: Path) -> None:
    name, settings = next(iter(change.items()))
    matrix = GOOD | {"algorithms": {name: GOOD["algorithms"]["rainbow_dqn"] | settings}}
    assert_bad_matrix(matrix, message, tmp_path, narrow_dir)


PROGRAM_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "empty support": ({"v_min": 5.0, "v_max": -5.0}, "v_min: 5.0 is not below v_max -5.0"),
    "first update before a stored transition": ({"n_step": 4, "learning_starts": 1}, "below n_step - 1"),
    "no fixtures": ({}, "fixtures_dir"),
}


@pytest.mark.parametrize("framework", ["pytorch", *RUST])
@pytest.mark.parametrize("case", list(PROGRAM_CASES))
def test_rainbow_program_refuses_bad_job(framework: str, case: str, tmp_path: Path, narrow_dir: Path) -> None:
    params, message = PROGRAM_CASES[case]
    config = agent_job(tmp_path, narrow_dir, "dqn", "rainbow_dqn", framework, **params)
    assert_refused(program("dqn", framework), config, message)
