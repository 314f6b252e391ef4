"""Time the native 3x3 poolings (``archsearch.nn.pool3x3``) against PyTorch's, alone.

For each shape of the DARTS and NB201 supernets' poolings (batch 32, channels_last float32)
and each stride, milliseconds per call of the forward pass and of forward + backward, native
and PyTorch (``F.max_pool2d`` / ``F.avg_pool2d(count_include_pad=False)``) alternating
``--rounds`` times, at ``--threads`` torch threads (the native kernels run on the same OpenMP
pool). One JSON line per (kind, shape, stride): the medians over the rounds. Alone the inputs
sit in cache; inside a search step they do not, and the gain there is smaller (BENCHMARKS.md).

    python benchmarks/pool3x3_speed.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
from torch.nn import functional as F

from archsearch.nn.pool3x3 import avg_pool3x3, max_pool3x3, native_applies

SHAPES = [((32, 16, 32, 32), 1), ((32, 32, 16, 16), 1), ((32, 64, 8, 8), 1),
          ((32, 32, 32, 32), 2), ((32, 64, 16, 16), 2)]
POOLS: dict[str, tuple[Callable, Callable]] = {
    "max": (max_pool3x3, lambda x, s: F.max_pool2d(x, 3, s, 1)),
    "avg": (avg_pool3x3, lambda x, s: F.avg_pool2d(x, 3, s, 1, count_include_pad=False)),
}


def time_ms(pool: Callable, x: torch.Tensor, stride: int, calls: int) -> tuple[float, float]:
    """(forward, forward + backward) milliseconds per call."""
    x = x.detach().requires_grad_()
    grad = torch.ones_like(pool(x, stride))
    for _ in range(3):
        pool(x, stride).backward(grad)
    start = time.perf_counter()
    for _ in range(calls):
        pool(x, stride)
    forward = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(calls):
        pool(x, stride).backward(grad)
    both = time.perf_counter() - start
    return 1e3 * forward / calls, 1e3 * both / calls


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for kind, (native, reference) in POOLS.items():
        for shape, stride in SHAPES:
            x = torch.randn(*shape).contiguous(memory_format=torch.channels_last)
            assert native_applies(x, stride), "the native kernels did not build here"
            runs: dict[str, list[tuple[float, float]]] = {"native": [], "pytorch": []}
            for _ in range(args.rounds):
                runs["native"].append(time_ms(native, x, stride, args.calls))
                runs["pytorch"].append(time_ms(reference, x, stride, args.calls))
            row = {"kind": kind, "shape": list(shape), "stride": stride,
                   "threads": args.threads}
            for side, times in runs.items():
                row[f"{side}_fwd_ms"] = round(statistics.median(t[0] for t in times), 3)
                row[f"{side}_fwd_bwd_ms"] = round(statistics.median(t[1] for t in times), 3)
            row["fwd_bwd_speedup"] = round(row["pytorch_fwd_bwd_ms"] / row["native_fwd_bwd_ms"], 2)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
