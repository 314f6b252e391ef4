"""The neural predictor of Wen et al. (ECCV 2020, "Neural Predictor for Neural Architecture
Search"): a graph convolutional network regressing the objective.

The network (:mod:`~archsearch.predictors.graph_network`): ``layers`` (3) bidirectional graph
convolutions of ``width`` (144) units over the cell's adjacency encoding (ops on nodes,
:func:`archsearch.encodings.adjacency`), each the average of a ReLU propagation along the
edges and one against them (row-normalised adjacency with self-loops, a weight matrix per
direction); the mean of the nodes' features; a linear layer to a scalar.

Training (:mod:`~archsearch.predictors.graph_predictor`): mean squared error on targets
standardised to zero mean and unit standard deviation, Adam with L2 weight decay. The paper
trains 300 epochs at batch 10 with lr 1e-4; the defaults here, 100 epochs at batch 32 with lr
1e-3 and weight decay 1e-3, fit 424 NB201 cells in a few seconds of one CPU core: about a
ninth of the paper's Adam steps at that size, each on a batch three times larger with a
learning rate ten times larger. ``predict`` returns the output in the objective's units, and
no uncertainty (std None).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from archsearch.predictors.graph_predictor import GraphPredictor
from archsearch.registry import PREDICTORS
from archsearch.spaces.base import Architecture


@PREDICTORS.register("gcn")
class GCNPredictor(GraphPredictor):
    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return ((outputs - targets) ** 2).mean()

    def predict(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, None]:
        return self.outputs(archs) * self.scale[1] + self.scale[0], None
