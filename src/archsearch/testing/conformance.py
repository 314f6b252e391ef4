"""Conformance checks every strategy must pass; run by our tests over the whole registry and
usable as-is by anyone who adds a strategy::

    from archsearch.testing import conformance
    conformance.check_all(lambda space, seed: MyStrategy(space, seed=seed))
"""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from archsearch.registry import SPACES, Spec
from archsearch.spaces.base import SearchSpace
from archsearch.strategies.base import WAIT, Proposal, Strategy, as_proposal
from archsearch.testing.toy import ToyEstimator, ToySpace
from archsearch.types import Result

Factory = Callable[[SearchSpace, int], Strategy]


def drive(strategy: Strategy, estimator: ToyEstimator, n: int) -> list[str]:
    """n sequential ask/tell rounds; the proposals' keys (architecture, plus ``@budget`` when
    there is one). Stops early on None; with every result told, WAIT would be a bug."""
    proposals = []
    for _ in range(n):
        item = strategy.ask()
        if item is None:
            break
        assert item is not WAIT, "WAIT with no result pending"
        proposal = as_proposal(item)  # type: ignore[arg-type]
        strategy.tell(item, estimator.evaluate(proposal.arch, proposal.budget))  # type: ignore[arg-type]
        proposals.append(proposal.key())
    return proposals


def _arch(key: str) -> str:
    return key.split("@")[0]


def check_finds_optimum(factory: Factory, space: SearchSpace, budget: int, seed: int = 0) -> None:
    estimator = ToyEstimator(space)
    strategy = factory(space, seed)
    proposals = drive(strategy, estimator, budget)
    best = max(estimator.evaluate(space.parse(_arch(p))).objective for p in proposals)
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
    second = factory(space, 99)  # another seed: everything must come from the state
    second.load_state_dict(round_trip(first.state_dict()))
    tail = drive(second, estimator, n - cut)
    assert head + tail == whole, "a state_dict round trip changed the proposals"


def round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)


def check_pending(factory: Factory, space: SearchSpace, n: int = 12) -> None:
    """``pending`` lists exactly the proposals not yet told, in order, across a state round
    trip; telling them out of order empties it."""
    strategy = factory(space, 5)
    estimator = ToyEstimator(space)
    asked: list[Proposal] = []
    for _ in range(n):
        item = strategy.ask()
        if item is None or item is WAIT:
            break
        asked.append(as_proposal(item))  # type: ignore[arg-type]
    assert [p.key() for p in strategy.pending] == [p.key() for p in asked]
    restored = factory(space, 6)
    restored.load_state_dict(round_trip(strategy.state_dict()))
    assert [p.key() for p in restored.pending] == [p.key() for p in asked]
    for proposal in reversed(asked):
        restored.tell(proposal, estimator.evaluate(proposal.arch, proposal.budget))
    assert restored.pending == [] and restored.n_told == len(asked)


class ThreadExecutor:
    """``capacity`` trials at once in threads of this process (results arrive out of order)."""

    def __init__(self, capacity: int) -> None:
        from archsearch.experiment.trial import run_trial

        self.capacity, self._run = capacity, run_trial
        self.pool = ThreadPoolExecutor(capacity)

    def submit(self, task) -> Future[Result]:  # type: ignore[no-untyped-def]
        return self.pool.submit(self._run, task)

    def shutdown(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


def check_budgets_and_waiting(factory: Factory, n: int = 60,
                              space_spec: Spec | None = None) -> None:
    """Through a real experiment with 3 trials at once: each proposal's budget reaches the
    estimator, the stored row and ``tell`` unchanged; WAIT never ends the run early (it runs
    to ``n`` trials unless the strategy itself says it is finished). The space: ``space_spec``
    (by default a 5 x 4 ToySpace), scored by the toy estimator."""
    from archsearch.experiment.experiment import Experiment
    from archsearch.experiment.storage import MemoryStorage

    space_spec = space_spec or Spec("toy", {"n_decisions": 5, "n_options": 4})
    space = SPACES.create(space_spec.name, **space_spec.config)
    strategy = factory(space, 7)
    asked: list[Proposal] = []
    told: list[tuple[Proposal, Result]] = []
    ask, tell = strategy.ask, strategy.tell

    def recording_ask():  # type: ignore[no-untyped-def]
        item = ask()
        if item is not None and item is not WAIT:
            asked.append(as_proposal(item))
        return item

    def recording_tell(item, result):  # type: ignore[no-untyped-def]
        told.append((as_proposal(item), result))
        tell(item, result)

    strategy.ask, strategy.tell = recording_ask, recording_tell  # type: ignore[method-assign]
    storage = MemoryStorage()
    records = Experiment(space_spec, Spec("toy"), strategy, storage,
                         ThreadExecutor(3)).run(n_trials=n)
    finished = len(records) < n
    if finished:
        assert strategy.ask() is None, f"the run ended after {len(records)} trials of {n}"
    by_number = {r.number: r for r in records}
    assert sorted(by_number) == list(range(len(asked)))
    for i, proposal in enumerate(asked):
        row = by_number[i]
        assert (row.arch, row.budget) == (proposal.arch.to_str(), proposal.budget)
        if proposal.budget is not None and proposal.budget.epochs is not None:
            assert row.metrics.get("epochs") == proposal.budget.epochs  # the estimator saw it
            assert row.cost_seconds == proposal.budget.epochs
    assert sorted(p.key() for p, _ in told) == sorted(p.key() for p in asked)
    assert strategy.pending == []


def check_all(factory: Factory, space: SearchSpace | None = None, budget: int = 300) -> None:
    space = space or ToySpace(5, 4)
    check_finds_optimum(factory, space, budget)
    check_reproducible(factory, space)
    check_resumes(factory, space)
    check_pending(factory, space)
    check_budgets_and_waiting(factory)
