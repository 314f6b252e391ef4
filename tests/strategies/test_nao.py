"""NAO: random start, rounds that wait and fit on every result, the best architectures improved
in rank order, random stand-ins where none decodes to something new, and a resume mid-round
(the conformance checks run it too)."""

from __future__ import annotations

from unittest import mock

import pytest

from archsearch.predictors.nao import NAOPredictor
from archsearch.registry import STRATEGIES
from archsearch.strategies.base import WAIT
from archsearch.testing import ToySpace
from archsearch.testing.conformance import drive, round_trip
from archsearch.testing.toy import ToyEstimator

pytestmark = pytest.mark.usefixtures("one_thread")
SPACE = ToySpace(5, 4)
QUICK = {"epochs": 5, "hidden": 8, "embedding": 4}


def test_the_first_proposals_are_random_searchs() -> None:
    nao = drive(STRATEGIES.create("nao", space=SPACE, seed=4), ToyEstimator(SPACE), 10)
    assert nao == drive(STRATEGIES.create("random", space=SPACE, seed=4),
                        ToyEstimator(SPACE), 10)


def test_a_round_waits_for_every_result_and_fits_on_all_of_them() -> None:
    strategy = STRATEGIES.create("nao", space=SPACE, seed=0, initial=4, seeds_per_round=3,
                                 **QUICK)
    estimator, fitted = ToyEstimator(SPACE), []
    fit = NAOPredictor.fit

    def recording_fit(self, archs, values):  # type: ignore[no-untyped-def]
        fitted.append(len(archs))
        fit(self, archs, values)

    with mock.patch.object(NAOPredictor, "fit", recording_fit):
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


def test_the_best_are_improved_in_rank_order_and_random_ones_stand_in() -> None:
    """improve() is asked for the seeds best first; where it finds nothing new a random
    unseen architecture takes the place; nothing is proposed twice."""
    strategy = STRATEGIES.create("nao", space=SPACE, seed=1, initial=6, seeds_per_round=4,
                                 **QUICK)
    estimator, asked = ToyEstimator(SPACE), []
    first = drive(strategy, estimator, 6)
    ranked = sorted(first, key=lambda a: -estimator.evaluate(SPACE.parse(a)).objective)
    target = SPACE.decode([3, 3, 3, 3, 3])

    def fake_improve(self, archs, step_size, max_steps, avoid):  # type: ignore[no-untyped-def]
        asked.append(archs[0].to_str())
        return [target if target.to_str() not in avoid else None]

    with mock.patch.object(NAOPredictor, "improve", fake_improve):
        round_one = drive(strategy, estimator, 4)
    assert asked == ranked[:4]  # stable sort: ties keep the order of the results
    assert round_one[0] == target.to_str()  # the best seed's improvement first
    assert target.to_str() not in round_one[1:]  # the others found nothing new: random
    assert len(set(first + round_one)) == 10


def test_a_resume_mid_round_proposes_the_rounds_saved_picks() -> None:
    strategy = STRATEGIES.create("nao", space=SPACE, seed=3, initial=4, seeds_per_round=4,
                                 **QUICK)
    estimator = ToyEstimator(SPACE)
    drive(strategy, estimator, 6)  # two of round one's four proposed
    resumed = STRATEGIES.create("nao", space=SPACE, seed=99, initial=4, seeds_per_round=4,
                                **QUICK)
    resumed.load_state_dict(round_trip(strategy.state_dict()))
    with mock.patch.object(NAOPredictor, "fit", side_effect=AssertionError("refitted")):
        rest = drive(resumed, estimator, 2)  # the round's picks come from the state
    assert rest == drive(strategy, estimator, 2)
