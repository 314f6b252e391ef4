"""What the graph predictors share: the adjacency encoding, a bidirectional GCN
(:class:`~archsearch.predictors.graph_network.BidirectionalGCN`), its seeded minibatch
training with Adam, and the saved state. A subclass says what the training minimises
(``loss``) and what ``predict`` makes of the network's outputs.

Training: the targets are standardised (zero mean, unit standard deviation; a constant target
keeps unit scale); ``epochs`` passes over the examples in shuffled minibatches of
``batch_size``, Adam with ``lr`` and (L2) ``weight_decay``. The weights and every shuffle come
from one ``torch.Generator`` seeded with the predictor's seed, so a fit is reproducible.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from archsearch.encodings import adjacency, cell_layout
from archsearch.predictors.base import Predictor, check_examples
from archsearch.predictors.graph_network import BidirectionalGCN
from archsearch.spaces.base import Architecture, SearchSpace

log = logging.getLogger(__name__)


class GraphPredictor(Predictor):
    def __init__(self, space: SearchSpace, seed: int = 0, width: int = 144, layers: int = 3,
                 epochs: int = 100, batch_size: int = 32, lr: float = 1e-3,
                 weight_decay: float = 1e-3) -> None:
        super().__init__(space, seed)
        if min(width, layers, batch_size) < 1 or epochs < 0 or not lr > 0 or weight_decay < 0:
            raise ValueError("width, layers and batch_size must be at least 1, epochs at "
                             "least 0, lr positive and weight_decay not negative")
        cell_layout(space)  # a space without cells is refused now, with a UserError
        self.width, self.layers, self.epochs = width, layers, epochs
        self.batch_size, self.lr, self.weight_decay = batch_size, lr, weight_decay
        self.network: BidirectionalGCN | None = None
        self.scale = (0.0, 1.0)  # the targets' mean and standard deviation

    @abc.abstractmethod
    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
        """(batch,), (batch,) standardised -> a scalar to minimise; None: the batch has
        nothing to learn from (a ranking loss's lone cell), no step is taken."""

    def tensors(self, archs: Sequence[Architecture]) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, N, N) adjacency and (n, N, F) node features of the cells."""
        pairs = [adjacency(self.space, arch) for arch in archs]
        a = torch.from_numpy(np.stack([p[0] for p in pairs]))
        x = torch.from_numpy(np.stack([p[1] for p in pairs]))
        return a, x

    def _build(self, features: int, generator: torch.Generator) -> BidirectionalGCN:
        return BidirectionalGCN(features, self.width, self.layers, generator)

    def fit(self, archs: Sequence[Architecture], values: Sequence[float]) -> None:
        check_examples(archs, values)
        a, x = self.tensors(archs)
        y = torch.tensor(np.asarray(values, dtype=np.float64))
        std = float(y.std(unbiased=False))
        self.scale = (float(y.mean()), std if std > 0 else 1.0)
        y = ((y - self.scale[0]) / self.scale[1]).float()
        generator = torch.Generator().manual_seed(self.seed)
        self.network = network = self._build(x.shape[-1], generator)
        optimizer = torch.optim.Adam(network.parameters(), lr=self.lr,
                                     weight_decay=self.weight_decay)
        n = len(y)
        for epoch in range(self.epochs):
            order = torch.randperm(n, generator=generator)
            total = 0.0
            for start in range(0, n, self.batch_size):
                idx = order[start:start + self.batch_size]
                loss = self.loss(network(a[idx], x[idx]), y[idx])
                if loss is None:
                    continue
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(idx)
            if epoch == self.epochs - 1:
                log.debug("%s: last epoch's mean loss %.4f on %d cells", type(self).__name__,
                          total / n, n)
        network.requires_grad_(False)

    def outputs(self, archs: Sequence[Architecture]) -> np.ndarray:
        """(n,) the network's outputs, in standardised units."""
        if self.network is None:
            raise RuntimeError("predict before fit")
        a, x = self.tensors(archs)
        with torch.no_grad():
            return self.network(a, x).double().numpy()

    def state_dict(self) -> dict[str, Any]:
        if self.network is None:
            raise RuntimeError("state_dict before fit")
        return {"network": self.network.state_dict(), "scale": list(self.scale),
                "features": int(self.network.forward_weights[0].shape[0]),
                "width": self.width, "layers": self.layers}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.width, self.layers = int(state["width"]), int(state["layers"])
        self.network = self._build(int(state["features"]), torch.Generator().manual_seed(0))
        self.network.load_state_dict(state["network"])
        self.network.requires_grad_(False)
        self.scale = (float(state["scale"][0]), float(state["scale"][1]))
