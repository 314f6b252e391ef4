"""Conformance checks every strategy must pass; run by our tests over the whole registry and
usable as-is by anyone who adds a strategy::

    from archsearch.testing import conformance
    conformance.check_all(lambda space, seed: MyStrategy(space, seed=seed))
"""

from __future__ import annotations

import io
from collections.abc import Callable

import torch

from archsearch.spaces.base import SearchSpace
from archsearch.strategies.base import Strategy
from archsearch.testing.toy import ToyEstimator, ToySpace

Factory = Callable[[SearchSpace, int], Strategy]


def drive(strategy: Strategy, estimator: ToyEstimator, n: int) -> list[str]:
    """n sequential ask/tell rounds; the proposals' strings (stops early on None)."""
    proposals = []
    for _ in range(n):
        arch = strategy.ask()
        if arch is None:
            break
        strategy.tell(arch, estimator.evaluate(arch))
        proposals.append(arch.to_str())
    return proposals


def check_finds_optimum(factory: Factory, space: SearchSpace, budget: int, seed: int = 0) -> None:
    estimator = ToyEstimator(space)
    strategy = factory(space, seed)
    proposals = drive(strategy, estimator, budget)
    best = max(estimator.evaluate(space.parse(p)).objective for p in proposals)
    assert best == estimator.optimum(), (
        f"best {best} after {len(proposals)} proposals; optimum {estimator.optimum()}"
    )


def check_reproducible(factory: Factory, space: SearchSpace, n: int = 40) -> None:
    estimator = ToyEstimator(space)
    a = drive(factory(space, 1), estimator, n)
    b = drive(factory(space, 1), estimator, n)
    c = drive(factory(space, 2), estimator, n)
    assert a == b, "the same seed gave different proposals"
    assert a != c, "different seeds gave the same proposals"


def check_resumes(factory: Factory, space: SearchSpace, n: int = 40, cut: int = 17) -> None:
    """Save mid-run (through bytes, as storage does), restore into a fresh strategy, continue:
    the proposals must equal an uninterrupted run's."""
    estimator = ToyEstimator(space)
    whole = drive(factory(space, 3), estimator, n)
    first = factory(space, 3)
    head = drive(first, estimator, cut)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    second = factory(space, 99)  # another seed: everything must come from the state
    second.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    tail = drive(second, estimator, n - cut)
    assert head + tail == whole, "a state_dict round trip changed the proposals"


def check_all(factory: Factory, space: SearchSpace | None = None, budget: int = 300) -> None:
    space = space or ToySpace(5, 4)
    check_finds_optimum(factory, space, budget)
    check_reproducible(factory, space)
    check_resumes(factory, space)
