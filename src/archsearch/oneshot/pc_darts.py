"""PC-DARTS, partially-connected DARTS (Xu et al., ICLR 2020) = DARTS
(:mod:`archsearch.oneshot.darts`) + partial channel connections + edge normalisation.

Follows the official code (yuhuixu1993/PC-DARTS ``model_search.py``, ``train_search.py``,
``architect.py``):

- **partial channels** (a supernet option, ``supernet={partial_channels: K}``, K = 4 in the
  method's presets as in the official ``MixedOp``; :mod:`archsearch.nn.partial`): each edge
  sends the first C/K channels of its input through its mixed op, whose ops are built at C/K
  channels, the rest bypass (2x2 max-pooled on a stride-2 edge); the parts, concatenated, are
  channel-shuffled in K groups. K belongs to the supernet because it sets the ops' widths; a
  ``supernet={...}`` the user gives replaces the preset's, so it must name ``partial_channels``
  again (with K = 1 the search is DARTS with edge normalisation; a warning says so).
- **edge normalisation**: beta, one parameter per edge per cell type (DARTS space: 14 per cell
  type; NB201: 6), initialised as alpha (``alpha_init`` * N(0, 1), drawn after alpha from its
  generator, as the official alphas_normal, alphas_reduce, betas_normal, betas_reduce); node j
  sums its edges weighted by softmax(beta) over its incoming edges (the path's
  ``edge_weights``), every cell of a type sharing its type's beta.
- **the architecture step**: first order only, alpha and beta in one Adam (lr 6e-4, betas
  (0.5, 0.999), weight decay 1e-3: the ``alpha_*`` options serve both) on a random validation
  batch, before each weight step as in DARTS; during the first ``arch_start_epoch`` epochs
  (official: ``epoch >= 15`` of 50) alpha and beta do not move and only the weights train.
- **the weights** (the estimator's options, :data:`OFFICIAL_WEIGHTS`): SGD momentum 0.9, lr 0.1
  on a per-epoch cosine to 0, weight decay 3e-4, clip 5, batch 256, the training images half
  for the weights, half for the architecture.
- **the answer**: the last epoch's genotype, derived from softmax(alpha) with each edge's row
  multiplied by its edge weight (the official ``genotype()``'s ``W[j, :] * W2[j]``): on the
  DARTS space the edges are ranked by their scaled strongest non-``none`` op, the op within an
  edge is unchanged by the scaling; on NB201 (argmax per edge) beta changes nothing.

Differences: the official code runs only relaxed paths; here a genotype also runs, as its
one-hot path (see :mod:`archsearch.spaces.darts_supernet`), for the per-epoch derived score;
with K > 1 that score is of the partial-channel supernet at one-hot weights (the bypassed
channels of every edge included), not of the stand-alone genotype, which is retrained. The
official ``MixedOp`` computes the ``none`` op's zeros; here ``none`` is skipped, as in every
mixed op (:func:`archsearch.nn.mixed.mix`), which changes nothing: the bypass still flows.
The official code has no NB201 search; here NB201's edges are partial and normalised alike
(its cells have no stride-2 edge; node 1's single edge always weighs 1). The rest is DARTS' (:mod:`archsearch.oneshot.darts`: scoring, records, resume).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from archsearch.config import option
from archsearch.errors import UserError
from archsearch.nn.mixed import Relaxed
from archsearch.oneshot.base import SupernetEstimator
from archsearch.oneshot.darts import DARTS, ESTIMATOR_DEFAULTS, DARTSConfig

log = logging.getLogger(__name__)

# the weights' side of the official search (train_search.py); CPU presets scale batch and lr
OFFICIAL_WEIGHTS: dict[str, Any] = {**ESTIMATOR_DEFAULTS, "batch_size": 256, "lr": 0.1,
                                    "lr_min": 0.0}
PARTIAL_CHANNELS = 4  # the official MixedOp's k


@dataclass(frozen=True)
class PCDARTSConfig(DARTSConfig):
    """DARTS' options (the ``alpha_*`` ones also for beta), first order, and the warm-up."""

    order: int = option(1, "first order only (the official search)", choices=(1,))
    alpha_lr: float = option(6e-4, "alpha's and beta's Adam learning rate", minimum=0)
    arch_start_epoch: int = option(15, "epochs that train only the weights before alpha and "
                                   "beta start to step (the official: 15 of 50; DARTS' "
                                   "warm-up option, on here)", minimum=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.order != 1:
            raise UserError(f"pc-darts is first order (as the official search): order must "
                            f"be 1, not {self.order}")


class PCDARTS(DARTS):
    """DARTS plus beta (edge normalisation) and a weights-only warm-up; see the module
    docstring. ``betas``: one (edges,) vector per cell type."""

    config: PCDARTSConfig

    def __init__(self, estimator: SupernetEstimator, config: PCDARTSConfig,
                 seed: int = 0) -> None:
        super().__init__(estimator, config, seed)
        k = getattr(getattr(estimator, "model", None), "partial_channels", 1)
        if k == 1:
            log.warning("pc-darts on a supernet without partial channels (partial_channels=1): "
                        "DARTS with edge normalisation")

    def extra_parameters(self, generator: torch.Generator,
                         device: torch.device) -> list[torch.nn.Parameter]:
        """beta per cell type, and the mask of each node's incoming edges."""
        if not hasattr(self.space, "relaxed_edges"):
            raise UserError(f"space {self.space.name!r} has no relaxed_edges: PC-DARTS needs "
                            "the edges of its relaxed decisions (darts, nb201)")
        edges = self.space.relaxed_edges()
        self.betas, self.masks = [], []
        start = 0
        for _, n in self.cells:
            targets = torch.tensor([to for to, _ in edges[start:start + n]])
            nodes = targets.unique()
            self.masks.append((nodes[:, None] == targets[None, :]).to(device))  # (nodes, n)
            beta = self.config.alpha_init * torch.randn(n, generator=generator)
            self.betas.append(torch.nn.Parameter(beta.to(device)))  # (n,)
            start += n
        return self.betas

    # ---- paths ------------------------------------------------------------------------------

    def edge_weights(self, detach: bool = False) -> torch.Tensor:
        """softmax(beta) over each node's incoming edges, every cell type in turn:
        (relaxed decisions,)."""
        out = []
        for beta, mask in zip(self.betas, self.masks):
            b = beta.detach() if detach else beta
            rows = F.softmax(b.expand(mask.shape).masked_fill(~mask, float("-inf")), dim=1)
            out.append(rows.sum(0))  # (n,): each edge's weight in its node
        return torch.cat(out)

    def path(self, detach: bool = False) -> Relaxed:
        """softmax(alpha) per edge and softmax(beta) per node's edges (with a graph to both
        unless ``detach``)."""
        return Relaxed(super().path(detach).weights, edge_weights=self.edge_weights(detach))

    def weights(self) -> list[torch.Tensor]:
        """What derive ranks: each edge's softmax(alpha) times its edge weight (detached)."""
        scale = self.edge_weights(detach=True)
        return [row * s for row, s in zip(super().weights(), scale)]

    # ---- resume ---------------------------------------------------------------------------

    def method_state(self) -> dict[str, Any]:
        return {**super().method_state(), "betas": [b.detach().cpu() for b in self.betas]}

    def load_method_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for beta, saved in zip(self.betas, state["betas"]):
                beta.copy_(saved)
        super().load_method_state(state)
