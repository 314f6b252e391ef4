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

from dataclasses import dataclass
from typing import Any

from archsearch.config import option
from archsearch.errors import UserError
from archsearch.oneshot.alphas import AlphaConfig, AlphaSearch
from archsearch.oneshot.base import SupernetEstimator
from archsearch.oneshot.darts_architect import Architect

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

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.order not in (1, 2):
            raise UserError(f"order must be 1 or 2 (DARTS' first or second order), not "
                            f"{self.order}")
        if self.unrolled_r <= 0:
            raise UserError(f"unrolled_r must be positive, not {self.unrolled_r}")


class DARTS(AlphaSearch):
    """The one-shot loop plus alpha (:class:`~archsearch.oneshot.alphas.AlphaSearch`), stepped
    by its architecture gradient."""

    config: DARTSConfig

    def __init__(self, estimator: SupernetEstimator, config: DARTSConfig, seed: int = 0) -> None:
        super().__init__(estimator, config, seed)
        self.optimizer = config.adam(self.alphas)
        self.architect = Architect(estimator, self.alphas, self.path, config.order,
                                   config.unrolled_r)

    def alpha_step(self, train: Any, val: Any) -> None:
        """One Adam step of alpha on the validation batch (order 2: through an unrolled weight
        step on the training batch)."""
        for alpha, grad in zip(self.alphas, self.architect.gradients(train, val)):
            alpha.grad = grad
        self.optimizer.step()

    def train_epoch(self) -> dict[str, Any]:
        for _ in range(self.estimator.steps_per_epoch):
            train, val = self.estimator.batch("train"), self.estimator.batch("val")
            self.alpha_step(train, val)  # alpha first, as the official code
            self.estimator.train_step(self.path(detach=True), train)
        return self.estimator.epoch_stats()

    def scored_paths(self) -> dict[str, Any]:
        """The relaxed supernet (``relaxed_score``: what the official ``infer`` reports)."""
        return {"relaxed_score": self.path(detach=True)}
