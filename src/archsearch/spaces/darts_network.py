"""DARTS' evaluation network for a genotype (quark0/darts ``cnn/model.py``, ``NetworkCIFAR``).

A 3x3 conv stem to 3C channels + BN, then ``cells`` cells; the cells at 1/3 and 2/3 of the depth
(``cells // 3``, ``2 * cells // 3``) are reduction cells and double the channels. A cell
preprocesses its two inputs to C channels (ReLU-1x1-BN, or a factorized reduction when the
previous cell reduced), runs its genotype's 8 ops (stride 2 on a reduction cell's inputs) and
concatenates its 4 nodes (4C channels). Global average pooling and a linear classifier; the
optional auxiliary head (DARTS' ``AuxiliaryHeadCIFAR``) reads the second reduction cell's output.
Drop path zeroes each non-identity op's output per sample with ``drop_path_prob`` (the training
loop schedules it: full-training's ``drop_path``, 0.2 in the paper).

The ops are the shared ones (:mod:`archsearch.nn.ops`, as the NASNet space uses them): pools
(the average excluding padding), ``skip_connect`` (identity, or a factorized reduction at
stride 2), separable convolutions (two ReLU-depthwise-pointwise-BN), dilated convolutions.

``shared=True`` (``build(arch, network="shared")``) builds the search network's sub-network on
its own instead (pools followed by BatchNorm, as in the supernet's mixed ops): the supernet run
on ``arch`` computes it, weight for weight (both networks name an op by its edge and name).

Node 2 reads both cell inputs (its only pair), so every cell input is read and every cell's
output reaches the classifier: the network holds only what runs, as it is. The auxiliary head
pools 5x5 at stride 3 on the 8x8 maps of 32x32 inputs, as the official head; on other sizes it
pools adaptively to 2x2.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from archsearch.nn.cell_ops import drop_path
from archsearch.nn.ops import (
    DilConv,
    FactorizedReduce,
    Pool,
    ReLUConvBN,
    Scaled,
    SepConv,
    Zero,
    cat_channels,
)
from archsearch.spaces.darts import DARTSGenotype, Node


def make_op(name: str, c: int, stride: int, affine: bool = True,
            track_running_stats: bool = True) -> nn.Module:
    """DARTS' op ``name`` on C channels (``OPS`` in the official ``operations.py``)."""
    bn = {"affine": affine, "track_running_stats": track_running_stats}
    if name == "none":
        return Zero(stride)
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        return Pool(name[:3], stride)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, **bn)
    if name in ("sep_conv_3x3", "sep_conv_5x5"):
        return SepConv(c, c, int(name[-1]), stride, **bn)
    if name in ("dil_conv_3x3", "dil_conv_5x5"):
        return DilConv(c, c, int(name[-1]), stride, 2, **bn)
    raise ValueError(f"unknown DARTS op {name!r}")


def make_search_op(name: str, c: int, stride: int, affine: bool = True,
                   track_running_stats: bool = True) -> nn.Module:
    """Op ``name`` as the search network holds it: pools followed by a BatchNorm (the
    official ``MixedOp``), the rest as :func:`make_op`."""
    bn = {"affine": affine, "track_running_stats": track_running_stats}
    op = make_op(name, c, stride, **bn)
    return Scaled(op, nn.BatchNorm2d(c, **bn)) if "pool" in name else op


def op_key(i: int, j: int, name: str) -> str:
    """The name of op ``name`` on the edge from node i to node j, in both networks."""
    return f"{i}_{j}_{name}"


class DARTSCell(nn.Module):
    """Preprocess the two inputs, run the genotype's 8 ops, concatenate the 4 nodes."""

    def __init__(self, nodes: tuple[Node, ...], c_pp: int, c_p: int, c: int, reduction: bool,
                 reduction_prev: bool, shared: bool = False) -> None:
        super().__init__()
        self.nodes = nodes
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1)
        self.pre1 = ReLUConvBN(c_p, c, 1)
        make = make_search_op if shared else make_op
        self.ops = nn.ModuleDict({op_key(i, j + 2, op): make(op, c, 2 if reduction and i < 2
                                                             else 1)
                                  for j, node in enumerate(nodes) for op, i in node})
        self.c_out = len(nodes) * c

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]  # (B, C, H, W) each
        for j, node in enumerate(self.nodes):
            total = None
            for name, i in node:
                op = self.ops[op_key(i, j + 2, name)]
                y = op(states[i])  # (B, C, H', W')
                if self.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                    y = drop_path(y, drop_prob)
                total = y if total is None else total + y
            states.append(total)
        return cat_channels(states[2:])  # (B, 4C, H', W')


class AuxiliaryHead(nn.Module):
    """DARTS' ``AuxiliaryHeadCIFAR``: ReLU, 5x5/3 average pool (8x8 -> 2x2), 1x1 conv to 128,
    BN, ReLU, 2x2 conv to 768, BN, ReLU, linear."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, 128, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(128)
        self.conv2 = nn.Conv2d(128, 768, 2, bias=False)
        self.bn2 = nn.BatchNorm2d(768)
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)  # (B, C, 8, 8) on CIFAR
        if x.shape[-2:] == (8, 8):
            x = F.avg_pool2d(x, 5, 3, count_include_pad=False)  # (B, C, 2, 2)
        else:
            x = F.adaptive_avg_pool2d(x, 2)
        x = F.relu(self.bn1(self.conv1(x)))  # (B, 128, 2, 2)
        x = F.relu(self.bn2(self.conv2(x)))  # (B, 768, 1, 1)
        return self.classifier(x.flatten(1))  # (B, classes)


class DARTSNetwork(nn.Module):
    """Stem -> ``cells`` cells (reductions at 1/3 and 2/3) -> pool -> linear (+ auxiliary)."""

    def __init__(self, arch: DARTSGenotype, channels: int = 36, cells: int = 20,
                 num_classes: int = 10, in_channels: int = 3, auxiliary: bool = False,
                 dropout: float = 0.0, shared: bool = False, stem_multiplier: int = 3) -> None:
        super().__init__()
        if cells < 1:
            raise ValueError(f"a DARTS network needs at least 1 cell, not {cells}")
        self.drop_path_prob = 0.0  # set by the training loop (scheduled)
        c_stem = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_stem))
        reductions = (cells // 3, 2 * cells // 3)
        self.kinds = ["reduce" if k in reductions else "normal" for k in range(cells)]
        self.aux_at = 2 * cells // 3 if auxiliary else -1  # after the second reduction
        c_pp, c_p, c = c_stem, c_stem, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for k, kind in enumerate(self.kinds):
            reduction = kind == "reduce"
            c = 2 * c if reduction else c
            cell = DARTSCell(arch.cell(kind), c_pp, c_p, c, reduction, reduction_prev, shared)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.c_out
            if k == self.aux_at:
                self.auxiliary_head = AuxiliaryHead(c_p, num_classes)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0 = s1 = self.stem(x)  # (B, 3C, H, W)
        aux = None
        for k, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)  # (B, 4C, H', W')
            if k == self.aux_at and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(self.dropout(s1.mean(dim=(2, 3))))  # (B, classes)
        return (logits, aux) if aux is not None else logits
