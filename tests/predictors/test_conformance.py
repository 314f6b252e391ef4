"""What every registered predictor must do (the protocol of predictors/base.py), on a toy
objective over NB201 cells: fit twice with a seed, predict the same; a state_dict round trip
(through bytes) predicts the same from a fresh, differently seeded object; no examples or
mismatched lengths are a UserError; predictions are float64, one per architecture."""

from __future__ import annotations

import numpy as np
import pytest

from archsearch.errors import UserError
from archsearch.predictors import Predictor
from archsearch.registry import PREDICTORS
from archsearch.testing.conformance import round_trip
from tests.predictors.nb201_toy import SPACE, Labelled, train_and_held_out

pytestmark = pytest.mark.usefixtures("one_thread")
QUICK = {  # small fits: these tests check the protocol, not the learning
    "mlp-ensemble": {"epochs": 10},
    "gcn": {"epochs": 5, "width": 16},
    "renas": {"epochs": 5, "width": 16},
    "gp": {"maxiter": 20},
    "nao": {"epochs": 3, "hidden": 8, "embedding": 4, "mlp_width": 8},
}
NEEDS = {"gp": "botorch"}  # an optional extra's module
Data = tuple[Labelled, Labelled]  # (training cells, values), (held-out cells, values)


def create(name: str, seed: int, quick: bool = True) -> Predictor:
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    return PREDICTORS.create(name, space=SPACE, seed=seed, **(QUICK.get(name, {}) if quick
                                                               else {}))


@pytest.fixture(scope="module")
def data() -> Data:
    return train_and_held_out(30, 12, seed=5)


@pytest.mark.parametrize("name", PREDICTORS.names())
def test_the_same_seed_fits_the_same_model(name: str, data: Data) -> None:
    (train, values), (test, _) = data
    model, fresh = create(name, seed=3), create(name, seed=3)
    model.fit(train, values)
    mean, std = model.predict(test)
    model.fit(train, values)  # a refit starts from scratch
    fresh.fit(train, values)
    for again, again_std in (model.predict(test), fresh.predict(test)):
        assert np.array_equal(mean, again)
        assert (std is None and again_std is None) or np.array_equal(std, again_std)
    assert mean.dtype == np.float64 and mean.shape == (len(test),)
    if std is not None:
        assert std.dtype == np.float64 and std.shape == (len(test),) and (std >= 0).all()


@pytest.mark.parametrize("name", PREDICTORS.names())
def test_a_state_dict_round_trip_predicts_the_same(name: str, data: Data) -> None:
    (train, values), (test, _) = data
    model = create(name, seed=3)
    model.fit(train, values)
    restored = create(name, seed=99, quick=False)  # everything must come from the state
    restored.load_state_dict(round_trip(model.state_dict()))
    mean, std = model.predict(test)
    again, again_std = restored.predict(test)
    assert np.array_equal(mean, again)
    assert (std is None and again_std is None) or np.array_equal(std, again_std)


@pytest.mark.parametrize("name", PREDICTORS.names())
def test_no_examples_or_mismatched_lengths_are_refused(name: str, data: Data) -> None:
    (train, values), _ = data
    model = create(name, seed=0)
    with pytest.raises(UserError, match="at least one"):
        model.fit([], [])
    with pytest.raises(UserError, match="one value per architecture"):
        model.fit(train, values[:-1])
    with pytest.raises(RuntimeError, match="before fit"):
        model.predict(train)
