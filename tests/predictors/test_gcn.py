"""Wen et al.'s GCN predictor: it learns a toy objective on NB201 cells, and its convolutions
carry information both along the edges and against them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau, spearmanr

from archsearch.errors import UserError
from archsearch.predictors import GCNPredictor
from archsearch.predictors.graph_network import BidirectionalGCN
from archsearch.spaces.nb201 import NB201Cell
from archsearch.testing import ToySpace
from tests.predictors.nb201_toy import SPACE, train_and_held_out

pytestmark = pytest.mark.usefixtures("one_thread")


def test_it_ranks_held_out_cells_by_their_convolutions() -> None:
    (train, values), (test, truth) = train_and_held_out(200, 200, seed=0)
    model = GCNPredictor(SPACE, seed=0)
    model.fit(train, values)
    mean, std = model.predict(test)
    assert std is None
    assert spearmanr(mean, truth)[0] > 0.8 and kendalltau(mean, truth)[0] > 0.7
    assert abs(mean.mean() - np.mean(truth)) < 0.5  # in the objective's units


def embeddings(*cells: NB201Cell) -> torch.Tensor:
    """(cells, N, width): each node after the layers of one seeded, untrained network."""
    a, x = GCNPredictor(SPACE).tensors(cells)
    network = BidirectionalGCN(x.shape[-1], 32, 3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        return network.node_features(a, x)


def test_nodes_hear_from_the_nodes_they_feed_and_from_those_feeding_them() -> None:
    """Only the edge out of the input (0 -> 1) differs: with propagation against the edges the
    input node (slot 0) hears of it; with propagation along them the output (slot 7) does."""
    ops = ["nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "nor_conv_3x3",
           "nor_conv_1x1"]
    first = NB201Cell(tuple(ops))
    second = NB201Cell(tuple(["avg_pool_3x3"] + ops[1:]))
    h = embeddings(first, second)
    input_node, output_node = 0, h.shape[1] - 1
    assert not torch.allclose(h[0, input_node], h[1, input_node])  # reverse edges used
    assert not torch.allclose(h[0, output_node], h[1, output_node])  # forward edges used


def test_a_space_without_cells_is_refused() -> None:
    with pytest.raises(UserError, match="no cell layout"):
        GCNPredictor(ToySpace(3, 3))
