"""ENAS macro space (Pham et al., 2018): a whole network of L layers (12 in the paper).

Layer k applies one op (ENAS's order: ``conv_3x3, sep_conv_3x3, conv_5x5, sep_conv_5x5,
avg_pool_3x3, max_pool_3x3``) to the previous layer's output, adds the skip inputs it chose,
and batch-normalises the sum. Its k skip bits are ENAS's: bit 0 is the stem's output, bit j
the output of layer j - 1 (the previous layer is the input already, so it has no bit;
``general_child.py``: ``prev_layers[i]`` for i < layer_id). After layers ``L//3 - 1`` and
``2L//3 - 1`` every output so far (the stem's included) is halved in resolution by a
factorized reduction (as ENAS), so that later layers can still skip to any earlier one.

Channels: ENAS's search keeps the width constant; its final networks double it at each
reduction. ``supernet()`` keeps it constant, ``build()`` doubles it (``widen=False`` keeps it).

Canonical string: one ``op/bits`` per layer, bits[j] = 1 when layer k reads output j (the
stem for j = 0, layer j - 1 after)::

    conv_3x3|sep_conv_5x5/1|max_pool_3x3/01|conv_5x5/110|...

Encoding: per layer, the op then one 0/1 choice per earlier layer (ENAS's arc order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from archsearch.errors import ArchitectureError
from archsearch.nn.depthwise import DepthwiseConv2d
from archsearch.nn.mixed import mix, selectors
from archsearch.nn.ops import Conv1x1, FactorizedReduce, Pool, ReLUConvBN
from archsearch.registry import SPACES
from archsearch.spaces.base import Architecture, Graph, SearchSpace
from archsearch.types import Decision

OPS = ("conv_3x3", "sep_conv_3x3", "conv_5x5", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3")

Layer = tuple[str, tuple[int, ...]]  # (op, skip bits to layers 0..k-1)


@dataclass(frozen=True)
class MacroArch(Architecture):
    layers: tuple[Layer, ...]
    space = "enas-macro"

    def __post_init__(self) -> None:
        if not self.layers:
            raise ArchitectureError("an ENAS macro architecture needs at least one layer")
        for k, (op, bits) in enumerate(self.layers):
            if op not in OPS:
                raise ArchitectureError(
                    f"layer {k}: unknown op {op!r}; valid ops: {', '.join(OPS)}")
            if len(bits) != k or any(b not in (0, 1) for b in bits):
                raise ArchitectureError(f"layer {k}: needs {k} skip bits of 0/1, got {bits}")

    def to_str(self) -> str:
        return "|".join(op + ("/" + "".join(map(str, bits)) if bits else "")
                        for op, bits in self.layers)


def parse_macro(text: str) -> MacroArch:
    layers = []
    for k, token in enumerate(text.strip().split("|")):
        op, slash, bits = token.strip().partition("/")
        if k > 0 and (not slash or len(bits) != k or set(bits) - {"0", "1"}):
            raise ArchitectureError(
                f"ENAS macro string, layer {k} ({token!r}): expected 'op/' and {k} bits of 0/1"
            )
        if k == 0 and slash:
            raise ArchitectureError(f"ENAS macro string, layer 0 ({token!r}): no skips possible")
        layers.append((op, tuple(int(b) for b in bits)))
    return MacroArch(tuple(layers))


class SepConvBN(nn.Module):
    """ReLU -> depthwise kxk -> pointwise 1x1 -> BN (one separable conv, as ENAS's macro)."""

    def __init__(self, c: int, kernel: int, bn: dict[str, Any]) -> None:
        super().__init__()
        self.dw = DepthwiseConv2d(c, kernel, padding=kernel // 2)
        self.pw = Conv1x1(c, c)
        self.bn = nn.BatchNorm2d(c, **bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.pw(self.dw(F.relu(x))))


def make_macro_op(op: str, c: int, bn: dict[str, Any]) -> nn.Module:
    if op.startswith("conv_"):
        return ReLUConvBN(c, c, int(op[-1]), **bn)
    if op.startswith("sep_conv_"):
        return SepConvBN(c, int(op[-1]), bn)
    if op in ("avg_pool_3x3", "max_pool_3x3"):
        return Pool(op[:3])
    raise ValueError(op)


def pool_layers(n_layers: int) -> tuple[int, ...]:
    distance = n_layers // 3
    return tuple(p for p in (distance - 1, 2 * distance - 1) if p >= 0)


class MacroNet(nn.Module):
    """``arch=None`` makes the supernet (every op per layer, batch-statistics BatchNorm)."""

    def __init__(self, arch: MacroArch | None, n_layers: int = 12, channels: int = 36,
                 num_classes: int = 10, in_channels: int = 3, widen: bool = True,
                 dropout: float = 0.0, bn: dict[str, bool] | None = None) -> None:
        super().__init__()
        self.arch, self.n_layers = arch, n_layers
        self.decisions = ENASMacroSpace(n_layers)  # what a path's choices are read against
        bn = ({"affine": True, "track_running_stats": True} if arch is not None
              else {"affine": False, "track_running_stats": False, **(bn or {})})
        self.pools = pool_layers(n_layers)
        c = channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c, **bn))
        self.ops = nn.ModuleList()
        self.norms = nn.ModuleList()
        # "k_j": the reduction after layer k of output j (0: the stem, j: layer j - 1)
        self.reduce = nn.ModuleDict()
        for k in range(n_layers):
            chosen = OPS if arch is None else (arch.layers[k][0],)
            self.ops.append(nn.ModuleDict({op: make_macro_op(op, c, bn) for op in chosen}))
            self.norms.append(nn.BatchNorm2d(c, **bn))
            if k in self.pools:
                c_next = 2 * c if widen else c
                for j in range(k + 2):
                    if arch is None or j == k + 1 or any(
                            arch.layers[m][1][j] for m in range(k + 1, n_layers) if j < m):
                        # a stand-alone network reduces only outputs read after this point
                        self.reduce[f"{k}_{j}"] = FactorizedReduce(c, c_next, **bn)
                c = c_next
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor, arch: Any = None) -> torch.Tensor:
        """Run ``arch`` (the supernet: any architecture of the space, or a relaxed path: a
        weight vector over each layer's ops and a (no, yes) pair per skip connection)."""
        arch = arch if arch is not None else self.arch
        assert arch is not None, "the supernet needs an architecture to run"
        sels = selectors(self.decisions, arch)
        x = self.stem(x)  # (B, C, H, W)
        outputs: list[torch.Tensor | None] = [x]  # the stem's, then each layer's output
        pos = 0
        for k in range(self.n_layers):
            y = mix(sels[pos], lambda m, k=k, x=x: self.ops[k][OPS[m]](x))
            for j in range(k):
                skip = mix(sels[pos + 1 + j],
                           lambda v, j=j, out=outputs: out[j] if v == 1 else None)
                if skip is not None:
                    y = y + skip  # type: ignore[operator]
            pos += 1 + k
            x = self.norms[k](y)
            outputs.append(x)
            if k in self.pools:  # halve every output so far (channels doubled when widening)
                outputs = [self.reduce[f"{k}_{j}"](o) if f"{k}_{j}" in self.reduce else None
                           for j, o in enumerate(outputs)]
                x = outputs[-1]  # type: ignore[assignment]
        return self.classifier(self.dropout(F.relu(x).mean(dim=(2, 3))))  # (B, classes)


