"""``zero-cost``: any proxy (or a ``vote`` of several) as an estimator every strategy can use.

``evaluate(arch)`` builds the architecture's network (weights from ``seed``), takes one fixed
minibatch of ``batch_size`` training images (from ``seed``) and returns the proxy's score as the
objective. ``proxy="vote"`` averages the ranks of ``vote_of`` proxies; a rank needs a
population, so each proxy's score is turned into its percentile among ``reference`` random
architectures of the space, scored once when the estimator is built.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from archsearch.data import load_image_data
from archsearch.errors import UnknownNameError, UserError
from archsearch.estimators.base import Estimator
from archsearch.estimators.full_training import arch_seed, build_seeded
from archsearch.estimators.zero_cost import PROXIES, score_network
from archsearch.registry import ESTIMATORS
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.types import Budget, Result

VOTE_DEFAULT = ("synflow", "jacob_cov", "snip")  # Abdelfattah et al.'s best three-way vote


@ESTIMATORS.register("zero-cost")
class ZeroCostEstimator(Estimator):
    def __init__(self, space: SearchSpace, proxy: str = "naswot", data: str = "digits",
                 batch_size: int = 64, seed: int = 0, build: dict[str, Any] | None = None,
                 vote_of: Sequence[str] = VOTE_DEFAULT, reference: int = 64,
                 device: str = "cpu") -> None:
        names = list(vote_of) if proxy == "vote" else [proxy]
        for name in names:
            if name not in PROXIES:
                raise UnknownNameError("proxy", name, list(PROXIES) + ["vote"])
        self.space, self.proxy, self.names = space, proxy, names
        self.seed, self.build = seed, dict(build or {})
        self.device = torch.device(device)
        data_ = load_image_data(data, seed=0)
        if len(data_.train) < 2:
            raise UserError(f"data {data!r} has too few training images for a proxy batch")
        idx = torch.randperm(len(data_.train), generator=torch.Generator().manual_seed(seed))
        idx = idx[:batch_size]
        self.x = data_.train.x[idx].to(self.device)
        self.y = data_.train.y[idx].to(self.device)
        self.num_classes = data_.num_classes
        self.reference: dict[str, list[float]] = {}
        if proxy == "vote":
            rng = np.random.default_rng([seed, 0xF00D])
            scores = [self.scores(space.sample(rng)) for _ in range(reference)]
            self.reference = {n: sorted(s[n] for s in scores) for n in names}

    def network(self, arch: Architecture) -> torch.nn.Module:
        seed = arch_seed(self.seed, arch)
        return build_seeded(lambda: self.space.build(
            arch, num_classes=self.num_classes, in_channels=self.x.shape[1], **self.build,
        ), seed).to(self.device)

    def scores(self, arch: Architecture) -> dict[str, float]:
        out = score_network(self.network(arch), self.x, self.y, self.num_classes, self.names)
        return {name: score for name, (score, _) in out.items()}

    def evaluate(self, arch: Architecture, budget: Budget | None = None) -> Result:
        start = time.perf_counter()
        scores = self.scores(arch)
        if self.proxy == "vote":
            ranks = [bisect.bisect_left(self.reference[n], scores[n]) / len(self.reference[n])
                     for n in self.names]
            objective = float(np.mean(ranks))
        else:
            objective = scores[self.proxy]
        if not np.isfinite(objective):
            return Result.failed(f"proxy {self.proxy} is not finite for {arch}")
        return Result(objective, {f"zc_{k}": v for k, v in scores.items()},
                      time.perf_counter() - start)
