"""NAS-RL: anchor-point controller, reward shaping, asynchronous updates, curriculum, PPO."""

from __future__ import annotations

import pytest
import torch

from archsearch.registry import SPACES, STRATEGIES
from archsearch.testing import conformance
from archsearch.types import Result

SPACE = SPACES.create("nasrl-cnn", depth=4, strides=True)


def p_tall_first_layer(strategy, n: int = 400) -> float:
    """Share of sampled architectures whose layer 0 has a 7-high filter."""
    choices = strategy.controller.sample(n, torch.Generator().manual_seed(1))
    return float((choices[:, 0] == 3).float().mean())


@pytest.mark.parametrize("ppo", [False, True])
def test_updates_move_probability_toward_the_rewarded_choice(ppo: bool) -> None:
    strategy = STRATEGIES.create("nas-rl", space=SPACE, seed=0, ppo=ppo, lr=0.02)
    before = p_tall_first_layer(strategy)
    for _ in range(160):
        arch = strategy.ask()
        reward = 0.9 if arch.layers[0].height == 7 else 0.5
        strategy.tell(arch, Result(reward, {}))
    after = p_tall_first_layer(strategy)
    assert before < 0.4 and after > before + 0.25, (before, after)


def test_reward_is_the_metric_raised_to_the_power() -> None:
    strategy = STRATEGIES.create("nas-rl", space=SPACE, seed=0, reward_power=2)
    assert strategy.reward(Result(0.5, {"val_acc_max_last": 0.9})) == pytest.approx(0.81)
    assert strategy.reward(Result(0.5, {})) == pytest.approx(0.25)  # falls back to objective


def test_results_arriving_out_of_order_update_once_per_batch() -> None:
    strategy = STRATEGIES.create("nas-rl", space=SPACE, seed=0, batch_size=4)
    archs = [strategy.ask() for _ in range(8)]
    before = [p.detach().clone() for p in strategy.controller.parameters()]
    for i, arch in enumerate(reversed(archs[:3])):
        strategy.tell(arch, Result(0.5 + 0.1 * i, {}))
    assert all(torch.equal(a, b) for a, b in zip(before, strategy.controller.parameters()))
    strategy.tell(archs[7], Result(0.1, {}))  # the fourth result, from a later proposal
    assert not all(torch.equal(a, b) for a, b in zip(before, strategy.controller.parameters()))
    assert strategy.batch == []


def test_curriculum_grows_the_depth_of_proposals() -> None:
    strategy = STRATEGIES.create("nas-rl", space=SPACE, seed=0, curriculum=[1, 1, 5],
                                 batch_size=3)
    depths = []
    for i in range(22):
        arch = strategy.ask()
        depths.append(arch.depth)
        strategy.tell(arch, Result(0.5 + 0.01 * i, {}))
    assert depths == [1] * 5 + [2] * 5 + [3] * 5 + [4] * 7  # capped at the space's depth


@pytest.mark.parametrize("options", [{"curriculum": [2, 1, 7]}, {"ppo": True}])
def test_resumes_identically_with_curriculum_and_ppo(options: dict) -> None:
    conformance.check_resumes(
        lambda space, seed: STRATEGIES.create("nas-rl", space=space, seed=seed, **options),
        SPACE, n=30, cut=13)


def test_generic_controller_on_the_nasnet_space() -> None:
    space = SPACES.create("nasnet")
    strategy = STRATEGIES.create("nas-rl", space=space, seed=0, batch_size=2)
    for _ in range(4):
        arch = strategy.ask()
        strategy.tell(arch, Result(0.5, {}))
    assert len(strategy.controller.cells) == 2 and strategy.controller.hidden == 35
