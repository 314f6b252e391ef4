"""Time a relaxed node's sum, ``archsearch.nn.weighted_sum`` against PyTorch's mul-and-add chain.

The node sums of the search steps that ``benchmarks/darts_speed.py`` times (batch 32,
channels_last float32, 16 channels at 32x32): NB201's nodes 1-3 (2j convolutions with their
weights folded into BatchNorm, j weighted skips, one pooling: 4, 7 and 10 maps, 1-3 of them
weighted), and the darts space's nodes (7 ops an edge over 2-5 edges, one weighted skip each:
14-35 maps). Milliseconds per forward + backward (to the maps and to the mixing logits through
their softmax), native and PyTorch alternating ``--rounds`` times at ``--threads`` threads;
one JSON line per node: the medians over the rounds.

    python benchmarks/weighted_sum_speed.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

from archsearch.allocator import keep_freed_memory
from archsearch.nn.weighted_sum import native_applies, reference_sum, weighted_sum

NODES = {"nb201 node 1": (4, 1), "nb201 node 2": (7, 2), "nb201 node 3": (10, 3),
         "darts node 2": (14, 2), "darts node 5": (35, 5)}  # (maps, weighted maps)
SHAPE = (32, 16, 32, 32)


def time_ms(total: Callable, maps: list[torch.Tensor], logits: torch.Tensor,
            calls: int) -> float:
    """Milliseconds per forward + backward of ``total`` over ``maps``, the first
    ``len(logits)`` weighted by softmax(logits)."""
    def once() -> None:
        w = torch.softmax(logits, 0)
        weights = [w[t] if t < len(logits) else None for t in range(len(maps))]
        y = total(maps, weights)
        torch.autograd.grad(y, [*maps, logits], torch.ones_like(y))

    for _ in range(3):
        once()
    start = time.perf_counter()
    for _ in range(calls):
        once()
    return 1e3 * (time.perf_counter() - start) / calls


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as in a search step (archsearch.allocator)
    for node, (n, weighted) in NODES.items():
        maps = [torch.randn(SHAPE).contiguous(memory_format=torch.channels_last)
                .requires_grad_() for _ in range(n)]
        logits = torch.zeros(weighted, requires_grad=True)
        assert native_applies(maps, [None] * n), "the native kernel did not build here"
        runs: dict[str, list[float]] = {"native": [], "pytorch": []}
        for _ in range(args.rounds):
            runs["native"].append(time_ms(weighted_sum, maps, logits, args.calls))
            runs["pytorch"].append(time_ms(reference_sum, maps, logits, args.calls))
        row = {"node": node, "maps": n, "weighted": weighted, "shape": list(SHAPE),
               "threads": args.threads,
               **{f"{side}_fwd_bwd_ms": round(statistics.median(t), 3)
                  for side, t in runs.items()}}
        row["speedup"] = round(row["pytorch_fwd_bwd_ms"] / row["native_fwd_bwd_ms"], 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
