"""ENAS's stand-alone micro network, as the official code builds a fixed architecture
(melodyguan/enas ``src/cifar10/micro_child.py``, the ``fixed_arc`` path).

Where it differs from the shared-weights supernet's sub-network (``network="shared"``):

- a cell's output concatenates *every unused node*, the cell inputs included (an unused input
  of a reduction cell factorized-reduced), with no 1x1 convolution back to C channels; the
  next cells calibrate it: input 0 by ReLU + factorized reduction when its resolution is
  higher, else by ReLU-1x1-BN when its width is not C; input 1 by ReLU-1x1-BN when its width
  is not C, then always by a further ReLU-1x1-BN (``layer_base``);
- identity at stride 2 is a factorized reduction without a ReLU before it, and the factorized
  reductions have no ReLU inside (calibration applies one first where the code does);
- the stem (3x3 conv to 3C, BN) has no ReLU; convolutions and the classifier have no bias;
- drop path is applied to each non-identity branch with a probability growing with depth:
  layer l of L uses ``drop_path_prob * (l + 1) / L`` (the training loop ramps
  ``drop_path_prob`` linearly over training, as the official schedule does);
- the auxiliary head sits after the first normal cell that follows the second reduction:
  ReLU, 5x5 average pooling at stride 3, 1x1 conv to 128, BN, ReLU, 2x2 conv to 768 (padded
  bottom-right, as TF's SAME), BN, ReLU, global pooling, linear; the classifier is ReLU,
  global pooling, dropout, linear.

Not followed: the official optimizer leaves the auxiliary head's weights out of its variable
list (they stay untrained while the head's loss trains the trunk); here they train.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from archsearch.nn.cell_ops import SepConvOp, drop_path
from archsearch.nn.ops import Conv1x1, FactorizedReduce, avg_pool, cat_channels
from archsearch.nn.pool3x3 import max_pool3x3

CELL_OPS = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity")
Node = tuple[int, str, int, str]


class ReLUConv1x1BN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.ReLU(), Conv1x1(c_in, c_out), nn.BatchNorm2d(c_out))


class Reduce(nn.Module):
    """ENAS's factorized reduction (no ReLU inside): x[::2, ::2] and x[1::2, 1::2] through
    their own 1x1 convolutions, concatenated, BN. ``relu``: a ReLU first (calibration)."""

    def __init__(self, c_in: int, c_out: int, relu: bool = False) -> None:
        super().__init__()
        self.relu, self.body = relu, FactorizedReduce(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x, torch.relu(x) if self.relu else x)


class Branch(nn.Module):
    """One of a node's two operations, on a calibrated input of C channels."""

    def __init__(self, op: str, c: int, stride: int) -> None:
        super().__init__()
        self.op, self.stride = op, stride
        if op.startswith("sep_conv"):
            self.body: nn.Module | None = SepConvOp(c, int(op[-1]), {})
        elif op == "identity" and stride == 2:
            self.body = Reduce(c, c)
        else:
            self.body = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op.startswith("sep_conv"):
            return self.body(x, self.stride)  # type: ignore[misc]
        if self.op == "avg_pool_3x3":
            return avg_pool(x, 3, self.stride, 1)
        if self.op == "max_pool_3x3":
            return max_pool3x3(x, self.stride)
        return x if self.body is None else self.body(x)


def unused(nodes: Sequence[Node]) -> list[int]:
    """The nodes no node reads, inputs 0 and 1 included: the cell's output, in order."""
    read = {n[0] for n in nodes} | {n[2] for n in nodes}
    return [i for i in range(len(nodes) + 2) if i not in read]


