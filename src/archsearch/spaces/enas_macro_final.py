"""ENAS's stand-alone macro network, as the official code builds a fixed architecture
(melodyguan/enas ``src/cifar10/general_child.py``: ``_fixed_layer`` with whole channels).

Where it differs from the shared-weights supernet's sub-network (``network="shared"``):

- a convolution op is ReLU-1x1-BN then ReLU-kxk-BN; the official fixed path builds the
  ``sep_conv`` ops as plain kxk convolutions too (its search path makes them separable:
  ``separable=True`` does that), and cannot build the pooling ops (it leaves them empty):
  here they are the search path's pool branch, 1x1-BN-ReLU then 3x3 pooling;
- skips are concatenated with the op's output and mapped back to C channels by ReLU-1x1-BN
  (every layer after the first, with or without skips), not summed;
- at each reduction the width doubles and every output so far (the stem's included) is
  factorized-reduced without a ReLU; the classifier reads the last layer's output without a
  ReLU (global pooling, dropout, linear); no biases.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from archsearch.nn.depthwise import DepthwiseConv2d
from archsearch.nn.ops import Conv1x1, avg_pool
from archsearch.nn.pool3x3 import max_pool3x3
from archsearch.spaces.enas_micro_final import Reduce


def conv_op(op: str, c: int, separable: bool) -> nn.Module:
    """ReLU-1x1-BN-ReLU-kxk-BN (kxk separable: depthwise then pointwise, with ``separable``)."""
    k = int(op[-1])
    body: list[nn.Module] = [nn.ReLU(), Conv1x1(c, c), nn.BatchNorm2d(c), nn.ReLU()]
    if separable and op.startswith("sep_conv"):
        body += [DepthwiseConv2d(c, k, padding=k // 2), Conv1x1(c, c)]
    else:
        body += [nn.Conv2d(c, c, k, padding=k // 2, bias=False)]
    return nn.Sequential(*body, nn.BatchNorm2d(c))


class PoolOp(nn.Module):
    """The search path's pool branch: 1x1 conv, BN, ReLU, 3x3 pooling at stride 1."""

    def __init__(self, kind: str, c: int) -> None:
        super().__init__()
        self.kind, self.conv, self.bn = kind, Conv1x1(c, c), nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        return avg_pool(x, 3, 1, 1) if self.kind == "avg" else max_pool3x3(x)


class FinalMacroNet(nn.Module):
    def __init__(self, arch: Any, n_layers: int, pools: tuple[int, ...], channels: int = 96,
                 num_classes: int = 10, in_channels: int = 3, dropout: float = 0.0,
                 separable: bool = False) -> None:
        super().__init__()
        self.arch, self.pools = arch, pools
        c = channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c))
        self.ops, self.skips = nn.ModuleList(), nn.ModuleList()
        self.reduce = nn.ModuleDict()  # "k_j": output j (0: the stem) reduced after layer k
        for k, (op, bits) in enumerate(arch.layers):
            self.ops.append(PoolOp(op[:3], c) if op.endswith("pool_3x3") else
                            conv_op(op, c, separable))
            n_in = sum(bits) + 1
            self.skips.append(nn.Sequential(nn.ReLU(), Conv1x1(n_in * c, c), nn.BatchNorm2d(c))
                              if k > 0 else nn.Identity())
            if k in pools:
                for j in range(k + 2):  # only what a later layer reads
                    if j == k + 1 or any(arch.layers[m][1][j]
                                         for m in range(k + 1, n_layers) if j < m):
                        self.reduce[f"{k}_{j}"] = Reduce(c, 2 * c)
                c *= 2
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor | None] = [self.stem(x)]  # (B, C, H, W)
        for k, (_, bits) in enumerate(self.arch.layers):
            out = self.ops[k](outputs[-1])
            if k > 0:
                skips = [outputs[j] for j, bit in enumerate(bits) if bit]
                out = self.skips[k](torch.cat([*skips, out], 1))  # type: ignore[list-item]
            outputs.append(out)
            if k in self.pools:
                outputs = [self.reduce[f"{k}_{j}"](o) if f"{k}_{j}" in self.reduce else None
                           for j, o in enumerate(outputs)]  # type: ignore[arg-type]
        last = outputs[-1]
        return self.classifier(self.dropout(last.mean(dim=(2, 3))))  # type: ignore[union-attr]
