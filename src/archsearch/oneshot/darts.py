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

Not followed: the official ``infer`` scores the relaxed supernet on the whole validation half
every epoch, in evaluation mode (BatchNorm's running statistics); here ``derive_batches``
minibatches (CPU budgets), with the estimator's BatchNorm setting (by default batch
statistics, ``bn_track=False``; the weights and alpha train in training mode either way, as
in the official code). The official validation batches are augmented like the training ones
(both queues read one dataset with the training transform); here they are not.

Everything is resumable through the one-shot loop's checkpoint: the supernet, its optimizer,
schedule step and generator (the estimator's), alpha and its Adam state, the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from archsearch.config import Config, option
from archsearch.errors import UserError
from archsearch.nn.mixed import Relaxed
from archsearch.oneshot.base import OneShotSearch, SupernetEstimator
from archsearch.oneshot.darts_architect import Architect
from archsearch.spaces.base import Architecture

# the weights' side of the official search (cnn/train_search.py): the estimator's options
ESTIMATOR_DEFAULTS: dict[str, Any] = {
    "batch_size": 64, "lr": 0.025, "lr_min": 0.001, "momentum": 0.9, "nesterov": False,
    "weight_decay": 3e-4, "grad_clip": 5.0, "lr_schedule": "epoch", "val_fraction": 0.5,
}


@dataclass(frozen=True)
class DARTSConfig(Config):
    """DARTS' options: the architecture weights' (the weights' are the estimator's)."""

    epochs: int = option(50, "search epochs", minimum=1)
    order: int = option(1, "1: first-order DARTS (the code's default); 2: the one-step "
                        "unrolled second order (the paper's DARTS_V2)", 2, choices=(1, 2))
    alpha_lr: float = option(3e-4, "alpha's Adam learning rate", minimum=0)
    alpha_betas: tuple[float, float] = option((0.5, 0.999), "alpha's Adam betas")
    alpha_weight_decay: float = option(1e-3, "alpha's Adam weight decay", minimum=0)
    alpha_init: float = option(1e-3, "alpha starts at alpha_init * N(0, 1)", minimum=0)
    unrolled_r: float = option(0.01, "order 2: the finite difference's step is r / ||v||",
                               minimum=0)
    derive_batches: int = option(1, "validation minibatches the derived architecture and the "
                                 "relaxed supernet are scored on each epoch", minimum=1)
    beta_decay: float = option(0.0, "beta-DARTS' regulariser: lambda * mean over edges of "
                               "logsumexp(alpha) added to alpha's loss, lambda rising linearly "
                               "from 0 at the first epoch to this value at the last (0: off)",
                               minimum=0)

    def __post_init__(self) -> None:
        if self.order not in (1, 2):
            raise UserError(f"order must be 1 or 2 (DARTS' first or second order), not "
                            f"{self.order}")
        if len(self.alpha_betas) != 2 or not all(0 <= b < 1 for b in self.alpha_betas):
            raise UserError(f"alpha_betas must be two numbers in [0, 1), not "
                            f"{self.alpha_betas!r}")
        if self.unrolled_r <= 0:
            raise UserError(f"unrolled_r must be positive, not {self.unrolled_r}")


def beta_regulariser(alphas: list[torch.Tensor]) -> torch.Tensor:
    """beta-DARTS' (Ye et al., CVPR 2022) regulariser: the mean over every edge of every cell
    type of logsumexp(alpha) over its ops. Its gradient, softmax(alpha) / edges per edge,
    pulls the strongest ops down hardest and keeps alpha's spread small, so that no op's
    weight runs away (the skip connections' in DARTS' collapse)."""
    return torch.cat([torch.logsumexp(a, dim=-1) for a in alphas]).mean()


class DARTS(OneShotSearch):
    """The one-shot loop (:class:`~archsearch.oneshot.base.OneShotSearch`) plus alpha."""

    def __init__(self, estimator: SupernetEstimator, config: DARTSConfig, seed: int = 0) -> None:
        super().__init__(estimator, config.epochs)
        if not hasattr(self.space, "derive"):
            raise UserError(f"space {self.space.name!r} has no derive: DARTS searches spaces "
                            "with a relaxed supernet and a derive (darts, nb201)")
        self.config = config
        decisions = self.space.relaxed_decisions()
        device = getattr(estimator, "device", torch.device("cpu"))
        generator = torch.Generator().manual_seed(seed)  # alpha's init, on the CPU
        self.cells: list[tuple[str, int]] = list(self.space.relaxed_cells())
        self.alphas: list[torch.nn.Parameter] = []
        start = 0
        for name, n in self.cells:
            widths = {d.n_options for d in decisions[start:start + n]}
            if len(widths) != 1:
                raise UserError(f"{self.space.name}: the relaxed decisions of cell {name!r} "
                                "have different numbers of options: alpha needs one")
            alpha = config.alpha_init * torch.randn(n, widths.pop(), generator=generator)
            self.alphas.append(torch.nn.Parameter(alpha.to(device)))  # (edges, ops)
            start += n
        if start != len(decisions):
            raise UserError(f"{self.space.name}: relaxed_cells cover {start} of its "
                            f"{len(decisions)} relaxed decisions")
        arch = [*self.alphas, *self.extra_parameters(generator, device)]
        self.optimizer = torch.optim.Adam(arch, lr=config.alpha_lr,
                                          betas=tuple(config.alpha_betas),  # type: ignore[arg-type]
                                          weight_decay=config.alpha_weight_decay)
        self.architect = Architect(estimator, arch, self.path, config.order, config.unrolled_r)

    def extra_parameters(self, generator: torch.Generator,
                         device: torch.device) -> list[torch.nn.Parameter]:
        """Architecture parameters besides alpha (none; PC-DARTS: beta), drawn from alpha's
        generator after alpha, stepped with alpha by its optimizer on its gradients."""
        del generator, device
        return []

    # ---- paths ------------------------------------------------------------------------------

    def weights(self) -> list[torch.Tensor]:
        """softmax(alpha) per edge, every cell type in turn (detached)."""
        return [row for a in self.alphas for row in F.softmax(a.detach(), dim=-1)]

    def path(self, detach: bool = False) -> Relaxed:
        """The relaxed path of alpha: its row-wise softmax (with a graph to alpha unless
        ``detach``)."""
        rows = [row for a in self.alphas
                for row in F.softmax(a.detach() if detach else a, dim=-1)]
        return Relaxed(tuple(rows))

    # ---- the loop ---------------------------------------------------------------------------

    def alpha_step(self, train: Any, val: Any) -> None:
        """One Adam step of alpha on the validation batch (order 2: through an unrolled weight
        step on the training batch)."""
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

    def derive(self) -> tuple[Architecture, float, dict[str, Any]]:
        arch = self.space.derive(self.weights())  # type: ignore[attr-defined]
        derived, relaxed = self.estimator.score([arch, self.path(detach=True)],
                                                self.config.derive_batches).tolist()
        extra: dict[str, Any] = {"relaxed_score": relaxed, **self.entropies(),
                                 "skip_connects": self.skip_connects(arch)}
        return arch, derived, extra

    def entropies(self) -> dict[str, float]:
        """alpha's mean entropy per edge (nats), overall and per cell type (when several)."""
        per_cell = {name: float(torch.special.entr(F.softmax(a.detach(), -1)).sum(-1).mean())
                    for (name, _), a in zip(self.cells, self.alphas)}
        edges = sum(n for _, n in self.cells)
        out = {"alpha_entropy": sum(h * n for h, (_, n) in zip(per_cell.values(), self.cells))
               / edges}
        if len(per_cell) > 1:
            out |= {f"alpha_entropy_{name}": h for name, h in per_cell.items()}
        return out

    def skip_connects(self, arch: Architecture) -> int:
        """skip_connect ops of ``arch`` in its first cell (DARTS: the normal cell)."""
        n = self.cells[0][1]
        decisions = self.space.relaxed_decisions()[:n]
        choices = self.space.relaxed_choices(arch)[:n]
        return sum(1 for d, c in zip(decisions, choices)
                   if d.options is not None and d.options[c] == "skip_connect")

    # ---- resume ---------------------------------------------------------------------------

    def method_state(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(),
                "alphas": [a.detach().cpu() for a in self.alphas],
                "alpha_optimizer": self.optimizer.state_dict()}

    def load_method_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for alpha, saved in zip(self.alphas, state["alphas"]):
                alpha.copy_(saved)
        self.optimizer.load_state_dict(state["alpha_optimizer"])
