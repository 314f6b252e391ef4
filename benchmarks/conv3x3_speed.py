"""oneDNN's 3x3 convolutions at the NB201 supernet's three stages, float32 and bfloat16: how
close the relaxed NB201 step's largest part (~40% of it) runs to the CPU's peak, and what bf16
would give on a CPU with AVX512-BF16.

Batch 32, channels_last, C -> C channels, padding 1, stride 1; (32x32, 16), (16x16, 32),
(8x8, 64): the same 151 MFLOP forward at each stage. Each call reads one of 24 inputs in turn;
milliseconds per call (median of 5 passes), forward and forward-graph backward of both the
input and the weight, and the GFLOP/s they imply.

    python benchmarks/conv3x3_speed.py [--threads 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from channel_matmul_speed import per_call, set_up

STAGES = [(32, 16), (16, 32), (8, 64)]  # (side, channels)
INPUTS = 24


def main() -> None:
    set_up(__doc__)
    print(f"threads {torch.get_num_threads()}; ms per call (GFLOP/s)")
    for side, c in STAGES:
        flop = 2 * 32 * side * side * c * c * 9 / 1e9  # forward; backward: twice that
        for dtype in (torch.float32, torch.bfloat16):
            g = torch.Generator().manual_seed(side)

            def cl(*shape: int) -> torch.Tensor:
                return torch.randn(*shape, generator=g).to(dtype).contiguous(
                    memory_format=torch.channels_last)

            xs = [cl(32, c, side, side).requires_grad_() for _ in range(INPUTS)]
            gs = [cl(32, c, side, side) for _ in range(INPUTS)]
            w = cl(c, c, 3, 3).requires_grad_()
            forward = per_call(lambda i: F.conv2d(xs[i], w, padding=1), INPUTS, 5, 1e3)
            ys = [F.conv2d(x, w, padding=1) for x in xs]
            backward = per_call(lambda i: torch.autograd.grad(
                ys[i], [xs[i], w], gs[i], retain_graph=True), INPUTS, 5, 1e3)
            print(f"{side}x{side}x{c:<3} {str(dtype)[6:]:9} forward {forward:.3f} "
                  f"({flop / forward * 1e3:.0f})  backward {backward:.3f} "
                  f"({2 * flop / backward * 1e3:.0f})")


if __name__ == "__main__":
    main()
