"""The one-hot encoding: every space's architectures as a fixed-length 0/1 vector."""

from __future__ import annotations

import numpy as np

from archsearch.spaces.base import Architecture, SearchSpace


def one_hot(space: SearchSpace, arch: Architecture) -> np.ndarray:
    """The concatenated one-hot vectors of each decision's choice (length: the sum of the
    decisions' option counts), float32. An architecture that makes fewer decisions (a
    shallower NAS-RL stack) leaves the rest all zero."""
    sizes = [d.n_options for d in space.decisions()]
    out = np.zeros(sum(sizes), dtype=np.float32)
    choices = np.asarray(space.encode(arch), dtype=np.int64)
    offsets = np.cumsum([0] + sizes[:-1])[:len(choices)]
    out[offsets + choices] = 1.0
    return out
