"""P-DARTS, progressive DARTS (Chen et al., ICCV 2019) = DARTS (:mod:`archsearch.oneshot.darts`)
in stages whose search network deepens while each edge's candidate ops are pruned.

Follows the official code (chenxin061/pdarts ``train_search.py``, ``model_search.py``):

- **stages** (``num_to_keep``, ``add_cells``, ``skip_dropout``: one entry a stage, 3 by
  default): each runs ``epochs`` epochs (the official ``--epochs 25`` a stage, so 75 in all) on a
  new supernet with ``add_cells`` more cells than the first (the official ``--layers 5
  --add_layers 6 --add_layers 12``: 5, 11, 17), new weights, a new weights' optimizer and cosine
  (the estimator, rebuilt by ``stage_estimator``), and new alpha (``alpha_init`` * N(0, 1))
  over the ops its edges still hold, with a new Adam.
- **pruning**: after stage s < last, each edge keeps the ``num_to_keep[s]`` ops of largest
  softmax(alpha) among those it held (official ``get_min_k``: the weakest dropped one by one,
  ``none`` among them; ties drop the op held first): 8 -> 5 -> 3 ops an edge. The next supernet
  builds only those (the supernet option ``edge_ops``); its paths give the others zero weight
  and leave them out of ``active``.
- **skip dropout**: dropout on every identity ``skip_connect``'s output in training mode, at
  stage s's rate r (the README's CIFAR-10 rates 0.1, 0.4, 0.7; the code's default is 0), for
  stage epoch e (from 0) of E: ``r (E - e - 1) / E`` during the first ``arch_start_epoch`` (10)
  epochs, which train only the weights (no validation batch drawn), then ``r exp(-0.2 (e -
  10))`` (``dropout_decay``) while alpha steps too. Its masks come from the estimator's
  generator, so a resumed search draws the same ones.
- **each step** as DARTS' first order: one Adam step of alpha on a validation batch (lr 6e-4,
  betas (0.5, 0.999), weight decay 1e-3), its gradient's norm clipped at 5 (the official
  ``clip_grad_norm_`` on the arch parameters), then one weight step. The weights (the
  estimator's options, :data:`OFFICIAL_WEIGHTS`): SGD momentum 0.9, lr 0.025 on a per-epoch
  cosine to 0, weight decay 3e-4, clip 5, batch 96, half the training images for alpha.
- **the answer**: the last stage's genotype, as the official final rule: per edge its
  strongest op but ``none``, per node the 2 edges whose op weighs most (DARTS' derive of the
  softmax over the held ops), then at most ``max_skips`` (2) skip connections in the normal
  cell: the weakest skip's weight zeroed and the cell derived again until no more remain
  (``DARTSSpace.derive_capped``); a cell with fewer keeps them. The official script logs the
  genotypes of every cap from the count down to 0; the author keeps 2 (chenxin061/pdarts#21).

Every epoch derives that way (the record's ``derived``, ``skip_connects``; the count before the
cap in ``uncapped_skip_connects``) and adds ``stage`` (from 1), ``cells``, ``ops_per_edge`` and
``skip_dropout`` to DARTS' fields. Differences: alpha's validation batches are drawn at random,
as DARTS' are here (the official loop walks a shuffled queue); the first stage's alpha is
DARTS' (the run's seed), stage s's is drawn from seed + 1000 s and its estimator seeded
likewise (the official code continues one global generator); ties between equal weights are
broken as DARTS' derive does (the official sort keeps the later edge); the official
``add_width`` (default 0) is not offered. The DARTS space only: NB201's cell has a fixed depth,
and it is refused rather than staged at one depth.

Resumable across stages: the checkpoint holds the stage and its edges' ops, from which the
stage's supernet, alpha and optimizers are rebuilt before their states are loaded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from archsearch.config import option
from archsearch.errors import UserError
from archsearch.nn.mixed import Relaxed
from archsearch.oneshot.base import SupernetEstimator
from archsearch.oneshot.darts import DARTS, ESTIMATOR_DEFAULTS, DARTSConfig
from archsearch.oneshot.darts_architect import Architect
from archsearch.spaces.base import Architecture

log = logging.getLogger(__name__)

# the weights' side of the official search (train_search.py); the CPU preset batches 64
OFFICIAL_WEIGHTS: dict[str, Any] = {**ESTIMATOR_DEFAULTS, "batch_size": 96, "lr_min": 0.0}
STAGE_SEED = 1000  # stage s draws its alpha and its estimator from seed + STAGE_SEED * s
EdgeOps = tuple[tuple[int, ...], ...]  # per relaxed decision, the option indices it holds
# (stage, cells, edge_ops) -> the stage's estimator
StageEstimator = Callable[[int, int, EdgeOps], SupernetEstimator]


@dataclass(frozen=True)
class PDARTSConfig(DARTSConfig):
    """DARTS' options (first order) and the stages'."""

    epochs: int = option(25, "search epochs of each stage (the official --epochs)", minimum=1)
    order: int = option(1, "first order only (the official search)", choices=(1,))
    alpha_lr: float = option(6e-4, "alpha's Adam learning rate", minimum=0)
    alpha_grad_clip: float = option(5.0, "alpha's gradient norm is clipped to this",
                                    minimum=0)
    add_cells: tuple[int, ...] = option((0, 6, 12), "per stage, cells added to the "
                                        "supernet's (the official --add_layers)")
    num_to_keep: tuple[int, ...] = option((5, 3, 1), "per stage, the ops each edge keeps "
                                          "after it (the last: the genotype's 1)")
    skip_dropout: tuple[float, ...] = option((0.1, 0.4, 0.7), "per stage, the initial "
                                             "dropout rate on skip_connect's output")
    arch_start_epoch: int = option(10, "epochs of each stage that train only the weights "
                                   "(the official eps_no_arch)", minimum=0)
    dropout_decay: float = option(0.2, "then the rate decays by exp(-dropout_decay) an epoch",
                                  minimum=0)
    max_skips: int = option(2, "skip connections the normal cell keeps at most (8: all)",
                            minimum=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.order != 1:
            raise UserError(f"p-darts is first order (as the official search): order must "
                            f"be 1, not {self.order}")
        stages = len(self.num_to_keep)
        if stages < 1 or len(self.add_cells) != stages or len(self.skip_dropout) != stages:
            raise UserError(f"add_cells, num_to_keep and skip_dropout give one value a stage: "
                            f"{len(self.add_cells)}, {stages} and {len(self.skip_dropout)} "
                            "given")
        if self.add_cells[0] != 0 or min(self.add_cells) < 0:
            raise UserError(f"add_cells must start at 0 (the first stage is the supernet's "
                            f"cells) and add none negative, not {self.add_cells}")
        keep = self.num_to_keep
        if keep[-1] != 1 or any(a <= b for a, b in zip(keep, keep[1:])) or min(keep[:-1],
                                                                               default=3) < 3:
            raise UserError(f"num_to_keep must fall to 1 (the genotype's op) from 3 or more "
                            f"ops, so that the skip cap finds another op, not {keep}")
        if not all(0 <= p < 1 for p in self.skip_dropout):
            raise UserError(f"skip_dropout rates must be in [0, 1), not {self.skip_dropout}")


def skip_dropout_rate(rate: float, epoch: int, epochs: int, arch_start: int,
                      decay: float) -> float:
    """The official schedule at stage epoch ``epoch`` (from 0) of ``epochs``."""
    if epoch < arch_start:
        return rate * (epochs - epoch - 1) / epochs
    return rate * math.exp(-decay * (epoch - arch_start))


def keep_strongest(probs: Sequence[float], held: Sequence[int], keep: int) -> tuple[int, ...]:
    """The ``keep`` ops of ``held`` (probs[j]: held[j]'s) of largest weight, in held order;
    the weakest dropped first, ties dropping the op held first (the official get_min_k)."""
    weakest_first = sorted(range(len(held)), key=lambda j: (probs[j], j))
    return tuple(held[j] for j in sorted(weakest_first[len(held) - keep:]))


def stage_estimators(section: Mapping[str, Any], space: Any) -> StageEstimator:
    """The estimator of a stage from the run's resolved estimator section: its supernet at the
    stage's depth holding the stage's ops, seeded ``seed + STAGE_SEED * stage``."""
    from archsearch.registry import ESTIMATORS

    options = {k: v for k, v in section.items() if k != "name"}

    def build(stage: int, cells: int, edge_ops: EdgeOps) -> SupernetEstimator:
        supernet = {**(options.get("supernet") or {}), "cells": cells,
                    "edge_ops": [list(ops) for ops in edge_ops]}
        return ESTIMATORS.create(section["name"], space=space, **{  # type: ignore[return-value]
            **options, "supernet": supernet,
            "seed": options.get("seed", 0) + STAGE_SEED * stage})

    return build


class PDARTS(DARTS):
    """DARTS in stages, pruned and deepened; see the module docstring. ``held``: per relaxed
    decision the ops its edge holds this stage; alpha is (edges, ops held) per cell type."""

    config: PDARTSConfig

    def __init__(self, estimator: SupernetEstimator, config: PDARTSConfig, seed: int = 0,
                 stage_estimator: StageEstimator | None = None) -> None:
        super().__init__(estimator, config, seed)
        if not getattr(self.space, "prunable_supernet", False):
            raise UserError(f"p-darts searches the darts space (a supernet that deepens and "
                            f"holds fewer ops a stage); space {self.space.name!r} cannot")
        stages = len(config.num_to_keep)
        if stages > 1 and stage_estimator is None:
            raise UserError("p-darts needs a stage_estimator to build each later stage")
        if getattr(estimator, "epochs", config.epochs) != config.epochs:
            log.warning("p-darts: the estimator's cosine spans %s epochs, a stage %d",
                        getattr(estimator, "epochs", None), config.epochs)
        if config.arch_start_epoch >= config.epochs:
            log.warning("p-darts: arch_start_epoch %d >= epochs %d: alpha never steps",
                        config.arch_start_epoch, config.epochs)
        self.stage_estimator, self.seed = stage_estimator, seed
        self.epochs = config.epochs * stages
        model = estimator.model  # type: ignore[attr-defined]
        self.base_cells = len(model.cells)
        self.n_options = self.space.relaxed_decisions()[0].n_options
        self.stage = 0
        self.held: EdgeOps = tuple(tuple(range(d.n_options))
                                   for d in self.space.relaxed_decisions())
        if getattr(model, "edge_ops", self.held) != self.held:
            raise UserError("p-darts prunes the supernet's ops itself: drop edge_ops from "
                            "supernet={...}")
        self.begin_alpha()

    # ---- stages -----------------------------------------------------------------------------

    def begin_alpha(self) -> None:
        """Index alpha's columns by the held ops; clip its gradient before each Adam step."""
        device = self.alphas[0].device
        starts = [sum(n for _, n in self.cells[:c]) for c in range(len(self.cells))]
        self.index = [torch.tensor(self.held[s:s + n], device=device)  # (edges, ops held)
                      for s, (_, n) in zip(starts, self.cells)]
        self.optimizer.register_step_pre_hook(self.clip_alpha_gradient)

    def clip_alpha_gradient(self, *_: Any) -> None:
        """The official ``clip_grad_norm_`` of the arch parameters' gradient, before Adam."""
        torch.nn.utils.clip_grad_norm_(self.alphas, self.config.alpha_grad_clip)

    def begin_stage(self, stage: int, held: Sequence[Sequence[int]]) -> None:
        """Stage ``stage``: its supernet (deeper, holding ``held``), fresh alpha and Adam."""
        assert self.stage_estimator is not None
        self.stage, self.held = stage, tuple(tuple(ops) for ops in held)
        cells = self.base_cells + self.config.add_cells[stage]
        self.estimator = self.stage_estimator(stage, cells, self.held)
        generator = torch.Generator().manual_seed(self.seed + STAGE_SEED * stage)
        width, device = len(self.held[0]), getattr(self.estimator, "device", None)
        self.alphas = [torch.nn.Parameter((self.config.alpha_init * torch.randn(
            n, width, generator=generator)).to(device)) for _, n in self.cells]
        beta1, beta2 = self.config.alpha_betas
        self.optimizer = torch.optim.Adam(self.alphas, lr=self.config.alpha_lr,
                                          betas=(beta1, beta2),
                                          weight_decay=self.config.alpha_weight_decay)
        self.architect = Architect(self.estimator, self.alphas, self.path, 1)
        self.begin_alpha()

    def pruned(self) -> list[tuple[int, ...]]:
        """Per edge, the ``num_to_keep`` of this stage's ops of largest softmax(alpha)."""
        keep = self.config.num_to_keep[self.stage]
        rows = [row.tolist() for a in self.alphas for row in F.softmax(a.detach(), -1).cpu()]
        return [keep_strongest(row, ops, keep) for row, ops in zip(rows, self.held)]

    # ---- paths ------------------------------------------------------------------------------

    def spread(self, detach: bool) -> list[torch.Tensor]:
        """softmax(alpha) over each edge's held ops, zeros for the others: (options,) each."""
        rows: list[torch.Tensor] = []
        for alpha, index in zip(self.alphas, self.index):
            w = F.softmax(alpha.detach() if detach else alpha, dim=-1)  # (edges, ops held)
            full = w.new_zeros(w.shape[0], self.n_options)  # (edges, options)
            rows += full.scatter(1, index, w).unbind()
        return rows

    def weights(self) -> list[torch.Tensor]:
        return self.spread(detach=True)

    def path(self, detach: bool = False) -> Relaxed:
        """The relaxed path of alpha over the held ops, which alone are computed."""
        return Relaxed(tuple(self.spread(detach)), active=self.held)

    # ---- the loop ---------------------------------------------------------------------------

    def train_epoch(self) -> dict[str, Any]:
        stage, epoch = divmod(self.epoch, self.config.epochs)
        if stage != self.stage:
            self.begin_stage(stage, self.pruned())
        c = self.config
        p = skip_dropout_rate(c.skip_dropout[stage], epoch, c.epochs, c.arch_start_epoch,
                              c.dropout_decay)
        model = self.estimator.model  # type: ignore[attr-defined]
        model.set_skip_dropout(p, self.estimator.generator)  # type: ignore[attr-defined]
        if epoch >= c.arch_start_epoch:
            stats = super().train_epoch()
        else:  # the weights only
            for _ in range(self.estimator.steps_per_epoch):
                self.estimator.train_step(self.path(detach=True))
            stats = self.estimator.epoch_stats()
        return {"stage": stage + 1, "cells": len(model.cells),
                "ops_per_edge": len(self.held[0]), "skip_dropout": p, **stats}

    def derive(self) -> tuple[Architecture, float, dict[str, Any]]:
        weights, space = self.weights(), self.space
        arch = space.derive_capped(weights, self.config.max_skips)  # type: ignore[attr-defined]
        derived, relaxed = self.estimator.score([arch, self.path(detach=True)],
                                                self.config.derive_batches).tolist()
        uncapped = space.derive(weights)  # type: ignore[attr-defined]
        return arch, derived, {"relaxed_score": relaxed, **self.entropies(),
                               "skip_connects": self.skip_connects(arch),
                               "uncapped_skip_connects": self.skip_connects(uncapped)}

    # ---- resume ---------------------------------------------------------------------------

    def method_state(self) -> dict[str, Any]:
        return {**super().method_state(), "stage": self.stage, "seed": self.seed,
                "held": [list(ops) for ops in self.held]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The saved stage's supernet and alpha shapes first, then their states."""
        self.seed = state["seed"]
        held = tuple(tuple(ops) for ops in state["held"])
        if (state["stage"], held) != (self.stage, self.held):
            self.begin_stage(state["stage"], held)
        super().load_state_dict(state)
