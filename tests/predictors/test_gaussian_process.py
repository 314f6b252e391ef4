"""The GP predictor (BoTorch): it learns a toy objective on NB201 cells, is surer where it
has seen data, and without BoTorch names the extra to install."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr

from archsearch.errors import UserError
from archsearch.registry import PREDICTORS
from tests.predictors.nb201_toy import SPACE, train_and_held_out

pytestmark = pytest.mark.usefixtures("one_thread")


def test_it_ranks_held_out_cells_by_their_convolutions() -> None:
    pytest.importorskip("botorch")
    (train, values), (test, truth) = train_and_held_out(200, 200, seed=2)
    model = PREDICTORS.create("gp", space=SPACE, seed=0, encoding="one_hot")
    model.fit(train, values)
    mean, std = model.predict(test)
    assert spearmanr(mean, truth)[0] > 0.8 and kendalltau(mean, truth)[0] > 0.7
    _, std_seen = model.predict(train)
    assert std_seen.mean() < std.mean()  # the posterior is surer at its training cells


def test_without_botorch_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "botorch", None)  # import botorch raises ImportError
    with pytest.raises(UserError, match=r"the gp predictor needs BoTorch: pip install "
                                        r"'archsearch\[bo\]'"):
        PREDICTORS.create("gp", space=SPACE)


def test_the_encoding_is_an_option() -> None:
    pytest.importorskip("botorch")
    path = PREDICTORS.create("gp", space=SPACE)
    one_hot = PREDICTORS.create("gp", space=SPACE, encoding="one_hot")
    cell = SPACE.sample(np.random.default_rng(0))
    assert path.encode(cell).shape == (155,) and one_hot.encode(cell).shape == (30,)
    with pytest.raises(UserError, match="unknown encoding"):
        PREDICTORS.create("gp", space=SPACE, encoding="adjacency")
