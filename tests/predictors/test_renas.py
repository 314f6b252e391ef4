"""The ReNAS-style predictor: ReNAS' pairwise loss, and scores that order held-out cells."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from archsearch.errors import UserError
from archsearch.predictors import ReNASPredictor
from archsearch.predictors.renas import pairwise_ranking_loss
from tests.predictors.nb201_toy import SPACE, train_and_held_out

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_loss_is_phi_of_each_pairs_agreement_averaged() -> None:
    scores = torch.tensor([2.0, 0.0, 1.0])
    targets = torch.tensor([1.0, 0.0, 1.0])
    # pairs (0,1): z = 1 * 2 = 2; (0,2): z = 0; (1,2): z = (-1) * (-1) = 1
    logistic = pairwise_ranking_loss(scores, targets, "logistic")
    expected = (math.log1p(math.exp(-2)) + math.log(2) + math.log1p(math.exp(-1))) / 3
    assert logistic is not None and logistic.item() == pytest.approx(expected)
    hinge = pairwise_ranking_loss(scores, targets, "hinge")
    assert hinge is not None and hinge.item() == pytest.approx((0 + 1 + 0) / 3)
    assert pairwise_ranking_loss(scores[:1], targets[:1]) is None  # no pair


def test_its_scores_order_held_out_cells_better_than_shuffled_ones() -> None:
    (train, values), (test, truth) = train_and_held_out(200, 200, seed=1)
    model = ReNASPredictor(SPACE, seed=0)
    model.fit(train, values)
    scores, std = model.predict(test)
    assert std is None
    tau = kendalltau(scores, truth)[0]
    shuffled = np.random.default_rng(0).permutation(scores)
    assert tau > 0.6 and tau > kendalltau(shuffled, truth)[0] + 0.5


def test_an_unknown_loss_is_refused() -> None:
    with pytest.raises(UserError, match="unknown ranking loss 'mse'"):
        ReNASPredictor(SPACE, loss="mse")
