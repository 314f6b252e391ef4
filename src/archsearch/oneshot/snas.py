"""SNAS, Stochastic Neural Architecture Search (Xie et al., ICLR 2019) = the supernet run on a
soft Gumbel-softmax sample of alpha, weights and alpha stepped together on the training loss.

Follows the official code (SNAS-Series/SNAS-Series ``SNAS/train_search.py``,
``model_search.py``, ``utils.py``; the README's ``--snas --temp_annealing`` search):

- **alpha**: one matrix of logits per cell type (the code's ``normal_log_alpha``: "log alpha"
  is the parameter itself, not the log of a positive alpha); the code draws it from N(1, 0.01),
  here 0.01 * N(0, 1) (``alpha_init``: the same softmax, shifted logits).
- **the sample**: per step, per cell type, one soft sample per edge, ``Z = softmax((log_alpha +
  G) / tau)`` (no straight-through, no hard one-hot), shared by every cell of the type; every
  op runs, weighted by Z (:mod:`archsearch.oneshot.gumbel`; a draw with an inf or NaN is
  drawn again, as GDAS', which the SNAS code does not do).
- **single level**: each step, one forward and backward pass on the next *training* minibatch
  gives both gradients; the weights take their SGD step (the estimator's ``train_step``, whose
  backward reaches alpha through Z) and alpha its own. No validation batch is used to train
  (the code's ``valid_queue`` is CIFAR-10's test set, for monitoring).
- **alpha's optimizer**: the code's single-GPU branch uses plain SGD, lr 3e-4, no momentum or
  weight decay (``alpha_optimizer="sgd"``, the default here); the paper and the code's
  distributed branch Adam, lr 3e-4, betas (0.5, 0.999), weight decay 1e-3 (``"adam"``).
  alpha's gradient norm is clipped at 10 (the code's ``clip_grad_norm_(arch_parameters, 10.)``).
- **tau**: linear from 1 to 0.03. The code's ``Temp_Scheduler`` hard-codes 150 epochs whatever
  ``--epochs`` says and is stepped before the first epoch (epoch e trains at (e + 1) / 150 of
  the way); here the schedule spans the configured epochs, ``tau_max`` at the first and
  ``tau_min`` at the last (as GDAS').
- **resource penalty** (``resource_lambda``, default 0: off): ``resource_lambda * sum_edges
  Z . cost``, added to alpha's loss, where an op's cost is the parameters (millions) it holds
  in all the cells of its type (``supernet.option_params_m()``; ``none``, pools and identity
  cost 0). The code's reparametrised penalty mixes parameter size, FLOPs and memory access per
  cell (``0.43 * (2 size + flops / 4000 + mac / 100)``, averaged over cells) or, in the
  README's run (``--log_penalty``, lambda 1.5e-3), their logs: here only the parameters,
  linear.
- **the weights** (the estimator's options, the presets): as DARTS', SGD momentum 0.9 without
  Nesterov, lr 0.025 to 0.001 on a cosine stepped per epoch, weight decay 3e-4, clipping at 5,
  batch 64, on every training image but the estimator's validation split (which only scores
  the derived architecture).
- **the answer**: ``space.derive(softmax(alpha))`` of the last epoch, as DARTS'.

Not followed: the README's search-time drop path (0.3); SNAS' released cells keep every edge
(``genotype_edge_all``), here the space's derive (the DARTS space's top 2 per node). The NB201
numbers quoted for SNAS (DrNAS' ``201-space``) come from a bi-level reimplementation (DARTS'
architect over Gumbel weights, tau 10 to 1), not this single-level search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from archsearch.config import option
from archsearch.errors import UserError
from archsearch.nn.mixed import Relaxed
from archsearch.oneshot.base import SupernetEstimator
from archsearch.oneshot.darts import ESTIMATOR_DEFAULTS as DARTS_ESTIMATOR
from archsearch.oneshot.gumbel import GumbelConfig, GumbelSearch, soft_sample

# the weights of the official search (train_search.py's defaults): DARTS' on all training images
ESTIMATOR_DEFAULTS: dict[str, Any] = {k: v for k, v in DARTS_ESTIMATOR.items()
                                      if k != "val_fraction"}
ALPHA_OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class SNASConfig(GumbelConfig):
    """SNAS' options: alpha's, the temperature's and the resource penalty's."""

    epochs: int = option(150, "search epochs", minimum=1)
    alpha_init: float = option(0.01, "alpha starts at alpha_init * N(0, 1)", minimum=0)
    tau_max: float = option(1.0, "the Gumbel-softmax temperature at the first epoch",
                            minimum=0)
    tau_min: float = option(0.03, "the temperature at the last epoch (linear in between)",
                            minimum=0)
    alpha_optimizer: str = option("sgd", "sgd: plain SGD (the code's single-GPU branch); adam: "
                                  "Adam with alpha_betas and alpha_weight_decay (the paper's)",
                                  "adam", choices=ALPHA_OPTIMIZERS)
    alpha_grad_clip: float = option(10.0, "alpha's gradient norm is clipped at this",
                                    minimum=0)
    resource_lambda: float = option(0.0, "weight of the resource penalty: the expected "
                                    "parameters (millions) of the cells under the sample",
                                    minimum=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha_optimizer not in ALPHA_OPTIMIZERS:
            raise UserError(f"alpha_optimizer must be sgd or adam, not {self.alpha_optimizer!r}")
        if self.alpha_grad_clip <= 0:
            raise UserError(f"alpha_grad_clip must be positive, not {self.alpha_grad_clip}")


class SNAS(GumbelSearch):
    """Weights and alpha stepped on one training loss through a soft sample."""

    config: SNASConfig

    def __init__(self, estimator: SupernetEstimator, config: SNASConfig, seed: int = 0) -> None:
        super().__init__(estimator, config, seed)
        self.optimizer = (config.adam(self.alphas) if config.alpha_optimizer == "adam"
                          else torch.optim.SGD(self.alphas, lr=config.alpha_lr))
        self.costs = self.option_costs() if config.resource_lambda > 0 else None

    def option_costs(self) -> list[torch.Tensor]:
        """Per cell type, (edges, ops): the parameters (millions) each op holds in its cells."""
        measure = getattr(getattr(self.estimator, "model", None), "option_params_m", None)
        if measure is None:
            raise UserError(f"resource_lambda needs a supernet that counts its ops' parameters "
                            f"(darts, nb201); {self.space.name!r}'s does not")
        costs = torch.tensor(measure(), device=self.alphas[0].device)  # (decisions, ops)
        return list(costs.split([n for _, n in self.cells]))

    def sample(self) -> list[torch.Tensor]:
        """Z per cell type, (edges, ops), with a graph to alpha."""
        return [soft_sample(alpha, self.tau, self.generator) for alpha in self.alphas]

    def penalty(self, samples: list[torch.Tensor]) -> torch.Tensor:
        """sum over cell types and edges of Z . cost (needs resource_lambda > 0)."""
        assert self.costs is not None
        return torch.stack([(z * c).sum() for z, c in zip(samples, self.costs)]).sum()

    def step(self) -> None:
        batch = self.estimator.batch("train")
        samples = self.sample()
        for alpha in self.alphas:
            alpha.grad = None
        if self.costs is not None:  # first: the loss's backward frees the samples' graph
            (self.config.resource_lambda * self.penalty(samples)).backward(retain_graph=True)
        # one forward and backward: the weights' step; alpha's gradient of the same loss
        self.estimator.train_step(Relaxed(tuple(row for z in samples for row in z)), batch)
        torch.nn.utils.clip_grad_norm_(self.alphas, self.config.alpha_grad_clip)
        self.optimizer.step()
