"""A relativistic predictor after ReNAS (Xu et al., CVPR 2021, "ReNAS: Relativistic Evaluation
of Neural Architecture Search"): trained to order architectures, not to value them.

ReNAS' loss over the pairs of a batch: L = mean over i < j of phi((y_i - y_j) * (f_i - f_j)),
y the (standardised) objectives, f the network's scores; ``loss="logistic"``:
phi(z) = log(1 + exp(-z)) (the default), ``"hinge"``: phi(z) = max(0, 1 - z). A pair of equal
objectives teaches nothing (z is 0 whatever the scores); a batch of one cell has no pair and
is skipped.

Departure from the paper: its network reads a type matrix with FLOPs and parameter counts
through a LeNet-like CNN; here the body is the GCN of :mod:`~archsearch.predictors.gcn` (the
same bidirectional graph convolutions over the adjacency encoding, the same defaults and
training loop), so the two predictors differ only in the loss.

``predict`` returns the scores, of which only the ORDER means anything: larger is predicted
better, but neither their scale nor their offset is the objective's. No uncertainty (std None).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from archsearch.errors import UnknownNameError
from archsearch.predictors.graph_predictor import GraphPredictor
from archsearch.registry import PREDICTORS
from archsearch.spaces.base import Architecture, SearchSpace

RANKING_LOSSES = ("logistic", "hinge")


def pairwise_ranking_loss(scores: torch.Tensor, targets: torch.Tensor,
                          kind: str = "logistic") -> torch.Tensor | None:
    """(batch,), (batch,) -> the mean of phi((y_i - y_j)(f_i - f_j)) over pairs i < j; None
    for fewer than two cells."""
    n = len(scores)
    if n < 2:
        return None
    i, j = torch.triu_indices(n, n, offset=1)  # (pairs,) each
    z = (targets[i] - targets[j]) * (scores[i] - scores[j])  # (pairs,)
    phi = F.softplus(-z) if kind == "logistic" else torch.relu(1 - z)
    return phi.mean()


@PREDICTORS.register("renas")
class ReNASPredictor(GraphPredictor):
    def __init__(self, space: SearchSpace, seed: int = 0, loss: str = "logistic",
                 width: int = 144, layers: int = 3, epochs: int = 100, batch_size: int = 32,
                 lr: float = 1e-3, weight_decay: float = 1e-3) -> None:
        super().__init__(space, seed, width, layers, epochs, batch_size, lr, weight_decay)
        if loss not in RANKING_LOSSES:
            raise UnknownNameError("ranking loss", loss, RANKING_LOSSES)
        self.ranking_loss = loss

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
        return pairwise_ranking_loss(outputs, targets, self.ranking_loss)

    def predict(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, None]:
        """Scores whose order alone is the prediction."""
        return self.outputs(archs), None
