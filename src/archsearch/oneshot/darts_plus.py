"""DARTS+ (Liang et al., arXiv 1909.06035): DARTS that stops early, before the collapse.

DARTS' normal cell fills up with parameter-free skip connections the longer it searches (the
weights of skip edges grow because the supernet trains faster through them). DARTS+ stops the
search at the first epoch at which either

- **the skip rule**: the derived normal cell (DARTS space; NB201's one cell) holds
  ``skip_limit`` or more skip connections (the paper: 2), or
- **the stability rule**: the ranking of the architecture weights has not changed for
  ``stable_epochs`` epochs (the paper: 10): per edge, the order of the ops but ``none`` by
  their alpha, all edges of all cell types together, the same after each of the last
  ``stable_epochs`` epochs as after the one before them;

and answers the architecture derived at that epoch. Everything else is DARTS
(:mod:`archsearch.oneshot.darts`). The epoch and the rule that stopped the search are in its
last record (``stopped_by``: ``"skip"`` or ``"stable"``) and in ``stopped_at``; a search no rule
stopped runs its epochs and answers like DARTS.

There is no official code. Where the paper is silent, this follows the reading of
automl/ConfigurableOptimizer's early stopper for the skip rule (the skips of the derived
genotype, not of the supernet's alpha); ``min_epochs`` (default 0) lets neither rule fire
before that many epochs. "Learnable operations" in the paper's stability rule is read as every
op but ``none`` (which is never derived), not only the parametric ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from archsearch.config import option
from archsearch.oneshot.base import SupernetEstimator
from archsearch.oneshot.darts import DARTS, DARTSConfig


@dataclass(frozen=True)
class DARTSPlusConfig(DARTSConfig):
    """DARTS' options and the two stopping rules."""

    skip_limit: int = option(2, "stop when the derived normal cell has this many skip "
                             "connections (0: no skip rule)", minimum=0)
    stable_epochs: int = option(10, "stop when alpha's ranking has not changed for this many "
                                "epochs (0: no stability rule)", minimum=0)
    min_epochs: int = option(0, "epochs before either rule may stop the search", minimum=0)


def ranking(alphas: list[torch.Tensor], none_index: int = 0) -> tuple[tuple[int, ...], ...]:
    """Per edge (every cell type in turn), its ops but ``none`` from the strongest alpha to the
    weakest (ties by op index)."""
    out = []
    for alpha in alphas:
        for row in alpha.detach().cpu():
            ops = [j for j in range(len(row)) if j != none_index]
            out.append(tuple(sorted(ops, key=lambda j: (-float(row[j]), j))))
    return tuple(out)


def skip_rule(skip_connects: int, limit: int) -> bool:
    """DARTS+'s first rule: the normal cell holds ``limit`` skips or more (0: never)."""
    return limit > 0 and skip_connects >= limit


def stability_rule(rankings: list[Any], epochs: int) -> bool:
    """DARTS+'s second rule: the last ``epochs`` epochs' rankings equal the one before them,
    ``rankings[-epochs - 1:]`` all the same (0: never)."""
    return epochs > 0 and len(rankings) > epochs and len(set(rankings[-epochs - 1:])) == 1


class DARTSPlus(DARTS):
    """DARTS with DARTS+'s two stopping rules; see the module docstring."""

    config: DARTSPlusConfig

    def __init__(self, estimator: SupernetEstimator, config: DARTSPlusConfig,
                 seed: int = 0) -> None:
        super().__init__(estimator, config, seed)
        self.rankings: list[tuple[tuple[int, ...], ...]] = []  # after each epoch
        self.stopped_at: int | None = None
        self.none_index = next((j for j, op in enumerate(
            self.space.relaxed_decisions()[0].options or ()) if op == "none"), -1)

    def run_epoch(self) -> dict[str, Any]:
        record = super().run_epoch()
        self.rankings.append(ranking(self.alphas, self.none_index))
        rule = None
        if self.epoch >= self.config.min_epochs:
            if skip_rule(record["skip_connects"], self.config.skip_limit):
                rule = "skip"
            elif stability_rule(self.rankings, self.config.stable_epochs):
                rule = "stable"
        if rule is not None:
            record["stopped_by"] = rule
            self.stopped_at, self.epochs = self.epoch, self.epoch  # the loop ends here
        return record

    def method_state(self) -> dict[str, Any]:
        return {**super().method_state(), "rankings": [list(map(list, r))
                                                       for r in self.rankings],
                "stopped_at": self.stopped_at}

    def load_method_state(self, state: dict[str, Any]) -> None:
        super().load_method_state(state)
        self.rankings = [tuple(map(tuple, r)) for r in state["rankings"]]
        self.stopped_at = state["stopped_at"]
        if self.stopped_at is not None:
            self.epochs = self.stopped_at
