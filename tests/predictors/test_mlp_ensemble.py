"""BANANAS' MLP ensemble: seeded, members independent, learns what it is shown."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr

from archsearch.predictors import MLPEnsemble
from archsearch.registry import PREDICTORS
from archsearch.testing import ToySpace
from archsearch.testing.conformance import round_trip
from archsearch.testing.toy import ToyEstimator

pytestmark = pytest.mark.usefixtures("one_thread")
SPACE = ToySpace(5, 4)


def toy_data(n: int, seed: int) -> tuple[list, list[float]]:
    rng = np.random.default_rng(seed)
    archs = [SPACE.sample(rng) for _ in range(n)]
    return archs, [ToyEstimator(SPACE).evaluate(a).objective for a in archs]


def fitted(seed: int = 0, **options) -> MLPEnsemble:
    model = MLPEnsemble(SPACE, seed=seed, **options)
    model.fit(*toy_data(100, 0))
    return model


def test_it_learns_the_toy_objective_and_its_spread_is_an_ensembles() -> None:
    model = fitted()
    archs, values = toy_data(300, 1)
    mean, std = model.predict(archs)
    assert spearmanr(mean, values)[0] > 0.9
    each = model.member_predictions(archs)
    assert each.shape == (5, 300)
    np.testing.assert_allclose(mean, each.mean(axis=0))
    np.testing.assert_allclose(std, each.std(axis=0))
    assert std.mean() > 0.01  # five differently seeded members disagree somewhat


def test_same_seed_same_predictions_another_seed_others() -> None:
    archs, _ = toy_data(20, 2)
    a, b, c = (fitted(seed, epochs=20).predict(archs)[0] for seed in (3, 3, 4))
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_members_train_as_if_alone() -> None:
    """Member m of the batched ensemble equals a one-member ensemble with m's seed."""
    archs, _ = toy_data(20, 2)
    together = fitted(epochs=20)
    seeds = together.member_seeds()
    each = together.member_predictions(archs)
    for m in (0, 3):
        alone = MLPEnsemble(SPACE, members=1, epochs=20)
        alone.member_seeds = lambda m=m: [seeds[m]]  # type: ignore[method-assign]
        alone.fit(*toy_data(100, 0))
        np.testing.assert_allclose(alone.member_predictions(archs)[0], each[m], rtol=1e-4,
                                   atol=1e-4)


def test_state_dict_round_trip_predicts_the_same() -> None:
    model = fitted(epochs=5)
    restored = PREDICTORS.create("mlp-ensemble", space=SPACE, seed=99)
    restored.load_state_dict(round_trip(model.state_dict()))
    archs, _ = toy_data(10, 3)
    assert np.array_equal(restored.predict(archs)[0], model.predict(archs)[0])
    with pytest.raises(RuntimeError, match="before fit"):
        MLPEnsemble(SPACE).predict(archs)


def test_on_nb201_the_path_encoding_ranks_unseen_cells(nb201_csv) -> None:
    from archsearch.estimators.tabular import TabularEstimator
    from archsearch.registry import SPACES

    space = SPACES.create("nb201")
    table = TabularEstimator(nb201_csv, "cifar10_test_acc_200ep", space=space).values()
    names = sorted(table)
    rng = np.random.default_rng(0)
    picks = rng.choice(len(names), 600, replace=False)
    train, test = [names[i] for i in picks[:100]], [names[i] for i in picks[100:]]
    model = MLPEnsemble(space, seed=0)  # the path encoding: NB201's default
    model.fit([space.parse(a) for a in train], [table[a] for a in train])
    mean, _ = model.predict([space.parse(a) for a in test])
    assert kendalltau(mean, [table[a] for a in test])[0] > 0.5  # 0.64 measured
