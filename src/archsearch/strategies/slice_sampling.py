"""Univariate slice sampling, one coordinate at a time (Neal, "Slice sampling", Annals of
Statistics 2003): the Markov chain the ``bo`` strategy uses to integrate out its GP's
hyperparameters (as Snoek, Larochelle & Adams, NeurIPS 2012, do).

One update of coordinate ``i`` at the point ``x`` (log density ``log f``):

1. the slice level: ``log y = log f(x) - e``, ``e ~ Exponential(1)`` (``y ~ U(0, f(x))``);
2. stepping out (Neal's Fig. 3): an interval of ``width`` placed at random around ``x_i``,
   grown by ``width`` at either end while that end is inside the slice, at most
   ``max_steps`` steps in all, split at random between the two ends;
3. shrinkage (Neal's Fig. 5): draw uniformly from the interval; accept a point inside the slice,
   else move the interval's end on the rejected point's side to it, and draw again.

A sweep updates every coordinate in order. The density may be unnormalised and may be
``-inf`` (outside its support); the starting point must have a finite log density. Every draw
comes from the numpy Generator passed in. Deviation: after ``max_shrinks`` rejections (only
reachable when floating point has shrunk the interval onto ``x_i``) the coordinate stays put.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

LogDensity = Callable[[np.ndarray], float]


def slice_update(log_density: LogDensity, x: np.ndarray, log_fx: float, i: int,
                 rng: np.random.Generator, width: float = 1.0, max_steps: int = 50,
                 max_shrinks: int = 200) -> tuple[np.ndarray, float]:
    """One slice-sampling update of coordinate ``i``: the new point and its log density."""
    level = log_fx - rng.exponential()

    def at(value: float) -> tuple[np.ndarray, float]:
        point = x.copy()
        point[i] = value
        return point, float(log_density(point))

    start = float(x[i])
    left = start - width * rng.uniform()
    right = left + width
    left_steps = int(np.floor(max_steps * rng.uniform()))
    right_steps = max_steps - 1 - left_steps
    while left_steps > 0 and at(left)[1] > level:
        left -= width
        left_steps -= 1
    while right_steps > 0 and at(right)[1] > level:
        right += width
        right_steps -= 1
    for _ in range(max_shrinks):
        candidate, log_fc = at(left + rng.uniform() * (right - left))
        if log_fc > level:
            return candidate, log_fc
        if candidate[i] < start:
            left = float(candidate[i])
        else:
            right = float(candidate[i])
    return x, log_fx


def slice_sample(log_density: LogDensity, start: np.ndarray, rng: np.random.Generator,
                 samples: int, burn_in: int = 0, thin: int = 1, width: float = 1.0,
                 max_steps: int = 50) -> np.ndarray:
    """``samples`` points of a coordinate-wise slice-sampling chain from ``start``: ``burn_in``
    sweeps discarded, then one point kept every ``thin`` sweeps; shape (samples, dimension)."""
    if samples < 1 or burn_in < 0 or thin < 1 or width <= 0 or max_steps < 1:
        raise ValueError("samples, thin and max_steps must be at least 1, burn_in not "
                         "negative, width positive")
    x = np.array(start, dtype=np.float64).reshape(-1)
    log_fx = float(log_density(x))
    if not np.isfinite(log_fx):
        raise ValueError(f"the chain must start where the log density is finite, not {log_fx}")
    kept = []
    for sweep in range(burn_in + samples * thin):
        for i in range(len(x)):
            x, log_fx = slice_update(log_density, x, log_fx, i, rng, width, max_steps)
        if sweep >= burn_in and (sweep - burn_in + 1) % thin == 0:
            kept.append(x.copy())
    return np.stack(kept)
