"""PNAS: every next block exactly once, levels one block apart, WAIT between levels, a surrogate
that picks the level, exact resume; the conformance checks on nb201 (not on a ToySpace)."""

from __future__ import annotations

from itertools import product
from unittest import mock

import numpy as np
import pytest

from archsearch.errors import UserError
from archsearch.registry import SPACES, STRATEGIES, Spec
from archsearch.spaces.nasnet import NASNetArch
from archsearch.spaces.nb201 import EDGES
from archsearch.strategies.base import WAIT, as_proposal
from archsearch.strategies.pnas_cells import EDGE_ORDER, make_growth
from archsearch.strategies.pnas_surrogate import FoldEnsemble
from archsearch.testing import ToySpace, conformance
from archsearch.testing.toy import ToyEstimator
from archsearch.types import Result

pytestmark = pytest.mark.usefixtures("one_thread")
NB201 = SPACES.create("nb201")
FAST = {"steps": 60}  # surrogate steps: enough for the toy objectives, quick


def pnas(space=NB201, seed: int = 0, **options):  # type: ignore[no-untyped-def]
    return STRATEGIES.create("pnas", space=space, seed=seed, **{**FAST, **options})


class Conv3x3Count:
    """NB201 objective: the number of nor_conv_3x3 edges (the optimum: 6, all of them)."""

    def evaluate(self, arch, budget=None) -> Result:  # type: ignore[no-untyped-def]
        return Result(float(arch.ops.count("nor_conv_3x3")))


def test_every_next_block_exactly_once_per_parent() -> None:
    ops = ("identity", "max_pool_3x3")
    growth = make_growth(SPACES.create("nasnet", blocks=3), None, ops, ("add", "concat"))
    first = growth.first_level()
    assert len(first) == 10 * 2  # unordered pairs of 2 inputs x 2 ops, times 2 combinations
    for parent in (first[0], first[7]):
        children = growth.expand(parent, 1)
        assert all(c.normal[:1] == parent.normal and c.reduce == c.normal for c in children)
        found = [(frozenset([(b.in1, b.op1), (b.in2, b.op2)]), b.combine)
                 for b in (c.normal[1] for c in children)]
        every = {(frozenset([p, q]), c) for p, q in product(product(range(3), ops), repeat=2)
                 for c in ("add", "concat")}
        assert len(found) == len(set(found)) == len(every) == 21 * 2 and set(found) == every
    paper = make_growth(SPACES.create("nasnet"), None, None, None)
    assert len(paper.first_level()) == 136  # the paper's |B_1|: 8 ops, add only


@pytest.mark.slow
def test_nb201_adaptation_decides_one_edge_at_a_time_the_rest_none() -> None:
    growth = make_growth(NB201, None, None, None)
    assert sorted(EDGE_ORDER) == list(range(6)) and EDGES[EDGE_ORDER[0]] == (3, 0)
    first = growth.first_level()
    assert [c.ops[EDGE_ORDER[0]] for c in first] == list(NB201.decisions()[0].options)
    assert all(c.ops.count("none") >= 5 for c in first)
    children = growth.expand(first[3], 1)
    assert [c.ops[EDGE_ORDER[1]] for c in children] == list(NB201.decisions()[0].options)
    assert all(c.ops[EDGE_ORDER[0]] == first[3].ops[EDGE_ORDER[0]] for c in children)
    assert all(c.ops[e] == "none" for c in children for e in EDGE_ORDER[2:])
    strategy, estimator, levels = pnas(beam=3), ToyEstimator(NB201), []
    while (item := strategy.ask()) is not None:
        assert item is not WAIT
        assert all(item.ops[e] == "none" for e in EDGE_ORDER[strategy.level:])  # undecided
        levels.append(strategy.level)
        strategy.tell(item, estimator.evaluate(item))
    assert levels == sorted(levels) and set(levels) == set(range(1, 7))


def test_levels_grow_by_one_block_up_to_max_blocks_then_none() -> None:
    space = SPACES.create("nasnet", blocks=3)
    strategy = pnas(space, beam=4, ops=("identity", "max_pool_3x3", "sep_conv_3x3"))
    proposals = conformance.drive(strategy, ToyEstimator(space), 500)
    blocks = [len(space.parse(p).normal) for p in proposals]
    assert blocks == [1] * 21 + [2] * 4 + [3] * 4  # all one-block cells, then the beam
    assert all(isinstance(space.parse(p), NASNetArch) for p in proposals)
    assert strategy.ask() is None
    first = [space.parse(p) for p in proposals[:21]]
    second = [space.parse(p) for p in proposals[21:25]]
    estimator = ToyEstimator(space)
    best = sorted(first, key=lambda a: -estimator.evaluate(a).objective)[:4]
    assert all(c.normal[:1] in {p.normal for p in best} for c in second)  # the 4 best grown


def test_waits_while_a_level_is_out_and_finishes_with_none() -> None:
    space = SPACES.create("nasnet", blocks=3)
    strategy = pnas(space, beam=2, ops=("identity", "max_pool_3x3"))
    estimator = ToyEstimator(space)
    level_one = [strategy.ask() for _ in range(10)]
    assert WAIT not in level_one and strategy.ask() is WAIT
    for arch in level_one[:9]:
        strategy.tell(arch, estimator.evaluate(arch))
    assert strategy.ask() is WAIT  # one result still out
    strategy.tell(level_one[9], estimator.evaluate(level_one[9]))
    level_two = [strategy.ask() for _ in range(2)]
    assert WAIT not in level_two and None not in level_two and strategy.ask() is WAIT
    for arch in level_two:
        strategy.tell(arch, estimator.evaluate(arch))
    level_three = [strategy.ask() for _ in range(2)]
    assert WAIT not in level_three and None not in level_three
    assert strategy.ask() is None and len(strategy.pending) == 2  # the last level is out


