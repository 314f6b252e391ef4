"""PNAS' surrogate, the MLP-ensemble variant (Liu et al., ECCV 2018, section 3.2): 5 MLPs,
each fitted on a different 4/5 of the measured cells; the ranking score is their mean.

Each member: a ReLU MLP (by default two hidden layers of 100, the paper's width as we read it;
unverified) on the cell vectors of :mod:`archsearch.strategies.pnas_cells`, Glorot-uniform
weights, zero biases, mean absolute error (the paper's L1 loss) on standardised targets,
full-batch Adam (lr 0.01) for ``steps`` steps; the members train side by side as one batched
network (each its own weights and fold: the same as one after another). The folds: one seeded permutation of the
examples split into ``members`` near-equal parts; member m leaves out part m (with fewer
examples than members, a member whose part is the whole set fits on all of them). Every draw
comes from ``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class FoldEnsemble:
    def __init__(self, seed: int = 0, members: int = 5, hidden: Sequence[int] = (100, 100),
                 steps: int = 300, lr: float = 0.01) -> None:
        if members < 1 or steps < 0 or not lr > 0 or any(h < 1 for h in hidden):
            raise ValueError("members and hidden widths must be at least 1, steps at least 0, "
                             "lr positive")
        self.seed, self.members, self.hidden = seed, members, tuple(hidden)
        self.steps, self.lr = steps, lr
        self.params: list[torch.Tensor] = []  # per layer: every member's weights, biases
        self.scale = (0.0, 1.0)

    def folds(self, n: int) -> list[np.ndarray]:
        """Member m's training indices: all but part m of a seeded permutation."""
        parts = np.array_split(np.random.default_rng(self.seed).permutation(n), self.members)
        out = []
        for m in range(self.members):
            keep = np.concatenate([p for k, p in enumerate(parts) if k != m])
            out.append(np.sort(keep) if len(keep) else np.arange(n))
        return out

    def fit(self, x: np.ndarray, y: Sequence[float]) -> None:
        """x: (n, d) float32 cell vectors; y: n objectives (larger is better)."""
        targets = np.asarray(y, dtype=np.float64)
        std = float(targets.std())
        self.scale = (float(targets.mean()), std if std > 0 else 1.0)
        inputs = torch.from_numpy(np.asarray(x, dtype=np.float32))  # (n, d)
        labels = torch.from_numpy((targets - self.scale[0]) / self.scale[1]).float()
        weights = torch.zeros(self.members, len(targets))  # (members, n): 1 / |fold| on a fold
        for m, idx in enumerate(self.folds(len(targets))):
            weights[m, torch.from_numpy(idx)] = 1.0 / len(idx)
        params = self._init(inputs.shape[1])
        optimizer = torch.optim.Adam(params, lr=self.lr)
        batch = inputs.expand(self.members, -1, -1)
        for _ in range(self.steps):
            # each member's mean error over its own fold; the sum keeps their gradients apart
            loss = ((self._forward(params, batch) - labels).abs() * weights).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        self.params = [p.detach() for p in params]

    def _init(self, d: int) -> list[torch.Tensor]:
        """Per layer (members, in, out) Glorot-uniform weights, each member from its own seed,
        then (members, 1, out) zero biases."""
        generators = [torch.Generator().manual_seed(int(s)) for s in
                      np.random.SeedSequence(self.seed).generate_state(self.members)]
        dims = [d, *self.hidden, 1]
        params = []
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            bound = (6.0 / (fan_in + fan_out)) ** 0.5
            w = torch.empty(self.members, fan_in, fan_out)
            for m, g in enumerate(generators):
                w[m].uniform_(-bound, bound, generator=g)
            params += [w.requires_grad_(), torch.zeros(self.members, 1, fan_out,
                                                       requires_grad=True)]
        return params

    @staticmethod
    def _forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """(members, n, d) -> (members, n), standardised units."""
        for k in range(0, len(params), 2):
            x = torch.baddbmm(params[k + 1], x, params[k])
            if k + 2 < len(params):
                x = torch.relu(x)
        return x.squeeze(-1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(n,) float64: the members' mean prediction, in the objective's units."""
        if not self.params:
            raise RuntimeError("predict before fit")
        inputs = torch.from_numpy(np.asarray(x, dtype=np.float32))
        with torch.no_grad():
            each = self._forward(self.params, inputs.expand(self.members, -1, -1))
        return each.double().numpy().mean(axis=0) * self.scale[1] + self.scale[0]
