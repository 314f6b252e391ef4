"""Training-free estimators: score an untrained network from one minibatch.

One small file per proxy, each registering itself in ``PROXIES``. ``score_network`` builds
nothing: it takes one freshly built network and scores it with every requested proxy,
sharing the expensive passes (see ``base.ProxyContext``).
"""

from __future__ import annotations

import time

import torch
from torch import nn

from archsearch.estimators.zero_cost import (  # noqa: F401  (registration)
    epe_nas,
    fisher,
    flops,
    grad_norm,
    grasp,
    jacob_cov,
    naswot,
    params,
    snip,
    synflow,
)
from archsearch.estimators.zero_cost.base import PROXIES, ProxyContext, proxy

BASELINES = ("params", "flops")  # hard to beat; every report shows them


def score_network(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                  proxies: list[str]) -> dict[str, tuple[float, float]]:
    """{proxy: (score, seconds)}. A shared pass is charged to the first proxy that needs it."""
    ctx = ProxyContext(model, x, y, num_classes)
    out = {}
    for name in proxies:
        start = time.perf_counter()
        out[name] = (PROXIES[name](ctx), time.perf_counter() - start)
    return out


def warm_start(estimator: ZeroCostEstimator, pool: int, keep: int,  # noqa: F821
               seed: int = 0) -> list[str]:
    """The ``keep`` best of ``pool`` random architectures by the estimator's proxy: a starting
    population for evolution (training-free, a few seconds per hundred cells)."""
    import numpy as np

    rng = np.random.default_rng([seed, 0x5EED])
    archs = {estimator.space.sample(rng).to_str(): None for _ in range(pool)}
    scored = [(estimator.evaluate(estimator.space.parse(a)).objective, a) for a in archs]
    scored = [(s, a) for s, a in scored if np.isfinite(s)]
    return [a for _, a in sorted(scored, reverse=True)[:keep]]


__all__ = ["BASELINES", "PROXIES", "ProxyContext", "proxy", "score_network", "warm_start"]