SMALL = {"ops": ("identity", "max_pool_3x3")}  # 10 one-block cells, 21 second blocks


def test_the_level_is_the_surrogates_top_k() -> None:
    """The proposals of level 2 are the beam expansions of largest mean prediction."""
    space = SPACES.create("nasnet", blocks=2)
    strategy, estimator = pnas(space, beam=3, **SMALL), ToyEstimator(space)
    predicted: list[np.ndarray] = []
    predict = FoldEnsemble.predict

    def recording_predict(self, x):  # type: ignore[no-untyped-def]
        predicted.append(predict(self, x))
        return predicted[-1]

    with mock.patch.object(FoldEnsemble, "predict", recording_predict):
        proposals = conformance.drive(strategy, estimator, 100)
    parents = sorted(proposals[:10], key=lambda p: -estimator.evaluate(space.parse(p)).objective)
    pool = [c.to_str() for p in parents[:3] for c in strategy.growth.expand(space.parse(p), 1)]
    top = [pool[i] for i in np.argsort(-predicted[0], kind="stable")[:3]]
    assert len(predicted) == 1 and len(pool) == 63 and proposals[10:] == top


@pytest.mark.slow
def test_the_surrogate_finds_what_random_expansions_miss() -> None:
    """Conv3x3Count with a beam of 4: the surrogate finds the all-conv cell on every seed;
    expansions ranked at random (predict replaced by noise) never do (measured at most 3)."""
    def best(seed: int, blind: bool) -> float:
        strategy, estimator = pnas(seed=seed, beam=4), Conv3x3Count()
        rng = np.random.default_rng(seed)
        noise = mock.patch.object(FoldEnsemble, "predict", lambda self, x: rng.random(len(x)))
        if blind:
            with noise:
                proposals = conformance.drive(strategy, estimator, 100)
        else:
            proposals = conformance.drive(strategy, estimator, 100)
        return max(estimator.evaluate(NB201.parse(p)).objective for p in proposals)

    assert [best(s, blind=False) for s in range(6)] == [6.0] * 6
    assert max(best(s, blind=True) for s in range(6)) <= 4.0


def test_a_state_round_trip_mid_level_continues_identically() -> None:
    """Cut inside level 2 with two proposals out: the restored strategy (another seed) has
    them pending and continues as the uninterrupted run."""
    space = SPACES.create("nasnet", blocks=3)
    estimator = ToyEstimator(space)

    def run(strategy, n):  # type: ignore[no-untyped-def]
        return conformance.drive(strategy, estimator, n)

    whole = run(pnas(space, seed=3, beam=4, **SMALL), 100)
    first = pnas(space, seed=3, beam=4, **SMALL)
    head = run(first, 11)  # level 1 (10) + 1 of level 2
    out = [as_proposal(first.ask()) for _ in range(2)]
    second = pnas(space, seed=99, beam=4, **SMALL)
    second.load_state_dict(conformance.round_trip(first.state_dict()))
    assert [p.key() for p in second.pending] == [p.key() for p in out]
    assert second.level == 2 and len(second.queue) == 1
    for p in out:
        second.tell(p, estimator.evaluate(p.arch))
    tail = run(second, 100)
    assert head + [p.key() for p in out] + tail == whole and len(whole) == 18


@pytest.mark.slow
def test_conformance_on_nb201() -> None:
    def factory(space, seed):  # type: ignore[no-untyped-def]
        return pnas(space, seed)

    for seed in range(3):
        conformance.check_finds_optimum(factory, NB201, 85, seed)
    conformance.check_reproducible(factory, NB201)
    conformance.check_resumes(factory, NB201)
    conformance.check_pending(factory, NB201)
    conformance.check_budgets_and_waiting(factory, space_spec=Spec("nb201"))


def test_other_spaces_and_bad_options_are_refused() -> None:
    with pytest.raises(UserError, match="nasnet, nb201"):
        pnas(ToySpace(3, 3))
    with pytest.raises(UserError, match=r"1\.\.2"):
        pnas(SPACES.create("nasnet", blocks=2), max_blocks=3)
    with pytest.raises(UserError, match="ops"):
        pnas(SPACES.create("nasnet"), ops=("conv",))
    with pytest.raises(UserError, match="nasnet space only"):
        pnas(ops=("identity",))


def test_nasnet_cells_of_fewer_blocks_parse_and_encode() -> None:
    space = SPACES.create("nasnet", blocks=3)
    text = "normal:add(identity~0,max_pool_3x3~1);reduce:add(identity~0,max_pool_3x3~1)"
    arch = space.parse(text)
    assert arch.to_str() == text and len(space.encode(arch)) == 10
    with pytest.raises(UserError, match="at most 1"):
        SPACES.create("nasnet", blocks=1).parse(
            "normal:add(identity~0,identity~1),add(identity~0,identity~2);"
            "reduce:add(identity~0,identity~1),add(identity~0,identity~2)")
