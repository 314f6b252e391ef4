"""NAO's predictor: it learns a toy objective on NB201 cells, reconstructs the cells it was
trained on, and its gradient step leads to valid, new cells the model rates higher (the
conformance checks run it too)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from archsearch.errors import UserError
from archsearch.predictors.nao import NAOPredictor
from archsearch.predictors.nao_model import NAOModel
from archsearch.spaces.base import Architecture
from archsearch.testing import ToySpace
from tests.predictors.nb201_toy import SPACE, Labelled, convolutions, train_and_held_out

pytestmark = pytest.mark.usefixtures("one_thread")
Fitted = tuple[NAOPredictor, Labelled, Labelled]


@pytest.fixture(scope="module")
def fitted() -> Fitted:
    torch.set_num_threads(1)
    (train, values), (test, truth) = train_and_held_out(100, 100, seed=0)
    model = NAOPredictor(SPACE, seed=0)  # the defaults: about 5 s on one core
    model.fit(train, values)
    return model, (train, values), (test, truth)


def choices(archs: Sequence[Architecture]) -> np.ndarray:
    return np.array([SPACE.encode(a) for a in archs])


@pytest.mark.slow
def test_it_ranks_held_out_cells_by_their_convolutions(fitted: Fitted) -> None:
    model, _, (test, truth) = fitted
    mean, std = model.predict(test)
    assert std is None
    assert spearmanr(mean, truth)[0] > 0.8  # measured 0.96
    assert abs(mean.mean() - np.mean(truth)) < 0.5  # in the objective's units


@pytest.mark.slow
def test_it_reconstructs_the_cells_it_was_trained_on(fitted: Fitted) -> None:
    model, (train, _), _ = fitted
    assert (model.reconstruct(train) == choices(train)).mean() > 0.85  # measured 0.95


@pytest.mark.slow
def test_improving_leads_to_new_valid_cells_rated_higher(fitted: Fitted) -> None:
    model, (train, _), _ = fitted
    starts = train[:30]
    avoid = {train[30].to_str()}
    new = model.improve(starts, step_size=1.0, max_steps=50, avoid=avoid)
    assert len(new) == len(starts) and all(a is not None for a in new)
    moved = [a for a in new if a is not None]
    assert all(a.to_str() != s.to_str() for a, s in zip(moved, starts))
    assert not avoid & {a.to_str() for a in moved}
    before, after = model.predict(starts)[0], model.predict(moved)[0]
    assert after.mean() > before.mean() + 0.3  # measured about +0.7 conv of 6
    # the model learnt the objective: the moved cells are truly better too, on average
    assert np.mean([convolutions(a) for a in moved]) > np.mean([convolutions(s) for s in starts])


def test_a_larger_step_moves_further() -> None:
    """With one step allowed and none to avoid, a tiny step decodes to the start (so None
    comes back), a large one away from it."""
    (train, values), _ = train_and_held_out(40, 1, seed=1)
    model = NAOPredictor(SPACE, seed=0, epochs=40)
    model.fit(train, values)
    assert (model.reconstruct(train[:10]) == choices(train[:10])).mean() > 0.5
    tiny = model.improve(train[:10], step_size=1e-6, max_steps=1)
    large = model.improve(train[:10], step_size=100.0, max_steps=1)
    assert sum(a is None for a in tiny) > sum(a is None for a in large)


def test_decoded_tokens_are_each_decisions_own() -> None:
    """Untrained weights, random states: every decoded token is one of its position's, so
    every decoded sequence is a valid choice vector (without the mask most are not)."""
    sizes = [2, 5, 3, 4]
    model = NAOModel(sizes, 8, 16, 1, 1, 8, torch.Generator().manual_seed(0))
    states = torch.nn.functional.normalize(
        torch.randn(500, len(sizes), 16, generator=torch.Generator().manual_seed(1)), dim=-1)
    decoded = model.choices(model.greedy(states))
    assert ((decoded >= 0) & (decoded < torch.tensor(sizes))).all()
    assert len({tuple(row) for row in decoded.tolist()}) > 3  # not one constant answer
    unmasked = model.out.weight.new_zeros(model.mask.shape)
    model.mask.copy_(unmasked)  # without the mask, tokens of other decisions come out
    decoded = model.choices(model.greedy(states))
    assert not ((decoded >= 0) & (decoded < torch.tensor(sizes))).all()


def test_tokens_of_different_decisions_never_collide() -> None:
    model = NAOModel([3, 3, 3], 4, 8, 1, 1, 4, torch.Generator().manual_seed(0))
    tokens = model.tokens(torch.tensor([[0, 0, 0], [2, 2, 2]]))
    assert tokens.tolist() == [[1, 4, 7], [3, 6, 9]]  # 0 is the decoder's start token


def test_the_toy_space_trains_and_a_state_dict_restores_improve() -> None:
    space = ToySpace(4, 3)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(20)]
    values = [float(sum(a.choices)) for a in archs]
    model = NAOPredictor(space, seed=2, epochs=5)
    model.fit(archs, values)
    restored = NAOPredictor(space, seed=7)
    restored.load_state_dict(model.state_dict())
    assert [a and a.to_str() for a in model.improve(archs[:5])] == \
        [a and a.to_str() for a in restored.improve(archs[:5])]


def test_architectures_of_fewer_decisions_are_refused() -> None:
    class Shallow(ToySpace):
        def encode(self, arch: Architecture) -> tuple[int, ...]:
            return super().encode(arch)[:-1]

    space = Shallow(3, 2)
    with pytest.raises(UserError, match="one token per decision"):
        NAOPredictor(space).fit([space.decode([0, 1, 0])], [1.0])