@SPACES.register("enas-macro")
class ENASMacroSpace(SearchSpace):
    name = "enas-macro"
    # CPU-sized networks (the paper's are larger: see build / supernet)
    presets = {"search": {"channels": 16}, "final": {"channels": 24}}
    ops = OPS

    def __init__(self, n_layers: int = 12) -> None:
        self.n_layers = n_layers
        decisions = []
        for k in range(n_layers):
            decisions.append(Decision(f"layer{k}/op", len(OPS), OPS))
            decisions += [Decision(f"layer{k}/skip{j}", 2, ("no", "yes")) for j in range(k)]
        self._decisions = tuple(decisions)

    def decisions(self) -> Sequence[Decision]:
        return self._decisions

    def decode(self, choices: Sequence[int]) -> MacroArch:
        c, layers, pos = self.check_choices(choices), [], 0
        for k in range(self.n_layers):
            layers.append((OPS[c[pos]], tuple(c[pos + 1:pos + 1 + k])))
            pos += 1 + k
        return MacroArch(tuple(layers))

    def encode(self, arch: Architecture) -> tuple[int, ...]:
        assert isinstance(arch, MacroArch)
        return tuple(v for op, bits in arch.layers for v in (OPS.index(op), *bits))

    def graphs(self, arch: Architecture) -> list[Graph]:
        assert isinstance(arch, MacroArch)
        names = ("stem",) + tuple(f"{k}:{op}" for k, (op, _) in enumerate(arch.layers))
        edges = [(k, k + 1, "") for k in range(len(arch.layers))]  # node j: output j
        edges += [(j, k + 1, "skip") for k, (_, bits) in enumerate(arch.layers)
                  for j, b in enumerate(bits) if b]
        return [Graph("ENAS macro network", names, tuple(edges))]

    def parse(self, text: str) -> MacroArch:
        arch = parse_macro(text)
        if len(arch.layers) != self.n_layers:
            raise ArchitectureError(f"ENAS macro string has {len(arch.layers)} layers; this "
                                    f"space has {self.n_layers}")
        return arch

    def build(self, arch: Architecture, channels: int = 36, num_classes: int = 10,
              in_channels: int = 3, widen: bool = True, dropout: float = 0.0,
              network: str = "official", separable: bool = False, **_: Any) -> nn.Module:
        """The stand-alone network. ``network="official"``: as ENAS's code builds a fixed
        architecture (skips concatenated then 1x1, the width doubled at each reduction; see
        :mod:`archsearch.spaces.enas_macro_final`; ``separable`` makes the sep_conv ops
        separable, which the official fixed path does not). ``"shared"``: the supernet's
        sub-network on its own (``widen=False`` keeps the width)."""
        assert isinstance(arch, MacroArch)
        if network == "official":
            from archsearch.spaces.enas_macro_final import FinalMacroNet

            return FinalMacroNet(arch, self.n_layers, pool_layers(self.n_layers), channels,
                                 num_classes, in_channels, dropout, separable)
        if network != "shared":
            raise ArchitectureError(f"network must be 'official' or 'shared', not {network!r}")
        return MacroNet(arch, self.n_layers, channels, num_classes, in_channels, widen, dropout)

    def supernet(self, channels: int = 36, num_classes: int = 10, in_channels: int = 3,
                 bn_affine: bool = False, bn_track: bool = False, **_: Any) -> MacroNet:
        return MacroNet(None, self.n_layers, channels, num_classes, in_channels, widen=False,
                        bn={"affine": bn_affine, "track_running_stats": bn_track})
