"""Time a relaxed node's sum as the supernets gather it (``archsearch.nn.terms.Terms``), with
the native kernels (``nn.normalized_sum``, ``nn.weighted_sum``) and through PyTorch.

The nodes of the search steps that ``benchmarks/darts_speed.py`` times (batch 32, channels_last
float32, 16 channels at 32x32): NB201's node j sums 2j ReLU-Conv-BN outputs (each mixing weight
folded into its BatchNorm), j weighted skips and one pooling; a darts-space node sums, per
incoming edge (2-5), 6 ops ending in a BatchNorm and one weighted skip. "pytorch" is the
library before these kernels: each BatchNorm by ``F.batch_norm`` (the scale folded in), each
skip multiplied, everything added map by map. Milliseconds per forward + backward (to every
map, BatchNorm input and mixing logit through its softmax), both alternating ``--rounds``
times at ``--threads`` threads; one JSON line per node, the medians over the rounds.
``--plain`` times sums without BatchNorms (the weighted maps alone: ``nn.weighted_sum``).
(Since 2026-12-07 the NB201 supernet hands its nodes' skips and pooling to ``nn.skip_pool``,
one unweighted map in the node's sum; the nb201 rows here keep the earlier node's terms.)

``--accuracy`` times nothing: how far the float32 architecture gradient of each relaxed
supernet (16 channels; nb201: 2 cells per stage, darts: 3 cells) is from its float64 value
(where the kernels do not apply), with the kernels and through PyTorch: one cross-entropy loss
of a random batch of 16 32x32 images, channels_last, softmax of small random alphas; one JSON
line per space and path, ``||g32 - g64|| / ||g64||`` (the PyTorch path without
``nn.skip_pool`` either; the other native kernels, pooling and depthwise, run in both float32
paths).

    python benchmarks/node_sum_speed.py --threads 2
    python benchmarks/node_sum_speed.py --accuracy
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F

from archsearch.allocator import keep_freed_memory
from archsearch.nn import normalized_sum, skip_pool, weighted_sum
from archsearch.nn.mixed import Relaxed
from archsearch.nn.normalized_sum import Normalized
from archsearch.nn.terms import Terms
from archsearch.registry import SPACES

# per node: (BatchNorm outputs, weighted plain maps, unweighted plain maps)
NODES = {"nb201 node 1": (2, 1, 1), "nb201 node 2": (4, 2, 1), "nb201 node 3": (6, 3, 1),
         "darts node 2": (12, 2, 0), "darts node 5": (30, 5, 0)}
PLAIN = {"nb201 pool input 3": (0, 3, 0), "darts node 5, no BN": (0, 5, 30)}
SHAPE = (32, 16, 32, 32)
BN = nn.BatchNorm2d(SHAPE[1], affine=False, track_running_stats=False)


@contextmanager
def through_pytorch():
    """Terms.sum with both kernels off: the BatchNorms, products and adds of PyTorch."""
    saved = normalized_sum.native_applies, weighted_sum.native_applies, skip_pool.native_applies
    normalized_sum.native_applies = weighted_sum.native_applies = lambda *_: False
    skip_pool.native_applies = lambda *_: False
    try:
        yield
    finally:
        (normalized_sum.native_applies, weighted_sum.native_applies,
         skip_pool.native_applies) = saved


def time_ms(native: bool, norms: list[torch.Tensor], plain: list[torch.Tensor], weighted: int,
            calls: int) -> float:
    logits = torch.zeros(len(norms) + weighted, requires_grad=True)

    def once() -> None:
        w = torch.softmax(logits, 0)
        node = Terms()
        for t, x in enumerate(plain):
            node.add(x, w[len(norms) + t] if t < weighted else None)
        for t, z in enumerate(norms):
            node.add(Normalized(z, w[t], BN))
        y = node.sum()
        assert y is not None
        torch.autograd.grad(y, [*plain, *norms, logits], torch.ones_like(y))

    def timed() -> float:
        for _ in range(2):
            once()
        start = time.perf_counter()
        for _ in range(calls):
            once()
        return 1e3 * (time.perf_counter() - start) / calls

    if native:
        return timed()
    with through_pytorch():
        return timed()


def alpha_gradient(model: nn.Module, alphas: list[torch.Tensor], x: torch.Tensor,
                   y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    model = model.to(dtype).to(memory_format=torch.channels_last)
    leaves = [a.to(dtype).requires_grad_() for a in alphas]
    x = x.to(dtype).contiguous(memory_format=torch.channels_last)
    loss = F.cross_entropy(model(x, Relaxed(tuple(torch.softmax(a, 0) for a in leaves))), y)
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, leaves)]).double()


def accuracy() -> None:
    for name, size in (("nb201", {"cells_per_stage": 2}), ("darts", {"cells": 3})):
        space = SPACES.create(name)
        torch.manual_seed(0)
        model = space.supernet(channels=16, num_classes=10, **size)
        g = torch.Generator().manual_seed(1)
        alphas = [torch.randn(d.n_options, generator=g) * 1e-3
                  for d in space.relaxed_decisions()]
        x = torch.randn(16, 3, 32, 32, generator=g)
        y = torch.randint(0, 10, (16,), generator=g)
        reference = alpha_gradient(model, alphas, x, y, torch.float64)
        for path in ("native", "pytorch"):
            if path == "native":
                got = alpha_gradient(model, alphas, x, y, torch.float32)
            else:
                with through_pytorch():
                    got = alpha_gradient(model, alphas, x, y, torch.float32)
            error = float((got - reference).norm() / reference.norm())
            print(json.dumps({"space": name, "path": path, **size,
                              "relative_error_vs_float64": error}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--plain", action="store_true", help="the sums without BatchNorms")
    p.add_argument("--accuracy", action="store_true",
                   help="float32 against float64 architecture gradients, no timing")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.accuracy:
        accuracy()
        return
    keep_freed_memory()  # as in a search step (archsearch.allocator)
    for node, (n_norms, weighted, unweighted) in (PLAIN if args.plain else NODES).items():
        def maps(n: int) -> list[torch.Tensor]:
            return [torch.randn(SHAPE).contiguous(memory_format=torch.channels_last)
                    .requires_grad_() for _ in range(n)]

        norms, plain = maps(n_norms), maps(weighted + unweighted)
        sample = Terms(plain, [None] * len(plain), [Normalized(z, None, BN) for z in norms])
        kernel = (normalized_sum.native_applies(sample.maps, sample.weights, sample.norms)
                  if norms else weighted_sum.native_applies(plain, [None] * len(plain)))
        assert kernel, "the native kernels did not build here"
        runs: dict[str, list[float]] = {"native": [], "pytorch": []}
        for _ in range(args.rounds):
            for side in runs:
                runs[side].append(time_ms(side == "native", norms, plain, weighted, args.calls))
        row = {"node": node, "batchnorms": n_norms, "weighted": weighted,
               "unweighted": unweighted, "shape": list(SHAPE), "threads": args.threads,
               **{f"{side}_fwd_bwd_ms": round(statistics.median(t), 3)
                  for side, t in runs.items()}}
        row["speedup"] = round(row["pytorch_fwd_bwd_ms"] / row["native_fwd_bwd_ms"], 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
