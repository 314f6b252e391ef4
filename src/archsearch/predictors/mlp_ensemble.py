"""BANANAS' predictor (White et al., AAAI 2021): an ensemble of feed-forward networks.

naszilla's ``meta_neural_net.py`` with its ``standard`` parameters (``params.py``): 5 networks,
each 10 fully connected ReLU layers of width 20 and a linear output, Glorot-uniform weights and
zero biases (Keras' defaults), mean absolute error, Adam (lr 0.01, betas 0.9 and 0.99, epsilon
1e-7), 150 epochs of shuffled batches of 32. The prediction is the members' mean, the
uncertainty their standard deviation (naszilla's ``np.sqrt(np.var(...))``).

Two departures, neither changing what a member learns up to scale: the targets are
standardised before training (naszilla fits validation losses of 5 to 60 as they are; here
objectives of any scale train alike), and the members train side by side as one batched
network (each with its own weights, shuffling and Adam moments, from its own seed: the same
as training them one after another, five times faster).

The input is a flat encoding chosen by name (:func:`archsearch.encodings.vector_encoder`:
the path encoding on NB201, one-hot elsewhere by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from archsearch.encodings import vector_encoder
from archsearch.predictors.base import Predictor, check_examples
from archsearch.registry import PREDICTORS
from archsearch.spaces.base import Architecture, SearchSpace


@PREDICTORS.register("mlp-ensemble")
class MLPEnsemble(Predictor):
    def __init__(self, space: SearchSpace, seed: int = 0, members: int = 5, layers: int = 10,
                 width: int = 20, epochs: int = 150, batch_size: int = 32, lr: float = 0.01,
                 encoding: str | None = None, max_paths: int | None = None) -> None:
        super().__init__(space, seed)
        if min(members, layers, width, batch_size) < 1 or epochs < 0 or not lr > 0:
            raise ValueError("members, layers, width and batch_size must be at least 1, "
                             "epochs at least 0 and lr positive")
        self.members, self.layers, self.width = members, layers, width
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.encode = vector_encoder(space, encoding, max_paths)
        self.theta: torch.Tensor | None = None  # every member's weights and biases, flat
        self.shapes: list[tuple[int, int, int]] = []  # per layer (members, in, out)
        self.scale = (0.0, 1.0)  # the targets' mean and standard deviation

    def _inputs(self, archs: Sequence[Architecture]) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.encode(a) for a in archs]))  # (n, d)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """(members, n, d) -> (members, n), in standardised units."""
        assert self.theta is not None
        sizes = [m * i * o for m, i, o in self.shapes] + [m * o for m, _, o in self.shapes]
        parts = self.theta.split(sizes)
        n_layers = len(self.shapes)
        for k, (m, fan_in, fan_out) in enumerate(self.shapes):
            w = parts[k].view(m, fan_in, fan_out)
            x = torch.baddbmm(parts[n_layers + k].view(m, 1, fan_out), x, w)
            if k < n_layers - 1:
                x = torch.relu(x)
        return x.squeeze(-1)

    def _init(self, d: int, generators: list[torch.Generator]) -> None:
        """Glorot-uniform weights, zero biases; one flat tensor, so that Adam takes one step
        over all of it (per-element, hence the same as one optimiser per member and layer)."""
        dims = [d] + [self.width] * self.layers + [1]
        self.shapes = [(self.members, a, b) for a, b in zip(dims[:-1], dims[1:])]
        weights = []
        for _, fan_in, fan_out in self.shapes:
            bound = (6.0 / (fan_in + fan_out)) ** 0.5
            w = torch.empty(self.members, fan_in, fan_out)
            for m, g in enumerate(generators):
                w[m].uniform_(-bound, bound, generator=g)
            weights.append(w.flatten())
        biases = [torch.zeros(self.members * b) for b in dims[1:]]
        self.theta = torch.cat(weights + biases).requires_grad_()

    def member_seeds(self) -> list[int]:
        """One seed per member, all from ``seed``: its weights and its shuffling."""
        return [int(s) for s in np.random.SeedSequence(self.seed).generate_state(self.members)]

    def fit(self, archs: Sequence[Architecture], values: Sequence[float]) -> None:
        check_examples(archs, values)
        x = self._inputs(archs)
        y = torch.tensor(values, dtype=torch.float64)
        std = float(y.std(unbiased=False))
        self.scale = (float(y.mean()), std if std > 0 else 1.0)
        y = ((y - self.scale[0]) / self.scale[1]).float()
        generators = [torch.Generator().manual_seed(s) for s in self.member_seeds()]
        self._init(x.shape[1], generators)
        assert self.theta is not None
        optimizer = torch.optim.Adam([self.theta], lr=self.lr, betas=(0.9, 0.99), eps=1e-7)
        n = len(y)
        for _ in range(self.epochs):
            order = torch.stack([torch.randperm(n, generator=g) for g in generators])
            for start in range(0, n, self.batch_size):
                idx = order[:, start:start + self.batch_size]  # (members, batch)
                # each member's own mean error: the sum keeps their gradients apart
                loss = (self._forward(x[idx]) - y[idx]).abs().mean(dim=1).sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        self.theta.requires_grad_(False)

    def member_predictions(self, archs: Sequence[Architecture]) -> np.ndarray:
        """(members, n): each member's prediction, in the objective's units."""
        if self.theta is None:
            raise RuntimeError("predict before fit")
        x = self._inputs(archs).expand(self.members, -1, -1)
        with torch.no_grad():
            out = self._forward(x).double().numpy()
        return out * self.scale[1] + self.scale[0]

    def predict(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        each = self.member_predictions(archs)
        return each.mean(axis=0), each.std(axis=0)

    def state_dict(self) -> dict[str, Any]:
        return {"theta": self.theta, "shapes": [list(s) for s in self.shapes],
                "scale": list(self.scale)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.theta = state["theta"]
        self.shapes = [(int(m), int(i), int(o)) for m, i, o in state["shapes"]]
        self.scale = (float(state["scale"][0]), float(state["scale"][1]))
