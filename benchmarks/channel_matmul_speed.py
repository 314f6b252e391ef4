"""A 1x1 convolution's three matmuls at the NB201 supernet's three stages: MKL (``F.linear``
and ``@``, what ``ops.pointwise`` ran before) against ``archsearch.nn.channel_matmul``'s native
kernels, in microseconds per call.

Batch 32, channels_last pixel rows of (32x32, 16), (16x16, 32) and (8x8, 64) channels, the
square weight of a cell's 1x1 convolution. Each call reads one of 48 different inputs in turn
(96-192 MiB in all: out of cache, as in a search step) and allocates its output, as the
library's calls do (malloc tuned as the library tunes it). The forward ``x W^T``, the input's
gradient ``g W`` and the weight's ``g^T x``; the median of 7 passes over the 48 inputs, the
fastest of 2 repetitions, each kernel's passes one after the other.

    python benchmarks/channel_matmul_speed.py [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch.nn import functional as F

from archsearch import allocator
from archsearch.nn import channel_matmul as cm

STAGES = [(32, 16), (16, 32), (8, 64)]  # (side, channels)
INPUTS = 48


def per_call(f: Callable[[int], object], inputs: int = INPUTS, passes: int = 7,
             unit: float = 1e6) -> float:
    """Median time per call (``unit`` 1e6: microseconds) over ``passes`` passes of ``f(i)``
    through the ``inputs``."""
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        for i in range(inputs):
            f(i)
        times.append((time.perf_counter() - start) / inputs * unit)
    return statistics.median(times)


def set_up(description: str | None) -> None:
    """``--threads`` (default 2) from the command line; malloc tuned as the library tunes it."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--threads", type=int, default=2)
    torch.set_num_threads(p.parse_args().threads)
    allocator.keep_freed_memory()


def main() -> None:
    set_up(__doc__)
    print(f"threads {torch.get_num_threads()}; microseconds per call (MKL / native = speed-up)")
    for side, c in STAGES:
        g = torch.Generator().manual_seed(side)
        xs = [torch.randn(32, c, side, side, generator=g)
              .contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1)
              for _ in range(INPUTS)]
        gs = [torch.randn(32, side, side, c, generator=g) for _ in range(INPUTS)]
        w = torch.randn(c, c, generator=g)
        cases = {
            "forward": (lambda i: F.linear(xs[i], w), lambda i: cm.matmul_rows(xs[i], w.t())),
            "input grad": (lambda i: gs[i] @ w, lambda i: cm.matmul_rows(gs[i], w)),
            "weight grad": (lambda i: gs[i].flatten(0, 2).t() @ xs[i].flatten(0, 2),
                            lambda i: cm.gram(gs[i], xs[i])),
        }
        best: dict[tuple[str, int], float] = {}
        for _ in range(2):
            for name, pair in cases.items():
                for k, f in enumerate(pair):
                    best[name, k] = min(best.get((name, k), float("inf")), per_call(f))
        row = "  ".join(f"{name} {best[name, 0]:.0f}/{best[name, 1]:.0f} = "
                        f"{best[name, 0] / best[name, 1]:.2f}x" for name in cases)
        print(f"{side}x{side}x{c:<3} {row}")


if __name__ == "__main__":
    main()
