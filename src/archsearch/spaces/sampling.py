"""Sampling a small space uniformly over its isomorphism classes instead of its encodings.

Many encodings of a cell space compute the same network (an edge whose output nobody reads, a
``none`` that cuts a path): in NAS-Bench-201 the 15,625 cells fall into 6,466 classes of
``iso_key``, and the small degenerate ones hold many encodings each. A supernet trained on
uniformly drawn encodings therefore trains those small networks most. Drawing a class
uniformly first (Ning et al., "Evaluating Efficient Performance Estimators of Neural
Architectures", NeurIPS 2021: "de-isomorphic sampling") spreads the training evenly over
distinct networks.
"""

from __future__ import annotations

import itertools

import numpy as np

from archsearch.errors import ArchitectureError, UserError
from archsearch.spaces.base import Architecture, SearchSpace


class IsomorphismClassSampler:
    """``sample(rng)``: a uniformly drawn ``iso_key`` class, then a uniform member of it.

    The space is enumerated once, so it must hold at most ``limit`` encodings."""

    def __init__(self, space: SearchSpace, limit: int = 1_000_000) -> None:
        if space.size() > limit:
            raise UserError(
                f"space {space.name!r} has {space.size():,} architectures, too many to sample "
                f"by isomorphism class (at most {limit:,}); sample uniformly over its encodings "
                "instead (ENAS: shared_sampling=uniform)"
            )
        classes: dict[str, list[Architecture]] = {}
        ranges = [range(d.n_options) for d in space.decisions()]
        for choices in itertools.product(*ranges):
            try:
                arch = space.decode(choices)
            except ArchitectureError:
                continue
            classes.setdefault(space.iso_key(arch), []).append(arch)
        self.classes = list(classes.values())

    def __len__(self) -> int:
        return len(self.classes)

    def sample(self, rng: np.random.Generator) -> Architecture:
        members = self.classes[int(rng.integers(len(self.classes)))]
        return members[int(rng.integers(len(members)))]
