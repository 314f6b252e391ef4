"""FactorizedReduce forward+backward on CPU channels_last batches: the module (its stride-2 1x1
convolutions as matmuls over strided views, ``archsearch.nn.ops.pointwise``) against the same
weights through oneDNN's strided 1x1 convolutions. Milliseconds, best of three runs of 40.

    python benchmarks/factorized_reduce_speed.py
"""

from __future__ import annotations

import time

import torch
from torch import nn

from archsearch.nn.ops import FactorizedReduce


def best_ms(step, runs: int = 3, n: int = 40) -> float:
    times = []
    for _ in range(runs):
        for _ in range(5):
            step()
        start = time.perf_counter()
        for _ in range(n):
            step()
        times.append((time.perf_counter() - start) / n * 1e3)
    return min(times)


def main() -> None:
    torch.manual_seed(0)
    for c_in, c_out, size in [(32, 32, 32), (48, 32, 32), (64, 64, 16)]:
        reduce = FactorizedReduce(c_in, c_out, affine=False, track_running_stats=False)
        x = torch.randn(32, c_in, size, size).contiguous(memory_format=torch.channels_last)
        x.requires_grad_()

        def strided_convs() -> None:
            a = torch.relu(x)
            shifted = nn.functional.pad(a[:, :, 1:, 1:], (0, 1, 0, 1))
            out = reduce.bn(torch.cat([reduce.conv_a(a), reduce.conv_b(shifted)], 1))
            out.sum().backward()

        def module() -> None:
            reduce(x).sum().backward()

        old, new = best_ms(strided_convs), best_ms(module)
        print(f"FactorizedReduce {c_in}->{c_out} at {size}x{size}, batch 32: strided 1x1 convs "
              f"{old:.2f} ms, matmuls {new:.2f} ms ({old / new:.1f}x)")


if __name__ == "__main__":
    main()
