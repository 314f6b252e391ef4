"""ENAS recurrent cell (Pham et al., 2018) for language modelling.

A cell of N nodes (12 in ENAS's official PTB search script). Node 0 reads the input and the
previous hidden state; every later node i reads one earlier node j < i; each applies an
activation f in ``tanh, relu, identity, sigmoid`` inside a highway connection::

    node 0:  c = sigmoid(Wc x_t + Uc h_{t-1}),  h_0 = c * f(Wh x_t + Uh h_{t-1}) + (1 - c) * h_{t-1}
    node i:  c = sigmoid(Wc_ij h_j),            h_i = c * f(Wh_ij h_j) + (1 - c) * h_j

The cell's output (the next hidden state) is the mean of the *loose ends*, the nodes no other
node reads. Every pair (i, j) has its own weights (the paper: "for each pair of nodes j < l,
there is an independent parameter matrix"), which the supernet holds for all pairs and a
stand-alone cell only for its chosen ones.

Canonical string: node 0's activation, then ``activation~previous`` per node::

    tanh|relu~0|sigmoid~1|identity~1|tanh~3|...

Encoding (ENAS's arc order): node 0's activation, then per node its previous node and its
activation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from archsearch.errors import ArchitectureError
from archsearch.registry import SPACES
from archsearch.spaces.base import Architecture, Graph, SearchSpace
from archsearch.types import Decision

ACTIVATIONS = ("tanh", "relu", "identity", "sigmoid")
FUNCTIONS = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda x: x,
             "sigmoid": torch.sigmoid}

Node = tuple[int, str]  # (previous node, activation); node 0 has previous -1


@dataclass(frozen=True)
class RNNCell(Architecture):
    nodes: tuple[Node, ...]
    space = "enas-rnn"

    def __post_init__(self) -> None:
        if not self.nodes:
            raise ArchitectureError("an ENAS recurrent cell needs at least one node")
        for i, (prev, act) in enumerate(self.nodes):
            if act not in ACTIVATIONS:
                raise ArchitectureError(f"node {i}: unknown activation {act!r}; valid: "
                                        f"{', '.join(ACTIVATIONS)}")
            if (i == 0 and prev != -1) or (i > 0 and not 0 <= prev < i):
                raise ArchitectureError(f"node {i}: reads node {prev}, must be in 0..{i - 1}")

    def loose_ends(self) -> tuple[int, ...]:
        read = {prev for prev, _ in self.nodes[1:]}
        return tuple(i for i in range(len(self.nodes)) if i not in read)

    def to_str(self) -> str:
        return "|".join(act if i == 0 else f"{act}~{prev}"
                        for i, (prev, act) in enumerate(self.nodes))


def parse_rnn(text: str) -> RNNCell:
    nodes: list[Node] = []
    for i, token in enumerate(text.strip().split("|")):
        act, tilde, prev = token.strip().partition("~")
        if i == 0:
            if tilde:
                raise ArchitectureError(f"ENAS RNN string, node 0 ({token!r}): node 0 reads the "
                                        "input, write its activation alone")
            nodes.append((-1, act))
            continue
        if not tilde or not prev.isdigit():
            raise ArchitectureError(f"ENAS RNN string, node {i} ({token!r}): expected "
                                    "'activation~previous'")
        nodes.append((int(prev), act))
    return RNNCell(tuple(nodes))


class RNNCellModule(nn.Module):
    """One time step of the cell. ``cell=None``: the supernet (weights for every pair).

    ``step(xw, h, cell)``: ``xw`` is node 0's input projection ``W x_t`` (precomputed for all
    time steps at once by the caller), ``h`` the previous hidden state (B, H).
    """

    def __init__(self, cell: RNNCell | None, n_nodes: int, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.cell, self.hidden = cell, hidden
        self.w_x = nn.Linear(in_dim, 2 * hidden, bias=False)  # node 0: x part of [c; h]
        self.w_h = nn.Linear(hidden, 2 * hidden, bias=False)  # node 0: h_{t-1} part
        pairs = ((i, j) for i in range(1, n_nodes) for j in range(i)) if cell is None else \
            ((i, prev) for i, (prev, _) in enumerate(cell.nodes) if i > 0)
        self.w = nn.ModuleDict({f"{i}_{j}": nn.Linear(hidden, 2 * hidden, bias=False)
                                for i, j in pairs})
        self.reset_parameters()

    def reset_parameters(self, init_range: float = 0.04) -> None:
        for p in self.parameters():  # ENAS initialises the RNN weights uniformly
            nn.init.uniform_(p, -init_range, init_range)

    def step(self, xw: torch.Tensor, h: torch.Tensor, cell: RNNCell) -> torch.Tensor:
        c, z = (xw + self.w_h(h)).chunk(2, dim=-1)  # (B, H) each
        c = torch.sigmoid(c)
        states = [c * FUNCTIONS[cell.nodes[0][1]](z) + (1 - c) * h]
        for i, (prev, act) in enumerate(cell.nodes[1:], start=1):
            src = states[prev]
            c, z = self.w[f"{i}_{prev}"](src).chunk(2, dim=-1)
            c = torch.sigmoid(c)
            states.append(c * FUNCTIONS[act](z) + (1 - c) * src)
        loose = cell.loose_ends()
        return torch.stack([states[i] for i in loose]).mean(0)  # (B, H)


@SPACES.register("enas-rnn")
class ENASRNNSpace(SearchSpace):
    name = "enas-rnn"
    # CPU-sized networks (the paper's are larger: see build / supernet)
    presets = {"search": {"hidden": 200}, "final": {"hidden": 200}}
    data = "text"
    ops = ACTIVATIONS

    def __init__(self, n_nodes: int = 12) -> None:
        self.n_nodes = n_nodes
        decisions = [Decision("node0/activation", len(ACTIVATIONS), ACTIVATIONS)]
        for i in range(1, n_nodes):
            decisions.append(Decision(f"node{i}/previous", i))
            decisions.append(Decision(f"node{i}/activation", len(ACTIVATIONS), ACTIVATIONS))
        self._decisions = tuple(decisions)

    def decisions(self) -> Sequence[Decision]:
        return self._decisions

    def decode(self, choices: Sequence[int]) -> RNNCell:
        c = self.check_choices(choices)
        nodes: list[Node] = [(-1, ACTIVATIONS[c[0]])]
        for i in range(1, self.n_nodes):
            nodes.append((c[2 * i - 1], ACTIVATIONS[c[2 * i]]))
        return RNNCell(tuple(nodes))

    def encode(self, arch: Architecture) -> tuple[int, ...]:
        assert isinstance(arch, RNNCell)
        out = [ACTIVATIONS.index(arch.nodes[0][1])]
        for prev, act in arch.nodes[1:]:
            out += [prev, ACTIVATIONS.index(act)]
        return tuple(out)

    def graphs(self, arch: Architecture) -> list[Graph]:
        assert isinstance(arch, RNNCell)
        names = ("x, h[t-1]",) + tuple(str(i) for i in range(len(arch.nodes))) + ("h[t]",)
        edges = [(0, 1, arch.nodes[0][1])]
        edges += [(prev + 1, i + 1, act) for i, (prev, act) in enumerate(arch.nodes) if i > 0]
        edges += [(i + 1, len(names) - 1, "") for i in arch.loose_ends()]
        return [Graph("ENAS recurrent cell (output: mean of the loose ends)", names,
                      tuple(edges))]

    def parse(self, text: str) -> RNNCell:
        arch = parse_rnn(text)
        if len(arch.nodes) != self.n_nodes:
            raise ArchitectureError(f"ENAS RNN string has {len(arch.nodes)} nodes; this space "
                                    f"has {self.n_nodes}")
        return arch

    def build(self, arch: Architecture, vocab_size: int = 10000, hidden: int = 256,
              **options: Any) -> nn.Module:
        """The stand-alone language model of this cell (see ``archsearch.nn.language_model``)."""
        from archsearch.nn.language_model import RNNLanguageModel

        assert isinstance(arch, RNNCell)
        cell = RNNCellModule(arch, self.n_nodes, hidden, hidden)
        return RNNLanguageModel(cell, vocab_size, hidden, **options)

    def supernet(self, vocab_size: int = 10000, hidden: int = 256, **options: Any) -> nn.Module:
        from archsearch.nn.language_model import RNNLanguageModel

        cell = RNNCellModule(None, self.n_nodes, hidden, hidden)
        return RNNLanguageModel(cell, vocab_size, hidden, **options)
