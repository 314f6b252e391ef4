"""NAS-RL's convolutional space (Zoph & Le, 2017): a stack of conv layers with learned skips.

Each layer picks a filter height and width in {1, 3, 5, 7}, a number of filters in
{24, 36, 48, 64} and, when the space allows strides, a stride in {1, 2}; and, through the
controller's *anchor points*, which earlier layers feed it (one bit per earlier layer). The
network follows the paper's three rules for skip connections: a layer's inputs are
concatenated along channels (smaller maps zero-padded to the largest); a layer with no input
reads the image; every output that no later layer reads is sent to the classifier. Each layer
is conv -> BatchNorm -> ReLU with "same" padding.

Canonical string, one token per layer, ``HxW:F`` then ``:s2`` for stride 2 and ``<bits`` (layer
k > 0: bit j is 1 when layer j feeds it)::

    3x3:36|5x1:24:s2<1|7x7:64<01

Depth is a parameter: ``depth`` is the number of layers of the space's decisions (what random
search and evolution search over), and any architecture of 1..``depth`` layers is valid, so a
strategy can grow the depth (NAS-RL's curriculum) within one space. Encoding per layer: height,
width, filters, (stride), then the skip bits, in the controller's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from archsearch.errors import ArchitectureError
from archsearch.registry import SPACES
from archsearch.spaces.base import Architecture, Graph, SearchSpace
from archsearch.types import Decision

SIZES = (1, 3, 5, 7)
FILTERS = (24, 36, 48, 64)
STRIDES = (1, 2)


@dataclass(frozen=True)
class ConvLayer:
    height: int
    width: int
    filters: int
    stride: int
    inputs: tuple[int, ...]  # bit j: layer j feeds this layer

    def token(self) -> str:
        text = f"{self.height}x{self.width}:{self.filters}"
        text += ":s2" if self.stride == 2 else ""
        return text + ("<" + "".join(map(str, self.inputs)) if self.inputs else "")


@dataclass(frozen=True)
class NASRLArch(Architecture):
    layers: tuple[ConvLayer, ...]
    space = "nasrl-cnn"

    def __post_init__(self) -> None:
        if not self.layers:
            raise ArchitectureError("a NAS-RL architecture needs at least one layer")
        for k, layer in enumerate(self.layers):
            where = f"layer {k} ({layer.token()})"
            if layer.height not in SIZES or layer.width not in SIZES:
                raise ArchitectureError(f"{where}: filter sizes must be in {SIZES}")
            if layer.filters not in FILTERS:
                raise ArchitectureError(f"{where}: filters must be in {FILTERS}")
            if layer.stride not in STRIDES:
                raise ArchitectureError(f"{where}: stride must be 1 or 2")
            if len(layer.inputs) != k or set(layer.inputs) - {0, 1}:
                raise ArchitectureError(f"{where}: needs {k} input bits of 0/1")

    @property
    def depth(self) -> int:
        return len(self.layers)

    def to_str(self) -> str:
        return "|".join(layer.token() for layer in self.layers)


def parse_layer(k: int, token: str) -> ConvLayer:
    body, _, bits = token.strip().partition("<")
    parts = body.split(":")
    try:
        height, width = (int(v) for v in parts[0].split("x"))
        filters = int(parts[1])
        stride = 2 if parts[2:] == ["s2"] else 1
        if len(parts) > 3 or (len(parts) == 3 and parts[2] != "s2"):
            raise ValueError
        inputs = tuple(int(b) for b in bits)
    except (ValueError, IndexError):
        raise ArchitectureError(f"NAS-RL string, layer {k} ({token!r}): expected 'HxW:F', "
                                "optionally ':s2', then '<' and one 0/1 bit per earlier layer"
                                ) from None
    return ConvLayer(height, width, filters, stride, inputs)


class ConvBNReLU(nn.Module):
    def __init__(self, c_in: int, layer: ConvLayer) -> None:
        super().__init__()
        pad = (layer.height // 2, layer.width // 2)
        self.conv = nn.Conv2d(c_in, layer.filters, (layer.height, layer.width), layer.stride,
                              pad, bias=False)
        self.bn = nn.BatchNorm2d(layer.filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def pad_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Zero-pad the bottom and right of (B, C, h', w') to (B, C, h, w)."""
    return F.pad(x, (0, w - x.shape[3], 0, h - x.shape[2]))


