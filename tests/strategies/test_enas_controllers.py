from __future__ import annotations

import numpy as np
import pytest
import torch

from archsearch.oneshot.enas import enas_controller
from archsearch.registry import SPACES
from archsearch.types import Result


@pytest.mark.parametrize("name", ["enas-micro", "enas-macro", "enas-rnn"])
def test_samples_are_valid_and_rescored_consistently(name: str) -> None:
    space = SPACES.create(name, **{"enas-micro": {"n_nodes": 3}, "enas-macro": {"n_layers": 5},
                                   "enas-rnn": {"n_nodes": 6}}[name])
    strategy = enas_controller(space, seed=0, aggregate=2, hidden=32)
    archs = strategy.sample_architectures(50)
    assert all(space.decode(space.encode(a)) == a for a in archs)
    out = strategy.controller.log_prob(torch.tensor([space.encode(a) for a in archs]))
    assert torch.isfinite(out.log_prob).all() and (out.log_prob < 0).all()
    assert (out.entropy > 0).all()
    # any architecture of the space (not only the controller's) has a finite log-probability,
    # below 0, and scoring it in a batch or alone gives the same value
    others = [space.sample(np.random.default_rng(i)) for i in range(10)]
    batch = strategy.controller.log_prob(torch.tensor([space.encode(a) for a in others])).log_prob
    assert torch.isfinite(batch).all() and (batch < 0).all()
    alone = torch.cat([strategy.controller.log_prob(torch.tensor([space.encode(a)])).log_prob
                       for a in others[:3]])
    assert torch.allclose(alone, batch[:3], atol=1e-5)


def test_micro_controller_moves_probability_toward_a_rewarded_cell() -> None:
    space = SPACES.create("enas-micro", n_nodes=2)
    strategy = enas_controller(space, seed=0, aggregate=1, hidden=32, lr=0.01)
    target = space.sample(np.random.default_rng(7))
    choices = torch.tensor([space.encode(target)])

    def log_prob() -> float:
        with torch.no_grad():
            return float(strategy.controller.log_prob(choices).log_prob)

    before = log_prob()
    for _ in range(40):
        other = strategy.sample_architectures(1)[0]
        strategy.tell(other, Result(0.0))
        strategy.tell(target, Result(1.0))
    assert log_prob() > before + 2.0  # e^2: over 7x more likely


def test_macro_skip_penalty_pulls_the_density_toward_its_target() -> None:
    space = SPACES.create("enas-macro", n_layers=6)
    strategy = enas_controller(space, seed=0, aggregate=5, hidden=32, lr=0.02,
                               controller={"skip_target": 0.05}, penalty_weight=5.0)

    def density() -> float:
        archs = strategy.sample_architectures(300)
        return float(np.mean([b for a in archs for _, bits in a.layers for b in bits]))

    before = density()
    for _ in range(30):  # equal rewards: only the penalty (and entropy) move the policy
        for arch in strategy.sample_architectures(5):
            strategy.tell(arch, Result(0.5))
    assert density() < before - 0.15
