"""Gumbel-softmax samples of alpha, and the loop GDAS and SNAS share around them.

A sample of one alpha matrix (edges, ops) is, row-wise, ``softmax((logits + G) / tau)`` with
``G = -log(E)``, ``E ~ Exp(1)`` (standard Gumbel noise; AutoDL writes it so, SNAS' code as
``-log(-log U)``, the same law); a draw whose noise or sample holds an inf or NaN (E = 0 or
rounding) is drawn again, as AutoDL's GDAS does (D-X-Y/AutoDL-Projects#99). The noise comes from
the method's own ``torch.Generator`` (seeded by the search's seed, on the CPU, then moved to
alpha's device), saved in the checkpoint: a resumed search draws what the uninterrupted one
would have.

- :func:`soft_sample`: SNAS' relaxed sample (logits = alpha itself);
- :func:`straight_through`: GDAS' hard sample (logits = log_softmax(alpha)): the one-hot of the
  soft sample's argmax in value, ``one_hot - probs.detach() + probs``, so that its gradient is
  the soft sample's;
- :func:`temperature`: tau linear in the epoch, ``tau_max`` at the first, ``tau_min`` at the last.

:class:`GumbelSearch` is the one-shot loop over alpha (:mod:`archsearch.oneshot.alphas`) with
that generator and schedule: ``train_epoch`` sets ``tau`` for the epoch and calls the method's
``step()`` once per minibatch of the estimator's epoch; the record adds ``tau``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from archsearch.config import option
from archsearch.errors import UserError
from archsearch.oneshot.alphas import AlphaConfig, AlphaSearch
from archsearch.oneshot.base import SupernetEstimator

SEED_SALT = 0x6A55  # the noise's generator differs from alpha's init's


def soft_sample(logits: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    """softmax((logits + G) / tau) per row (edges, ops), with a graph to ``logits``."""
    while True:
        noise = -torch.empty(logits.shape).exponential_(generator=generator).log()
        probs = F.softmax((logits + noise.to(logits.device)) / tau, dim=-1)
        if torch.isfinite(noise).all() and torch.isfinite(probs).all():
            return probs


def straight_through(alpha: torch.Tensor, tau: float, generator: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """GDAS' sample of ``alpha`` (edges, ops): (hard weights, one-hot in value with the soft
    sample's gradient; the chosen op per edge, (edges,))."""
    probs = soft_sample(F.log_softmax(alpha, dim=-1), tau, generator)
    index = probs.argmax(dim=-1)
    one_hot = torch.zeros_like(probs).scatter_(-1, index[:, None], 1.0)
    return one_hot - probs.detach() + probs, index


def temperature(epoch: int, epochs: int, tau_max: float, tau_min: float) -> float:
    """AutoDL's schedule, tau_max - (tau_max - tau_min) * epoch / (epochs - 1), written so that
    the ends are exact (tau_max throughout a 1-epoch search)."""
    f = epoch / (epochs - 1) if epochs > 1 else 0.0
    return (1 - f) * tau_max + f * tau_min


@dataclass(frozen=True)
class GumbelConfig(AlphaConfig):
    """AlphaConfig plus the temperature's schedule."""

    tau_max: float = option(10.0, "the Gumbel-softmax temperature at the first epoch", minimum=0)
    tau_min: float = option(0.1, "the temperature at the last epoch (linear in between)",
                            minimum=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.tau_min <= self.tau_max:
            raise UserError(f"the temperatures must satisfy 0 < tau_min <= tau_max, not "
                            f"tau_min={self.tau_min}, tau_max={self.tau_max}")


class GumbelSearch(AlphaSearch):
    """The loop of a Gumbel-sampling method: ``step()`` per minibatch, ``tau`` per epoch."""

    config: GumbelConfig

    def __init__(self, estimator: SupernetEstimator, config: GumbelConfig, seed: int = 0) -> None:
        super().__init__(estimator, config, seed)
        self.generator = torch.Generator().manual_seed(seed ^ SEED_SALT)
        self.tau = config.tau_max

    def step(self) -> None:
        raise NotImplementedError

    def train_epoch(self) -> dict[str, Any]:
        self.tau = temperature(self.epoch, self.epochs, self.config.tau_max,
                               self.config.tau_min)
        for _ in range(self.estimator.steps_per_epoch):
            self.step()
        return {**self.estimator.epoch_stats(), "tau": self.tau}

    def method_state(self) -> dict[str, Any]:
        return {**super().method_state(), "gumbel_generator": self.generator.get_state()}

    def load_method_state(self, state: dict[str, Any]) -> None:
        super().load_method_state(state)
        self.generator.set_state(state["gumbel_generator"])