class NASRLNet(nn.Module):
    def __init__(self, arch: NASRLArch, num_classes: int = 10, in_channels: int = 3,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.arch = arch
        channels: list[int] = []
        self.layers = nn.ModuleList()
        for layer in arch.layers:
            feeds = [channels[j] for j, bit in enumerate(layer.inputs) if bit]
            self.layers.append(ConvBNReLU(sum(feeds) or in_channels, layer))
            channels.append(layer.filters)
        read = {j for layer in arch.layers for j, bit in enumerate(layer.inputs) if bit}
        self.ends = [k for k in range(arch.depth) if k not in read]  # to the classifier
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(sum(channels[k] for k in self.ends), num_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor] = []
        for layer, module in zip(self.arch.layers, self.layers):
            feeds = [outputs[j] for j, bit in enumerate(layer.inputs) if bit]
            if not feeds:
                x = image  # (B, C_in, H, W)
            elif len(feeds) == 1:
                x = feeds[0]
            else:
                h = max(f.shape[2] for f in feeds)
                w = max(f.shape[3] for f in feeds)
                x = torch.cat([pad_to(f, h, w) for f in feeds], 1)  # (B, sum C, h, w)
            outputs.append(module(x))
        # each unread output globally pooled, then concatenated: (B, sum C_end)
        pooled = torch.cat([outputs[k].mean(dim=(2, 3)) for k in self.ends], 1)
        return self.classifier(self.dropout(pooled))


@SPACES.register("nasrl-cnn")
class NASRLSpace(SearchSpace):
    """``depth`` layers (6: CPU-sized; the paper grew to 15 and more); ``strides`` lets layers
    choose stride 2 (the paper searched both ways)."""

    name = "nasrl-cnn"

    def __init__(self, depth: int = 6, strides: bool = False) -> None:
        if depth < 1:
            raise ArchitectureError("nasrl-cnn: depth must be at least 1")
        self.depth, self.strides = depth, strides
        self.per_layer = 4 if strides else 3  # decisions before a layer's skip bits

    def layer_decisions(self, k: int) -> list[Decision]:
        out = [Decision(f"layer{k}/height", 4, tuple(map(str, SIZES))),
               Decision(f"layer{k}/width", 4, tuple(map(str, SIZES))),
               Decision(f"layer{k}/filters", 4, tuple(map(str, FILTERS)))]
        if self.strides:
            out.append(Decision(f"layer{k}/stride", 2, tuple(map(str, STRIDES))))
        return out + [Decision(f"layer{k}/input{j}", 2, ("no", "yes")) for j in range(k)]

    def decisions(self, depth: int | None = None) -> Sequence[Decision]:
        return [d for k in range(depth or self.depth) for d in self.layer_decisions(k)]

    def n_choices(self, depth: int) -> int:
        return depth * self.per_layer + depth * (depth - 1) // 2

    def depth_of(self, n_choices: int) -> int:
        for depth in range(1, self.depth + 1):
            if self.n_choices(depth) == n_choices:
                return depth
        raise ArchitectureError(f"nasrl-cnn: {n_choices} choices match no depth in "
                                f"1..{self.depth}")

    def decode(self, choices: Sequence[int]) -> NASRLArch:
        c = [int(v) for v in choices]
        depth = self.depth_of(len(c))
        for i, (v, d) in enumerate(zip(c, self.decisions(depth))):
            if not 0 <= v < d.n_options:
                raise ArchitectureError(f"nasrl-cnn: choice {i} ({d.label}) is {v}, must be in "
                                        f"0..{d.n_options - 1}")
        layers, pos = [], 0
        for k in range(depth):
            stride = STRIDES[c[pos + 3]] if self.strides else 1
            pos += self.per_layer
            layers.append(ConvLayer(SIZES[c[pos - self.per_layer]],
                                    SIZES[c[pos - self.per_layer + 1]],
                                    FILTERS[c[pos - self.per_layer + 2]], stride,
                                    tuple(c[pos:pos + k])))
            pos += k
        return NASRLArch(tuple(layers))

    def encode(self, arch: Architecture) -> tuple[int, ...]:
        assert isinstance(arch, NASRLArch)
        out: list[int] = []
        for layer in arch.layers:
            out += [SIZES.index(layer.height), SIZES.index(layer.width),
                    FILTERS.index(layer.filters)]
            if self.strides:
                out.append(STRIDES.index(layer.stride))
            out += layer.inputs
        return tuple(out)

    def graphs(self, arch: Architecture) -> list[Graph]:
        """Layer k reads the layers its anchor bits select (the image when none); the outputs
        no layer reads are concatenated into the classifier."""
        assert isinstance(arch, NASRLArch)
        names = ("image",) + tuple(f"{k}:{layer.token().split('<')[0]}"
                                   for k, layer in enumerate(arch.layers)) + ("classifier",)
        edges = []
        for k, layer in enumerate(arch.layers):
            sources = [j + 1 for j, bit in enumerate(layer.inputs) if bit] or [0]
            edges += [(src, k + 1, "") for src in sources]
        read = {j for layer in arch.layers for j, bit in enumerate(layer.inputs) if bit}
        edges += [(k + 1, len(names) - 1, "") for k in range(arch.depth) if k not in read]
        return [Graph("NAS-RL layer stack", names, tuple(edges))]

    def parse(self, text: str) -> NASRLArch:
        arch = NASRLArch(tuple(parse_layer(k, t) for k, t in enumerate(text.strip().split("|"))))
        if arch.depth > self.depth:
            raise ArchitectureError(f"nasrl-cnn string has {arch.depth} layers; this space has "
                                    f"at most {self.depth} (set depth)")
        if not self.strides and any(layer.stride != 1 for layer in arch.layers):
            raise ArchitectureError("nasrl-cnn string uses stride 2 but this space has no "
                                    "strides (set strides=True)")
        return arch

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """One decision of the architecture's own depth changed."""
        assert isinstance(arch, NASRLArch)
        choices = list(self.encode(arch))
        decisions = self.decisions(arch.depth)
        i = int(rng.integers(len(choices)))
        choices[i] = (choices[i] + 1 + int(rng.integers(decisions[i].n_options - 1))) \
            % decisions[i].n_options
        return self.decode(choices)

    def build(self, arch: Architecture, num_classes: int = 10, in_channels: int = 3,
              dropout: float = 0.0, **_: Any) -> NASRLNet:
        assert isinstance(arch, NASRLArch)
        return NASRLNet(arch, num_classes, in_channels, dropout)
