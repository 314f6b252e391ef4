from __future__ import annotations

import pytest
import torch

from archsearch.strategies.controller import LSTMController
from archsearch.strategies.reinforce import Reinforce
from archsearch.testing import ToySpace
from archsearch.types import Decision, Result


def test_update_moves_probability_toward_a_rewarded_architecture() -> None:
    space = ToySpace(3, 4)
    strategy = Reinforce(space, seed=0, batch_size=1, dedup=False)
    target = space.decode([2, 0, 3])
    others = [space.decode([1, 1, 1]), space.decode([0, 3, 2])]

    def prob() -> float:
        with torch.no_grad():
            out = strategy.controller.log_prob(torch.tensor([list(space.encode(target))]))
        return float(out.log_prob.exp())

    before = prob()
    for _ in range(30):
        for arch in others:
            strategy.tell(arch, Result(0.0))
        strategy.tell(target, Result(1.0))
    assert prob() > 5 * before


def test_controller_batched_sampling_matches_log_prob() -> None:
    decisions = [Decision("a", 3), Decision("b", 5), Decision("c", 2)]
    gen = torch.Generator().manual_seed(0)
    controller = LSTMController(decisions, hidden=16, tanh_constant=1.5, generator=gen)
    choices = controller.sample(64, gen)
    assert choices.shape == (64, 3)
    assert (choices[:, 1] < 5).all() and (choices[:, 2] < 2).all()
    log_prob, entropy, _ = controller.log_prob(choices)
    assert log_prob.shape == (64,) and (log_prob <= 0).all() and (entropy > 0).all()
    # all probabilities over the whole space sum to one
    grid = torch.cartesian_prod(torch.arange(3), torch.arange(5), torch.arange(2))
    assert float(controller.log_prob(grid)[0].detach().exp().sum()) == pytest.approx(1.0)
