"""Regularized evolution ages its population: the oldest member dies, not the worst.

What is pinned, and why: aging is what distinguishes regularized evolution (Real et al., 2019)
from plain tournament evolution; evicting the worst instead keeps a lucky early architecture
alive for ever and still searches, only worse, so no end-to-end test would notice. Here, once
the population is full, each new result evicts the member that joined first (in the order
results were *told*, which with parallel trials is not the order they were asked), even when
that member is the best; failed results neither join the population nor age it; and the
parents of later proposals come from the living population only.
"""

from __future__ import annotations

from archsearch.strategies.regularized_evolution import RegularizedEvolution
from archsearch.testing import ToySpace
from archsearch.types import Result

SPACE = ToySpace(6, 4)


def arch(value: int):
    return SPACE.decode([value] * 6)


def members(strategy: RegularizedEvolution) -> list[tuple[str, float]]:
    return [(a, o) for a, o in strategy.population]


def test_each_new_result_evicts_the_member_that_joined_first_even_the_best() -> None:
    strategy = RegularizedEvolution(SPACE, seed=0, population_size=3, sample_size=2)
    told = [(arch(0), 9.0), (arch(1), 1.0), (arch(2), 5.0)]  # the best joins first
    for a, objective in told:
        strategy.tell(a, Result(objective))
    assert members(strategy) == [(a.to_str(), o) for a, o in told]
    for step, (a, objective) in enumerate([(arch(3), 0.5), (arch(0), 0.1), (arch(1), 7.0),
                                           (arch(2), 0.2)]):
        strategy.tell(a, Result(objective))
        told.append((a, objective))
        expected = told[-3:]  # the three most recent results, oldest first
        assert members(strategy) == [(x.to_str(), o) for x, o in expected], step
    # the best ever (9.0) and the second best (7.0, told after it) are judged by age alone
    assert max(o for _, o in members(strategy)) == 7.0


def test_failed_results_neither_join_nor_age_the_population() -> None:
    strategy = RegularizedEvolution(SPACE, seed=0, population_size=3, sample_size=2)
    strategy.tell(arch(0), Result(1.0))
    strategy.tell(arch(1), Result.failed("out of memory"))  # before the population is full
    strategy.tell(arch(2), Result(2.0))
    strategy.tell(arch(3), Result(3.0))
    full = [(arch(0).to_str(), 1.0), (arch(2).to_str(), 2.0), (arch(3).to_str(), 3.0)]
    assert members(strategy) == full
    for _ in range(3):  # once full: the oldest (arch 0) survives any number of failures
        strategy.tell(arch(1), Result.failed("diverged"))
        strategy.tell(arch(1), Result(float("nan")))  # a non-finite objective fails too
        assert members(strategy) == full
    assert strategy.n_told == 10
    strategy.tell(arch(1), Result(0.5))
    assert members(strategy) == full[1:] + [(arch(1).to_str(), 0.5)]


def test_age_is_the_order_results_arrive_not_the_order_they_were_asked() -> None:
    strategy = RegularizedEvolution(SPACE, seed=3, population_size=3, sample_size=3)
    asked = [strategy.ask() for _ in range(5)]
    arrival = [asked[i] for i in (3, 0, 4, 1, 2)]
    for i, a in enumerate(arrival):
        strategy.tell(a, Result(float(10 - i)))  # earlier arrivals score higher
    assert [a for a, _ in strategy.population] == [a.to_str() for a in arrival[2:]]


def differing(a, b) -> int:
    return sum(x != y for x, y in zip(SPACE.encode(a), SPACE.encode(b)))


def test_parents_come_from_the_living_population_after_the_best_dies() -> None:
    # sample_size == population_size: every tournament is the whole population, so each child
    # is one mutation away from the best living member
    strategy = RegularizedEvolution(SPACE, seed=1, population_size=3, sample_size=3,
                                    warm_start=[arch(v).to_str() for v in range(3)])
    initial = [strategy.ask() for _ in range(3)]
    assert initial == [arch(0), arch(1), arch(2)]  # pairwise different in every decision
    for a, objective in zip(initial, [0.9, 0.1, 0.2]):
        strategy.tell(a, Result(objective))
    child = strategy.ask()
    assert differing(child, arch(0)) == 1  # the best, arch 0, is the parent
    strategy.tell(child, Result(0.0))  # the worst result so far: arch 0, the oldest, dies
    assert arch(0).to_str() not in [a for a, _ in strategy.population]
    grandchild = strategy.ask()
    assert differing(grandchild, arch(2)) == 1  # now the best living member is arch 2
    assert differing(grandchild, arch(0)) >= 5
    strategy.tell(grandchild, Result(0.05))  # arch 1 dies, though child (0.0) is worse
    assert [a for a, _ in strategy.population] == [arch(2).to_str(), child.to_str(),
                                                   grandchild.to_str()]
