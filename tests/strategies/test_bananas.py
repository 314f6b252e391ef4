"""BANANAS: random start, rounds that wait, mutations of the best, Thompson draws, and a model
that matters (the conformance checks run it too)."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest

from archsearch.predictors.mlp_ensemble import MLPEnsemble
from archsearch.registry import SPACES, STRATEGIES
from archsearch.strategies.bananas import independent_thompson, mutate_each, mutation_candidates
from archsearch.strategies.base import WAIT
from archsearch.testing import ToySpace
from archsearch.testing.conformance import drive
from archsearch.testing.toy import ToyEstimator
from tests.strategies.guided_search import best_found

pytestmark = pytest.mark.usefixtures("one_thread")
SPACE = ToySpace(5, 4)


def test_the_first_proposals_are_random_searchs() -> None:
    bananas = drive(STRATEGIES.create("bananas", space=SPACE, seed=4), ToyEstimator(SPACE), 10)
    assert bananas == drive(STRATEGIES.create("random", space=SPACE, seed=4),
                            ToyEstimator(SPACE), 10)


def test_a_round_waits_for_every_result_and_fits_on_all_of_them() -> None:
    strategy = STRATEGIES.create("bananas", space=SPACE, seed=0, initial=4, batch=3, epochs=2)
    estimator, fitted = ToyEstimator(SPACE), []
    fit = MLPEnsemble.fit

    def recording_fit(self, archs, values):  # type: ignore[no-untyped-def]
        fitted.append(len(archs))
        fit(self, archs, values)

    with mock.patch.object(MLPEnsemble, "fit", recording_fit):
        asked = [strategy.ask() for _ in range(4)]
        assert strategy.ask() is WAIT
        for arch in asked[:3]:
            strategy.tell(arch, estimator.evaluate(arch))
        assert strategy.ask() is WAIT and fitted == []  # one result still out
        strategy.tell(asked[3], estimator.evaluate(asked[3]))
        round_one = [strategy.ask() for _ in range(3)]
        assert fitted == [4] and WAIT not in round_one and strategy.ask() is WAIT
        for arch in round_one:
            strategy.tell(arch, estimator.evaluate(arch))
        assert strategy.ask() not in (None, WAIT) and fitted == [4, 7]


def test_candidates_are_mutations_of_the_best_then_the_next_best() -> None:
    """Parents far apart (all 0s, all 1s, ...): each child is nearest to its own parent."""
    space = ToySpace(12, 4)
    parents = [space.decode([k] * 12) for k in range(4)]
    found = mutation_candidates(space, parents, {p.to_str() for p in parents},
                                np.random.default_rng(0), n=100)
    origin = [int(np.argmin([sum(a != b for a, b in zip(c.choices, p.choices))
                             for p in parents])) for c in found]
    assert origin == sorted(origin) and origin[0] == 0  # the best first, then in rank order
    assert 50 < origin.count(0) < 100 and set(origin) == {0, 1}  # 100 tries, repeats dropped
    assert len({c.to_str() for c in found}) == len(found) >= 100


def test_a_mutation_changes_each_edge_with_probability_a_quarter_on_nb201() -> None:
    space = SPACES.create("nb201")
    rng = np.random.default_rng(0)
    parent = space.sample(rng)
    changes = np.array([[a != b for a, b in zip(mutate_each(space, parent, rng).ops, parent.ops)]
                        for _ in range(4000)])
    np.testing.assert_allclose(changes.mean(axis=0), 0.25, atol=0.03)  # naszilla: 1 / (6 - 2)


def test_thompson_draws_one_normal_per_candidate() -> None:
    """Candidate 0 has the better mean, 1 the spread: 1 wins when N(0, 1) beats 1."""
    rng = np.random.default_rng(0)
    picks = [int(independent_thompson(np.array([1.0, 0.0]), np.array([0.0, 1.0]), 1, rng)[0])
             for _ in range(4000)]
    assert abs(np.mean(picks) - 0.1587) < 0.02  # P(N(0, 1) > 1)
    twins = [int(independent_thompson(np.zeros(2), np.ones(2), 1, rng)[0]) for _ in range(4000)]
    assert abs(np.mean(twins) - 0.5) < 0.03  # independent draws: either twin, as often
    order = independent_thompson(np.arange(5.0), np.zeros(5), 3, rng)
    assert order.tolist() == [4, 3, 2]  # no spread: the best means, best first


def test_the_model_guides_the_search() -> None:
    """At 30 queries over 10 seeds, BANANAS beats random search and itself with a constant
    model (mutations of the best taken in order): measured 4.88, 3.96 and 4.35 of 5."""
    bananas = best_found("bananas", 10, 30)
    assert bananas > best_found("random", 10, 30) + 0.5
    assert bananas > best_found("bananas", 10, 30, constant=True) + 0.25
