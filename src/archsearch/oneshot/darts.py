"""DARTS, differentiable architecture search (Liu et al., ICLR 2019) = the one-shot loop +
architecture weights alpha, over a supernet whose paths are relaxed (:mod:`archsearch.nn.mixed`).

Follows the official code (quark0/darts ``cnn/train_search.py``, ``architect.py``,
``model_search.py``):

- **alpha**: one matrix per cell type (``space.relaxed_cells()``: DARTS' normal and reduction
  cells, 14 edges x 8 ops; NB201's one cell, 6 x 5), initialised to 1e-3 * N(0, 1) from a
  generator seeded by the search's seed; a path is the row-wise softmax, shared by every cell
  of its type.
- **each step**: the next training minibatch and a random validation minibatch; *first* one
  Adam step of alpha on the validation batch (lr 3e-4, betas (0.5, 0.999), weight decay 1e-3;
  the official ``architect.step`` comes before the weights' step), *then* one SGD step of the
  weights on the training batch through the updated softmax (the estimator's ``train_step``).
  ``order=1``: alpha's gradient is that of the validation loss; ``order=2``: of the validation
  loss after one unrolled weight step (:mod:`archsearch.oneshot.darts_architect`).
- **the weights** (the estimator's options, set by the method's presets): SGD with plain
  momentum 0.9, lr 0.025 to 0.001 on a cosine stepped once per epoch, weight decay 3e-4,
  gradient clipping at 5, batch 64; the training images split half for the weights, half for
  alpha (``val_fraction=0.5``).
- **the answer**: the genotype derived at the last epoch (``space.derive`` of the softmax:
  DARTS' top-2 edges by their strongest non-``none`` op; NB201's argmax per edge, ``none``
  included, as AutoDL's code), which every official DARTS-family script reports.

Each epoch's record holds the derived architecture and its score on ``derive_batches``
validation minibatches (through the supernet, like every one-shot method's), the relaxed
supernet's score on the same minibatches (``relaxed_score``: what the official code's
``infer`` reports, on the whole validation half), alpha's mean entropy per edge
(``alpha_entropy``, and per cell type), and the number of skip connections in the derived
first cell (``skip_connects``: DARTS' normal cell, whose filling up with skips is DARTS'
known collapse).

Where the paper and the official code differ, the code is followed: the paper's unrolled step
is a plain gradient step, w - eta grad_w L_train, the code's (and so this one's) the next step
of the weights' optimizer, momentum and weight decay included; the paper's reported cell comes
from the second order (DARTS_V2), the code's default is the first (``--unrolled`` off), as
here (``order=1``); the paper anneals the weights' learning rate to zero, the code to 0.001,
its cosine stepped once per epoch.

``beta_decay`` (off by default) adds beta-DARTS' regulariser (Ye et al., CVPR 2022;
Sunshine-Ye/Beta-DARTS ``optimizers/darts/architect.py``) to alpha's step, one of the levers
against the collapse: lambda * mean over edges of logsumexp(alpha), lambda rising linearly
over the epochs to ``beta_decay`` at the last. The official code's lambda is 50 * epoch / 100
(epoch counted from 0) whatever the number of epochs: with 50 epochs, ``beta_decay=24.5``
reproduces it. First order as the official code (with ``order=2`` the regulariser is added to
the unrolled gradient).

``arch_start_epoch`` (off by default) is the warm-up of PC-DARTS (and of P-DARTS, SDARTS,
DARTS-): the weights train alone for that many epochs before alpha's first step, so that alpha's
first gradients weigh trained convolutions against the parameter-free ops, not untrained ones
(which lose to the parameter-free ops early whatever their worth).

``none_in_derive=False`` (nb201; on by default, as AutoDL's code) leaves ``none`` out of the
derived cell's argmax, the DARTS paper's rule for its own space: DARTS on NB201 also fails by
cutting edges (``none`` winning every edge out of the input leaves a constant output, 10%), and
this lever removes that failure mode by construction; ``max_skips`` removes the other, the cell
of skips. Both change only the derive, not the training.

Not followed: the official ``infer`` scores the relaxed supernet on the whole validation half
every epoch, in evaluation mode (BatchNorm's running statistics); here ``derive_batches``
minibatches (CPU budgets), with the estimator's BatchNorm setting (by default batch
statistics, ``bn_track=False``; the weights and alpha train in training mode either way, as
in the official code). The official validation batches are augmented like the training ones
(both queues read one dataset with the training transform); here they are not.

Everything is resumable through the one-shot loop's checkpoint: the supernet, its optimizer,
schedule step and generator (the estimator's), alpha and its Adam state, the history. Alpha,
the derive and the per-epoch record are :mod:`archsearch.oneshot.alphas`', shared with GDAS
and SNAS.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any

import torch

from archsearch.config import option
from archsearch.errors import UserError
from archsearch.oneshot.alphas import AlphaConfig, AlphaSearch
from archsearch.oneshot.base import SupernetEstimator
from archsearch.oneshot.darts_architect import Architect
from archsearch.spaces.base import Architecture

log = logging.getLogger(__name__)

# the weights' side of the official search (cnn/train_search.py): the estimator's options
ESTIMATOR_DEFAULTS: dict[str, Any] = {
    "batch_size": 64, "lr": 0.025, "lr_min": 0.001, "momentum": 0.9, "nesterov": False,
    "weight_decay": 3e-4, "grad_clip": 5.0, "lr_schedule": "epoch", "val_fraction": 0.5,
}


@dataclass(frozen=True)
class DARTSConfig(AlphaConfig):
    """DARTS' options: the architecture weights' (the weights' are the estimator's)."""

    order: int = option(1, "1: first-order DARTS (the code's default); 2: the one-step "
                        "unrolled second order (the paper's DARTS_V2)", 2, choices=(1, 2))
    unrolled_r: float = option(0.01, "order 2: the finite difference's step is r / ||v||",
                               minimum=0)
    beta_decay: float = option(0.0, "beta-DARTS' regulariser: lambda * mean over edges of "
                               "logsumexp(alpha) added to alpha's loss, lambda rising linearly "
                               "from 0 at the first epoch to this value at the last (0: off)",
                               minimum=0)
    max_skips: int | None = option(None, "the skip cap: the derived (first) cell keeps at most "
                                   "this many skip connections, the weakest skips taking their "
                                   "next best op (space.derive_capped, P-DARTS' final rule; "
                                   "None: off)", minimum=0)
    arch_start_epoch: int = option(0, "the warm-up: epochs that train only the weights before "
                                   "alpha starts to step (PC-DARTS' official 15 of 50; 0: off)",
                                   minimum=0)
    none_in_derive: bool = option(True, "nb201: the derived cell's argmax per edge counts the "
                                  "none op (AutoDL's rule); False: the strongest op but none "
                                  "(the DARTS paper's rule), so that no edge of the derived "
                                  "cell is cut")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.order not in (1, 2):
            raise UserError(f"order must be 1 or 2 (DARTS' first or second order), not "
                            f"{self.order}")
        if self.unrolled_r <= 0:
            raise UserError(f"unrolled_r must be positive, not {self.unrolled_r}")


def beta_regulariser(alphas: list[torch.Tensor]) -> torch.Tensor:
    """beta-DARTS' (Ye et al., CVPR 2022) regulariser: the mean over every edge of every cell
    type of logsumexp(alpha) over its ops. Its gradient, softmax(alpha) / edges per edge,
    pulls the strongest ops down hardest and keeps alpha's spread small, so that no op's
    weight runs away (the skip connections' in DARTS' collapse)."""
    return torch.cat([torch.logsumexp(a, dim=-1) for a in alphas]).mean()


class DARTS(AlphaSearch):
    """The one-shot loop plus alpha (:class:`~archsearch.oneshot.alphas.AlphaSearch`), stepped
    by its architecture gradient."""

    config: DARTSConfig

    def __init__(self, estimator: SupernetEstimator, config: DARTSConfig, seed: int = 0) -> None:
        super().__init__(estimator, config, seed)
        if config.max_skips is not None and not hasattr(self.space, "derive_capped"):
            raise UserError(f"max_skips: space {self.space.name!r} has no capped derive "
                            "(darts and nb201 have one); leave max_skips unset")
        if not config.none_in_derive and "include_none" not in inspect.signature(
                self.space.derive).parameters:  # type: ignore[attr-defined]
            raise UserError(f"none_in_derive: space {self.space.name!r} never derives none "
                            "(nb201 does, by default); leave none_in_derive unset")
        if config.arch_start_epoch >= config.epochs:
            log.warning("%s: arch_start_epoch %d >= epochs %d: alpha never steps",
                        type(self).__name__, config.arch_start_epoch, config.epochs)
        device = getattr(estimator, "device", torch.device("cpu"))
        arch = [*self.alphas, *self.extra_parameters(self.init_generator, device)]
        self.optimizer = config.adam(arch)
        self.architect = Architect(estimator, arch, self.path, config.order, config.unrolled_r)

    def extra_parameters(self, generator: torch.Generator,
                         device: torch.device) -> list[torch.nn.Parameter]:
        """Architecture parameters besides alpha (none; PC-DARTS: beta), drawn from alpha's
        generator after alpha, stepped with alpha by its optimizer on its gradients."""
        del generator, device
        return []

    def alpha_step(self, train: Any, val: Any) -> None:
        """One Adam step of alpha on the validation batch (order 2: through an unrolled weight
        step on the training batch), from epoch ``arch_start_epoch`` on (the validation batch
        is drawn either way, as PC-DARTS' official loop draws it)."""
        if self.epoch < self.config.arch_start_epoch:
            return
        for param, grad in zip(self.architect.alphas, self.architect.gradients(train, val)):
            param.grad = grad
        if self.config.beta_decay > 0:
            weight = self.config.beta_decay * self.epoch / max(self.epochs - 1, 1)
            for alpha, grad in zip(self.alphas, torch.autograd.grad(
                    weight * beta_regulariser(self.alphas), self.alphas)):
                alpha.grad = alpha.grad + grad
        self.optimizer.step()

    def train_epoch(self) -> dict[str, Any]:
        for _ in range(self.estimator.steps_per_epoch):
            train, val = self.estimator.batch("train"), self.estimator.batch("val")
            self.alpha_step(train, val)  # alpha first, as the official code
            self.estimator.train_step(self.path(detach=True), train)
        return self.estimator.epoch_stats()

    def current_arch(self) -> Architecture:
        """``space.derive`` of softmax(alpha), or with ``max_skips`` its capped derive (with
        ``none_in_derive=False``, ``none`` left out of either)."""
        space: Any = self.space
        options = {} if self.config.none_in_derive else {"include_none": False}
        if self.config.max_skips is None:
            return space.derive(self.weights(), **options)
        return space.derive_capped(self.weights(), self.config.max_skips, **options)

    def scored_paths(self) -> dict[str, Any]:
        """The relaxed supernet (``relaxed_score``: what the official ``infer`` reports)."""
        return {"relaxed_score": self.path(detach=True)}