class FinalCell(nn.Module):
    def __init__(self, nodes: tuple[Node, ...], shape0: tuple[int, int], shape1: tuple[int, int],
                 c: int, reduction: bool, depth: float) -> None:
        """``shape0``/``shape1``: (channels, resolution) of the two inputs; ``depth``: this
        cell's (l + 1) / L, which scales its drop-path probability."""
        super().__init__()
        self.nodes, self.reduction, self.depth = nodes, reduction, depth
        (c0, r0), (c1, r1) = shape0, shape1
        self.calibrate0: nn.Module = (Reduce(c0, c, relu=True) if r0 != r1 else
                                      ReLUConv1x1BN(c0, c) if c0 != c else nn.Identity())
        self.calibrate1: nn.Module = ReLUConv1x1BN(c1, c) if c1 != c else nn.Identity()
        self.base = ReLUConv1x1BN(c, c)  # layer_base: always, on input 1
        self.branches = nn.ModuleList(
            Branch(op, c, 2 if reduction and src < 2 else 1)
            for a, op_a, b, op_b in nodes for src, op in ((a, op_a), (b, op_b)))
        self.out_nodes = unused(nodes)
        # in a reduction cell an unused input is still at the higher resolution
        self.shrink = nn.ModuleDict({str(i): Reduce(c, c) for i in self.out_nodes
                                     if reduction and i < 2})
        self.c_out = c * len(self.out_nodes)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.calibrate0(x0), self.base(self.calibrate1(x1))]  # (B, C, H, W) each
        for b, (a, _, c, _) in enumerate(self.nodes):
            outs = []
            for slot, src in enumerate((a, c)):
                branch = self.branches[2 * b + slot]
                y = branch(states[src])
                if self.training and drop_prob > 0 and branch.op != "identity":
                    y = drop_path(y, drop_prob * self.depth)
                outs.append(y)
            states.append(outs[0] + outs[1])
        out = [self.shrink[str(i)](states[i]) if str(i) in self.shrink else states[i]
               for i in self.out_nodes]
        return cat_channels(out)  # (B, |unused| * C, H', W')


class AuxiliaryHead(nn.Module):
    """ENAS's: ReLU, avg pool 5 / stride 3, 1x1 conv 128, BN, ReLU, 2x2 conv 768, BN, ReLU,
    global pooling, linear (no biases)."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = Conv1x1(c, 128), nn.BatchNorm2d(128)
        self.conv2, self.bn2 = nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768)
        self.classifier = nn.Linear(768, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(x)
        if min(x.shape[2:]) >= 5:  # CIFAR: 8x8 -> 2x2
            x = F.avg_pool2d(x, 5, 3)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(F.pad(x, (0, 1, 0, 1)))))  # TF's SAME: pad bottom-right
        return self.classifier(x.mean(dim=(2, 3)))


class FinalMicroNet(nn.Module):
    """Stem -> [N normal, reduce] x 2 -> N normal -> ReLU -> pool -> dropout -> linear."""

    def __init__(self, arch: Any, channels: int = 36, cells_per_stage: int = 5,
                 num_classes: int = 10, in_channels: int = 3, auxiliary: bool = False,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.arch = arch
        c = channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 3 * c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(3 * c))
        kinds = ["normal"] * cells_per_stage + ["reduce"] + ["normal"] * cells_per_stage + \
            ["reduce"] + ["normal"] * cells_per_stage
        shapes = [(3 * c, 1), (3 * c, 1)]  # (channels, resolution divisor) of the two inputs
        self.cells = nn.ModuleList()
        self.aux_after = kinds.index("reduce", cells_per_stage + 1) + 1 if auxiliary else -1
        self.aux: nn.Module | None = None
        for i, kind in enumerate(kinds):
            reduction = kind == "reduce"
            c = 2 * c if reduction else c
            cell = FinalCell(arch.cell(kind), shapes[0], shapes[1], c, reduction,
                             (i + 1) / len(kinds))
            self.cells.append(cell)
            scale = shapes[1][1] * (2 if reduction else 1)
            shapes = [shapes[1], (cell.c_out, scale)]
            if i == self.aux_after:
                self.aux = AuxiliaryHead(cell.c_out, num_classes)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(shapes[1][0], num_classes, bias=False)
        self.drop_path_prob = 0.0  # set by the training loop (scheduled)

    def forward(self, x: torch.Tensor):  # type: ignore[override]
        x0 = x1 = self.stem(x)  # (B, 3C, H, W)
        aux_logits = None
        for i, cell in enumerate(self.cells):
            x0, x1 = x1, cell(x0, x1, self.drop_path_prob)
            if i == self.aux_after and self.aux is not None and self.training:
                aux_logits = self.aux(x1)
        out = self.classifier(self.dropout(torch.relu(x1).mean(dim=(2, 3))))  # (B, classes)
        return (out, aux_logits) if aux_logits is not None else out
