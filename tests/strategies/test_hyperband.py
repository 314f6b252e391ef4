"""Hyperband: the published bracket table, rung barriers (WAIT), promotions of the best at a
larger budget, and resume in the middle of a rung."""

from __future__ import annotations

import pytest

from archsearch.experiment.experiment import Experiment
from archsearch.experiment.storage import SQLiteStorage
from archsearch.registry import Spec
from archsearch.strategies.base import WAIT, Proposal
from archsearch.strategies.hyperband import Hyperband, bracket, bracket_count
from archsearch.testing import ToySpace
from archsearch.testing.conformance import ThreadExecutor, round_trip
from archsearch.testing.toy import ToyEstimator

# Li et al. (JMLR 2018), Table 1: eta = 3, R = 81: per bracket s, (n_i, r_i) per rung
PUBLISHED = {
    4: [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
    3: [(34, 3), (11, 9), (3, 27), (1, 81)],
    2: [(15, 9), (5, 27), (1, 81)],
    1: [(8, 27), (2, 81)],
    0: [(5, 81)],
}


def test_brackets_equal_the_published_table() -> None:
    assert bracket_count(1, 81, 3) == 5
    for s, rungs in PUBLISHED.items():
        assert [(n, round(r, 9)) for n, r in bracket(s, 4, 81, 3)] == rungs


def test_one_iteration_proposes_the_table_in_order_and_promotes_the_best() -> None:
    space = ToySpace(5, 4)
    estimator = ToyEstimator(space)
    strategy = Hyperband(space, seed=0, iterations=1)
    per_rung: list[list[Proposal]] = []
    while True:
        rung: list[Proposal] = []
        while (item := strategy.ask()) is not None and item is not WAIT:
            rung.append(item)  # type: ignore[arg-type]
        if rung:
            per_rung.append(rung)
        if item is None:
            break
        results = {p.arch.to_str(): estimator.evaluate(p.arch, p.budget) for p in rung}
        for p in reversed(rung):  # any order
            strategy.tell(p, results[p.arch.to_str()])
        if len(per_rung) >= 2 and per_rung[-2][0].budget.epochs < rung[0].budget.epochs:
            previous = per_rung[-2]
            scores = {p.arch.to_str(): estimator.evaluate(p.arch, p.budget).objective
                      for p in previous}
            best = sorted(scores, key=lambda a: -scores[a])[: len(rung)]
            assert sorted(p.arch.to_str() for p in rung) == sorted(best)
    expected = [(n, r) for s in (4, 3, 2, 1, 0) for n, r in PUBLISHED[s]]
    assert [(len(r), r[0].budget.epochs) for r in per_rung] == expected
    # each bracket starts from architectures no earlier bracket had
    firsts = [per_rung[i] for i in (0, 5, 9, 12, 14)]
    archs = [p.arch.to_str() for rung in firsts for p in rung]
    assert len(archs) == len(set(archs)) == 81 + 34 + 15 + 8 + 5


def test_a_rung_waits_for_its_results_then_promotes() -> None:
    space = ToySpace(5, 4)
    strategy = Hyperband(space, seed=1, min_budget=1, max_budget=9)  # brackets 9/3/1, 5/3, 3
    first = [strategy.ask() for _ in range(9)]
    assert all(isinstance(p, Proposal) and p.budget.epochs == 1 for p in first)
    assert strategy.ask() is WAIT and strategy.ask() is WAIT  # the rung barrier
    for p in first[:-1]:
        strategy.tell(p, ToyEstimator(space).evaluate(p.arch, p.budget))
    assert strategy.ask() is WAIT
    strategy.tell(first[-1], ToyEstimator(space).evaluate(first[-1].arch, first[-1].budget))
    promoted = strategy.ask()
    assert isinstance(promoted, Proposal) and promoted.budget.epochs == 3
    assert promoted.arch.to_str() in {p.arch.to_str() for p in first}


def test_resume_in_the_middle_of_a_rung_continues_identically() -> None:
    space = ToySpace(5, 4)
    estimator = ToyEstimator(space)

    def run(strategy: Hyperband, n: int, cut: int | None = None) -> list[str]:
        keys, pending = [], []
        for i in range(n):
            if cut is not None and i == cut:
                restored = Hyperband(space, seed=99)
                restored.load_state_dict(round_trip(strategy.state_dict()))
                strategy = restored
            item = strategy.ask()
            if item is WAIT:  # tell the two oldest pending results
                for p in pending[:2]:
                    strategy.tell(p, estimator.evaluate(p.arch, p.budget))
                pending = pending[2:]
                continue
            keys.append(item.key())
            pending.append(item)
        return keys

    whole = run(Hyperband(space, seed=4), 200)
    for cut in (5, 87, 120, 150):  # within a rung's proposals, at barriers, results pending
        assert run(Hyperband(space, seed=4), 200, cut=cut) == whole, cut


def test_promotions_and_rung_barriers_through_an_experiment(tmp_path) -> None:
    """Three trials at once, stored and resumed: every trial of one iteration is run once,
    at its rung's budget."""
    space_spec = Spec("toy", {"n_decisions": 5, "n_options": 4})
    storage = SQLiteStorage(tmp_path / "trials.db")
    strategy = Hyperband(ToySpace(5, 4), seed=2, max_budget=27, iterations=1)
    records = Experiment(space_spec, Spec("toy"), strategy, storage,
                         ThreadExecutor(3)).run()
    per_budget: dict[float, int] = {}
    for r in records:
        per_budget[r.budget.epochs] = per_budget.get(r.budget.epochs, 0) + 1
    plan = [rung for s in range(4) for rung in bracket(s, 3, 27, 3)]
    expected: dict[float, int] = {}
    for n, r in plan:
        expected[r] = expected.get(r, 0) + n
    assert per_budget == expected
    assert len({(r.arch, r.budget) for r in records}) == len(records)
    assert sum(r.cost_seconds for r in records) == sum(n * r for n, r in plan)


@pytest.mark.parametrize("bad", [{"min_budget": 0}, {"min_budget": 9, "max_budget": 3},
                                 {"eta": 1}, {"iterations": 0}])
def test_bad_options_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        Hyperband(ToySpace(2, 2), **bad)
