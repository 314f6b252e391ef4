"""A relaxed node's sum as its supernet gathers it: maps with their weights, and BatchNorm
outputs not yet computed (:class:`~archsearch.nn.normalized_sum.Normalized`); :meth:`Terms.sum`
takes it in one pass where a native kernel applies (:mod:`archsearch.nn.normalized_sum`,
:mod:`archsearch.nn.weighted_sum`), else through PyTorch, with the same values up to float
rounding."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from archsearch.nn import normalized_sum
from archsearch.nn.normalized_sum import Normalized
from archsearch.nn.ops import scaled_batch_norm
from archsearch.nn.weighted_sum import weighted_sum


@dataclass
class Terms:
    """Maps and their weights (None: 1), and BatchNorm outputs to be computed."""

    maps: list[torch.Tensor] = field(default_factory=list)
    weights: list[torch.Tensor | None] = field(default_factory=list)
    norms: list[Normalized] = field(default_factory=list)

    def add(self, term: torch.Tensor | Normalized, weight: torch.Tensor | None = None) -> None:
        """A map (times ``weight``), or a BatchNorm output (its scale in it)."""
        if isinstance(term, Normalized):
            assert weight is None, "a BatchNorm output carries its scale"
            self.norms.append(term)
            return
        self.maps.append(term)
        self.weights.append(weight)

    def sum(self) -> torch.Tensor | None:
        """The node's sum (None: no terms)."""
        if normalized_sum.native_applies(self.maps, self.weights, self.norms):
            return normalized_sum.normalized_sum(self.maps, self.weights, self.norms)
        maps = [*self.maps, *(scaled_batch_norm(n.bn, n.z, n.scale) for n in self.norms)]
        if not maps:
            return None
        return weighted_sum(maps, [*self.weights, *[None] * len(self.norms)])
