"""What the differentiable one-shot methods (DARTS, GDAS, SNAS) share: architecture weights alpha
over a relaxed supernet, and the derived architecture they answer.

- **alpha**: one matrix per cell type (``space.relaxed_cells()``: DARTS' normal and reduction
  cells, 14 edges x 8 ops; NB201's one cell, 6 x 5), initialised to ``alpha_init`` * N(0, 1)
  from a generator seeded by the search's seed (on the CPU, then moved to the estimator's
  device); every cell of a type shares its type's matrix.
- **the answer** (``derive``): ``space.derive`` of softmax(alpha) (DARTS space: the top-2 edges
  per node by their strongest non-``none`` op; NB201: the argmax per edge, ``none`` included),
  the genotype of the last epoch, as every official DARTS-family script reports; its score on
  ``derive_batches`` validation minibatches through the supernet, and the scores of any further
  paths a method names (``scored_paths``: DARTS' relaxed supernet) on the same minibatches.
- **per-epoch record**: alpha's mean entropy per edge (``alpha_entropy``, and per cell type
  when there are several) and the skip connections of the derived first cell
  (``skip_connects``: DARTS' normal cell, whose filling up with skips is the known collapse).
- **resume**: the config, alpha and its optimizer's state (``self.optimizer``, which a method
  makes) in the one-shot loop's checkpoint.
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
from archsearch.spaces.base import Architecture


@dataclass(frozen=True)
class AlphaConfig(Config):
    """The options every alpha-based method has (a method's Config derives from it)."""

    epochs: int = option(50, "search epochs", minimum=1)
    alpha_lr: float = option(3e-4, "alpha's learning rate", minimum=0)
    alpha_betas: tuple[float, float] = option((0.5, 0.999), "alpha's Adam betas")
    alpha_weight_decay: float = option(1e-3, "alpha's Adam weight decay", minimum=0)
    alpha_init: float = option(1e-3, "alpha starts at alpha_init * N(0, 1)", minimum=0)
    derive_batches: int = option(1, "validation minibatches the derived architecture (DARTS: "
                                 "and the relaxed supernet) is scored on each epoch", minimum=1)

    def __post_init__(self) -> None:
        if len(self.alpha_betas) != 2 or not all(0 <= b < 1 for b in self.alpha_betas):
            raise UserError(f"alpha_betas must be two numbers in [0, 1), not "
                            f"{self.alpha_betas!r}")

    def adam(self, alphas: list[torch.nn.Parameter]) -> torch.optim.Adam:
        """Adam over ``alphas`` with these options (DARTS', GDAS')."""
        return torch.optim.Adam(alphas, lr=self.alpha_lr,
                                betas=tuple(self.alpha_betas),  # type: ignore[arg-type]
                                weight_decay=self.alpha_weight_decay)


class AlphaSearch(OneShotSearch):
    """The one-shot loop plus alpha; a method adds its steps (``train_epoch``) and
    ``self.optimizer``."""

    optimizer: torch.optim.Optimizer

    def __init__(self, estimator: SupernetEstimator, config: AlphaConfig, seed: int = 0) -> None:
        super().__init__(estimator, config.epochs)
        name = type(self).__name__
        if not hasattr(self.space, "derive"):
            raise UserError(f"space {self.space.name!r} has no derive: {name} searches spaces "
                            "with a relaxed supernet and a derive (darts, nb201)")
        self.config = config
        decisions = self.space.relaxed_decisions()
        device = getattr(estimator, "device", torch.device("cpu"))
        generator = torch.Generator().manual_seed(seed)  # alpha's init, on the CPU
        self.cells: list[tuple[str, int]] = list(self.space.relaxed_cells())
        self.alphas: list[torch.nn.Parameter] = []
        start = 0
        for cell, n in self.cells:
            widths = {d.n_options for d in decisions[start:start + n]}
            if len(widths) != 1:
                raise UserError(f"{self.space.name}: the relaxed decisions of cell {cell!r} "
                                "have different numbers of options: alpha needs one")
            alpha = config.alpha_init * torch.randn(n, widths.pop(), generator=generator)
            self.alphas.append(torch.nn.Parameter(alpha.to(device)))  # (edges, ops)
            start += n
        if start != len(decisions):
            raise UserError(f"{self.space.name}: relaxed_cells cover {start} of its "
                            f"{len(decisions)} relaxed decisions")
        # alpha's init generator, for further architecture parameters drawn after alpha
        # (PC-DARTS' beta)
        self.init_generator = generator

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

    # ---- the answer -------------------------------------------------------------------------

    def scored_paths(self) -> dict[str, Any]:
        """Record key -> a path scored each epoch with the derived architecture (none here)."""
        return {}

    def current_arch(self) -> Architecture:
        """The architecture of alpha now: ``space.derive`` of softmax(alpha)."""
        return self.space.derive(self.weights())  # type: ignore[attr-defined]

    def derive(self) -> tuple[Architecture, float, dict[str, Any]]:
        arch = self.current_arch()
        others = self.scored_paths()
        derived, *scores = self.estimator.score([arch, *others.values()],
                                                self.config.derive_batches).tolist()
        extra: dict[str, Any] = {**dict(zip(others, scores)), **self.entropies(),
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
