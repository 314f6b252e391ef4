"""Score many architectures with many proxies: one network per architecture, every proxy on it,
optionally in worker processes (each loads the data once)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from archsearch.registry import SPACES


@dataclass(frozen=True)
class ScoreJob:
    space: str
    data: str
    proxies: tuple[str, ...]
    batch_size: int = 64
    seed: int = 0
    build: tuple[tuple[str, Any], ...] = ()


_WORKER: dict[str, Any] = {}


def _init(job: ScoreJob, threads: int) -> None:
    import torch

    from archsearch.estimators.zero_cost.estimator import ZeroCostEstimator

    if threads:
        torch.set_num_threads(threads)
    space = SPACES.create(job.space)
    _WORKER["space"] = space
    _WORKER["estimator"] = ZeroCostEstimator(space, proxy=job.proxies[0], data=job.data,
                                             batch_size=job.batch_size, seed=job.seed,
                                             build=dict(job.build))
    _WORKER["proxies"] = list(job.proxies)


def _score(arch: str) -> tuple[str, dict[str, tuple[float, float]]]:
    from archsearch.estimators.zero_cost import score_network

    est, space = _WORKER["estimator"], _WORKER["space"]
    net = est.network(space.parse(arch))
    return arch, score_network(net, est.x, est.y, est.num_classes, _WORKER["proxies"])


def score_architectures(
    job: ScoreJob, archs: list[str], workers: int = 1,
    on_done: Callable[[int], None] | None = None,
) -> dict[str, dict[str, tuple[float, float]]]:
    """{arch: {proxy: (score, seconds)}}, in the order of ``archs``."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    if workers <= 1:
        _init(job, 0)
        for a in archs:
            out.update([_score(a)])
            if on_done:
                on_done(len(out))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=_init, initargs=(job, 1)) as pool:
            for arch, scores in pool.imap_unordered(_score, archs, chunksize=4):
                out[arch] = scores
                if on_done:
                    on_done(len(out))
    return {a: out[a] for a in archs}


def stratified_sample(table: dict[str, float], n: int, seed: int) -> list[str]:
    """n architectures, one from each of n equal-size strata of the table sorted by its metric
    (a representative spread of good and bad ones with less variance than uniform sampling)."""
    ranked = sorted(table, key=table.__getitem__)
    rng = np.random.default_rng(seed)
    edges = np.linspace(0, len(ranked), n + 1).astype(int)
    return [ranked[int(rng.integers(lo, hi))] for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]


def rank_correlations(scores: list[float], truth: list[float]) -> dict[str, float]:
    from scipy.stats import kendalltau, spearmanr

    return {"spearman": float(spearmanr(scores, truth).statistic),
            "kendall": float(kendalltau(scores, truth).statistic)}
