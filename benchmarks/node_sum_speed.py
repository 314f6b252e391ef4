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

    python benchmarks/node_sum_speed.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import contextmanager

import torch
from torch import nn

from archsearch.allocator import keep_freed_memory
from archsearch.nn import normalized_sum, weighted_sum
from archsearch.nn.normalized_sum import Normalized
from archsearch.nn.terms import Terms

# per node: (BatchNorm outputs, weighted plain maps, unweighted plain maps)
NODES = {"nb201 node 1": (2, 1, 1), "nb201 node 2": (4, 2, 1), "nb201 node 3": (6, 3, 1),
         "darts node 2": (12, 2, 0), "darts node 5": (30, 5, 0)}
PLAIN = {"nb201 pool input 3": (0, 3, 0), "darts node 5, no BN": (0, 5, 30)}
SHAPE = (32, 16, 32, 32)
BN = nn.BatchNorm2d(SHAPE[1], affine=False, track_running_stats=False)


@contextmanager
def through_pytorch():
    """Terms.sum with both kernels off: the BatchNorms, products and adds of PyTorch."""
    saved = normalized_sum.native_applies, weighted_sum.native_applies
    normalized_sum.native_applies = weighted_sum.native_applies = lambda *_: False
    try:
        yield
    finally:
        normalized_sum.native_applies, weighted_sum.native_applies = saved


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


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--plain", action="store_true", help="the sums without BatchNorms")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
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
