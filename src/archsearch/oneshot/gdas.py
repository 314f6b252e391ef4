"""GDAS, Gradient-based search using Differentiable Architecture Sampler (Dong & Yang, CVPR 2019)
= DARTS' alpha, but every forward pass runs one op per edge, drawn by a hard Gumbel sample.

Follows AutoDL's NB201 search (D-X-Y/AutoDL-Projects ``exps/NAS-Bench-201-algos/GDAS.py``,
``xautodl/models/cell_searchs/search_model_gdas.py``, ``search_cells.py``):

- **alpha**: as DARTS' (one matrix per cell type, 1e-3 * N(0, 1); :mod:`archsearch.oneshot.alphas`).
- **the sample**: per forward pass, per cell type, one straight-through Gumbel sample per edge,
  ``probs = softmax((log_softmax(alpha) + G) / tau)``, ``hard = one_hot(argmax probs) -
  probs.detach() + probs``, drawn again on an inf or NaN (:mod:`archsearch.oneshot.gumbel`), and
  shared by every cell of the type. Only the chosen op of an edge runs, forward and backward,
  times its hard weight; the edge's other hard weights (zero in value) are added to its output
  so that each gets a gradient (AutoDL's ``forward_gdas``, D-X-Y/AutoDL-Projects#36; a
  ``straight_through`` :class:`~archsearch.nn.mixed.Relaxed` path).
- **tau**: linear from ``tau_max`` = 10 at the first epoch to ``tau_min`` = 0.1 at the last,
  ``tau_max - (tau_max - tau_min) * epoch / (epochs - 1)``, constant within an epoch.
- **each step**: the next training minibatch and a random validation minibatch; *first* one
  SGD step of the weights on the training batch through a fresh sample, *then* one Adam step
  of alpha (lr 3e-4, betas (0.5, 0.999), weight decay 1e-3) on the gradient of the validation
  loss through another fresh sample: the official NB201 script steps the weights before alpha,
  the reverse of DARTS' order. First order only (no unrolled step).
- **the weights** (the estimator's options, the method's presets): as ``GDAS.config``, SGD with
  Nesterov momentum 0.9, lr 0.025 to 0.001 on a cosine stepped per epoch (AutoDL's scheduler
  reads only the epoch outside warm-up), weight decay 5e-4, clipping at 5, batch 64, the
  training images half for the weights, half for alpha.
- **the answer**: ``space.derive(softmax(alpha))`` of the last epoch (NB201: the argmax per
  edge, ``none`` included, as AutoDL's ``genotype()``).

Each epoch's record holds ``tau``, the derived architecture's score on ``derive_batches``
validation minibatches, alpha's entropy and the derived first cell's skip connections (as
DARTS'). Resumable exactly: alpha, its Adam state and the Gumbel generator are in the
checkpoint.

Not followed: AutoDL's NASNet-space model (``search_model_gdas_nasnet.py``) adds only the chosen
op's term, not the zero-valued others (the gradient still reaches every alpha through the
softmax); here both spaces add them, as its NB201 cell. AutoDL clips the weights' gradient norm
together with alpha's (both are the network's parameters); here the weights' alone. Its
NASNet-space search uses batch 256; the presets keep 64. The official 250 epochs (the
default here) become CPU-sized in the presets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from archsearch.config import option
from archsearch.nn.mixed import Relaxed
from archsearch.oneshot.base import SupernetEstimator
from archsearch.oneshot.darts_architect import grad_or_zeros
from archsearch.oneshot.gumbel import GumbelConfig, GumbelSearch, straight_through

# the weights' side of AutoDL's NB201 search (configs/nas-benchmark/algos/GDAS.config)
ESTIMATOR_DEFAULTS: dict[str, Any] = {
    "batch_size": 64, "lr": 0.025, "lr_min": 0.001, "momentum": 0.9, "nesterov": True,
    "weight_decay": 5e-4, "grad_clip": 5.0, "lr_schedule": "epoch", "val_fraction": 0.5,
}


@dataclass(frozen=True)
class GDASConfig(GumbelConfig):
    """GDAS' options: alpha's and the temperature's (the weights' are the estimator's)."""

    epochs: int = option(250, "search epochs", minimum=1)


class GDAS(GumbelSearch):
    """Weights, then alpha, each step through its own hard sample (see the module docstring)."""

    config: GDASConfig

    def __init__(self, estimator: SupernetEstimator, config: GDASConfig, seed: int = 0) -> None:
        super().__init__(estimator, config, seed)
        self.optimizer = config.adam(self.alphas)

    def sample(self, detach: bool = False) -> Relaxed:
        """A hard sample of every cell type's alpha: one active op per edge; with a graph to
        alpha (``straight_through``) unless ``detach``."""
        rows: list[torch.Tensor] = []
        active: list[tuple[int, ...]] = []
        for alpha in self.alphas:
            hard, index = straight_through(alpha.detach() if detach else alpha, self.tau,
                                           self.generator)  # (edges, ops), (edges,)
            rows += list(hard)
            active += [(i,) for i in index.tolist()]
        return Relaxed(tuple(rows), tuple(active), straight_through=not detach)

    def alpha_gradients(self, batch: Any) -> list[torch.Tensor]:
        """d L(batch) / d alpha through a fresh sample (only the sampled ops compute)."""
        return grad_or_zeros(self.estimator.loss(self.sample(), batch), self.alphas)

    def step(self) -> None:
        train, val = self.estimator.batch("train"), self.estimator.batch("val")
        self.estimator.train_step(self.sample(detach=True), train)  # the weights first
        for alpha, grad in zip(self.alphas, self.alpha_gradients(val)):
            alpha.grad = grad
        self.optimizer.step()
