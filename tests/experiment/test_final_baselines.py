"""The final protocol's random baselines: K distinct random architectures, none of them the
best one, drawn from their own seeded stream (the same seed gives the same list, another seed
another; the global RNGs and the search strategy's stream play no part), and K limited by
what the space holds. Pinned on ``ToySpace(2, 3)`` (9 architectures, so that repeats and the
best are drawn often) for ``random_architectures`` and for ``final_evaluation``'s rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from archsearch.experiment.final import final_evaluation, random_architectures
from archsearch.registry import Spec
from archsearch.spaces.nb201 import NB201Space
from archsearch.strategies.random_search import RandomSearch
from archsearch.testing import ToyEstimator, ToySpace

SPACE = ToySpace(2, 3)
ALL = {SPACE.decode([a, b]).to_str() for a in range(3) for b in range(3)}
BEST = SPACE.decode([1, 1])  # ToyEstimator's default target on this space: the optimum


def strings(archs) -> list[str]:
    return [a.to_str() for a in archs]


@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_random_baselines_are_k_distinct_architectures_none_of_them_the_best(k: int) -> None:
    for seed in range(20):
        picked = strings(random_architectures(SPACE, k, seed, {BEST.to_str()}))
        assert len(picked) == k, (seed, picked)
        assert len(set(picked)) == k, (seed, picked)
        assert BEST.to_str() not in picked
        assert set(picked) <= ALL


def test_k_is_limited_by_the_space_size() -> None:
    for k in (8, 9, 20):
        picked = strings(random_architectures(SPACE, k, 0, {BEST.to_str()}))
        assert sorted(picked) == sorted(ALL - {BEST.to_str()})  # the other 8, each once
    assert sorted(strings(random_architectures(SPACE, 50, 1))) == sorted(ALL)
    assert random_architectures(SPACE, 0, 0, {BEST.to_str()}) == []


def test_the_same_seed_gives_the_same_list_and_another_seed_another() -> None:
    lists = {seed: strings(random_architectures(SPACE, 4, seed, {BEST.to_str()}))
             for seed in range(6)}
    assert all(strings(random_architectures(SPACE, 4, s, {BEST.to_str()})) == lists[s]
               for s in lists)
    assert len({tuple(v) for v in lists.values()}) == len(lists)  # six seeds, six lists


def test_the_baselines_do_not_depend_on_the_global_random_state() -> None:
    lists = set()
    for global_seed in range(10):
        np.random.seed(global_seed)
        torch.manual_seed(global_seed)
        np.random.random(global_seed)
        lists.add(tuple(strings(random_architectures(SPACE, 5, 3, {BEST.to_str()}))))
    assert len(lists) == 1


def test_the_baselines_are_not_the_search_strategys_own_proposals() -> None:
    """A random search with the run's seed must not have proposed the baselines already: they
    come from a stream of their own, not a replay of the strategy's."""
    space = NB201Space()
    for seed in range(3):
        search = RandomSearch(space, seed=seed)
        proposed = {search.ask().to_str() for _ in range(20)}
        baselines = set(strings(random_architectures(space, 20, seed)))
        assert len(baselines) == 20 and not proposed & baselines, seed


def test_final_evaluation_puts_the_best_beside_k_distinct_random_others() -> None:
    seen: list[tuple[str, str]] = []
    rows = final_evaluation(SPACE, Spec("toy"), BEST, 5, seed=2,
                            on_result=lambda role, arch, row: seen.append((role, arch.to_str())))
    estimator = ToyEstimator(SPACE)
    assert rows["best"]["arch"] == BEST.to_str()
    assert rows["best"]["objective"] == estimator.evaluate(BEST).objective == 2.0
    randoms = [r["arch"] for r in rows["random"]]
    assert len(randoms) == len(set(randoms)) == 5 and BEST.to_str() not in randoms
    assert randoms == strings(random_architectures(SPACE, 5, 2, {BEST.to_str()}))
    assert seen == [("best", BEST.to_str())] + [("random", a) for a in randoms]
    scores = [estimator.evaluate(SPACE.parse(a)).objective for a in randoms]
    assert [r["objective"] for r in rows["random"]] == scores
    assert rows["random_mean"]["score"] == pytest.approx(np.mean(scores))
    assert rows["random_std"]["score"] == pytest.approx(np.std(scores))
    assert rows["random_mean"]["score"] < rows["best"]["objective"]


def test_final_evaluation_is_reproducible_by_seed_and_capped_by_the_space() -> None:
    a = final_evaluation(SPACE, Spec("toy"), BEST, 4, seed=7)
    b = final_evaluation(SPACE, Spec("toy"), BEST, 4, seed=7)
    c = final_evaluation(SPACE, Spec("toy"), BEST, 4, seed=8)
    assert a == b
    assert [r["arch"] for r in a["random"]] != [r["arch"] for r in c["random"]]
    every = final_evaluation(SPACE, Spec("toy"), BEST, 30, seed=0)
    assert sorted(r["arch"] for r in every["random"]) == sorted(ALL - {BEST.to_str()})
