"""Cell operations whose stride is chosen at call time: ``op(x, stride)``.

In a reduction cell an op reading one of the two cell inputs runs with stride 2 and an op
reading an intermediate node with stride 1. A supernet shares one set of weights per
(node, slot, op) whatever input the slot reads, so the same weights must serve both strides;
convolution weights do, and identity switches to its own factorized reduction. Stand-alone
networks use the same modules, so a supernet's weights map one-to-one onto them.

``bn`` holds the BatchNorm options: ``affine`` and ``track_running_stats``. Supernets use
``(False, False)``: batch statistics always (training and scoring alike), as ENAS does, so a
sampled sub-network is never scored with statistics accumulated by other sub-networks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from archsearch.nn.depthwise import DepthwiseConv2d
from archsearch.nn.ops import Conv1x1, FactorizedReduce, avg_pool
from archsearch.nn.pool3x3 import max_pool3x3


class SepConvOp(nn.Module):
    """(ReLU, depthwise kxk, pointwise 1x1, BN) twice; the first depthwise conv is strided.

    ``activated`` is relu(x) when the caller already has it (cells compute each node's ReLU
    once for all its consumers)."""

    def __init__(self, c: int, kernel: int, bn: dict[str, Any]) -> None:
        super().__init__()
        pad = (kernel - 1) // 2
        self.dw1 = DepthwiseConv2d(c, kernel, padding=pad)
        self.pw1 = Conv1x1(c, c)
        self.bn1 = nn.BatchNorm2d(c, **bn)
        self.dw2 = DepthwiseConv2d(c, kernel, padding=pad)
        self.pw2 = Conv1x1(c, c)
        self.bn2 = nn.BatchNorm2d(c, **bn)

    def forward(self, x: torch.Tensor, stride: int = 1,
                activated: torch.Tensor | None = None) -> torch.Tensor:
        a = activated if activated is not None else F.relu(x)
        x = self.dw1(a, stride)
        x = F.relu(self.bn1(self.pw1(x)), inplace=True)  # BN's backward does not need its output
        return self.bn2(self.pw2(self.dw2(x)))


class PoolOp(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        if kind not in ("avg", "max"):
            raise ValueError(f"pool kind must be 'avg' or 'max', not {kind!r}")
        self.kind = kind

    def forward(self, x: torch.Tensor, stride: int = 1,
                activated: torch.Tensor | None = None) -> torch.Tensor:
        if self.kind == "avg":
            return avg_pool(x, 3, stride, 1)
        return max_pool3x3(x, stride)


class IdentityOp(nn.Module):
    """x at stride 1; a factorized reduction (its own weights) at stride 2."""

    def __init__(self, c: int, bn: dict[str, Any], reducible: bool) -> None:
        super().__init__()
        self.reduce = FactorizedReduce(c, c, **bn) if reducible else None

    def forward(self, x: torch.Tensor, stride: int = 1,
                activated: torch.Tensor | None = None) -> torch.Tensor:
        if stride == 1:
            return x
        assert self.reduce is not None, "identity at stride 2 needs reducible=True"
        return self.reduce(x, activated)


def make_cell_op(name: str, c: int, bn: dict[str, Any], reducible: bool) -> nn.Module:
    if name == "sep_conv_3x3":
        return SepConvOp(c, 3, bn)
    if name == "sep_conv_5x5":
        return SepConvOp(c, 5, bn)
    if name == "avg_pool_3x3":
        return PoolOp("avg")
    if name == "max_pool_3x3":
        return PoolOp("max")
    if name == "identity":
        return IdentityOp(c, bn, reducible)
    raise ValueError(f"unknown cell op {name!r}")


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of a branch with probability ``drop_prob``, rescaling the rest."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) < keep
    return x * mask / keep


class AuxiliaryHead(nn.Module):
    """The auxiliary classifier at two thirds of the depth (any input size)."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128), nn.ReLU(),
        )
        self.classifier = nn.Linear(128 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))
