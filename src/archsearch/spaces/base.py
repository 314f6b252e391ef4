"""What every search space provides, and the generic operations built on it.

A space is an ordered list of categorical :class:`~archsearch.types.Decision` s. An architecture
is a frozen, validated value (one subclass of :class:`Architecture` per space) with a canonical
string; ``encode``/``decode`` map it to and from one integer per decision. Everything generic
(random sampling, one-decision mutation) is written once here, in terms of those two.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from torch import nn

from archsearch.errors import ArchitectureError
from archsearch.types import Decision


class Architecture(abc.ABC):
    """An immutable architecture value. Subclasses are frozen dataclasses.

    Equal architectures have equal canonical strings (``to_str``), which is what storage,
    deduplication and benchmark lookups key on.
    """

    space: ClassVar[str]

    @abc.abstractmethod
    def to_str(self) -> str: ...

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "arch": self.to_str()}

    def __str__(self) -> str:
        return self.to_str()


@dataclass(frozen=True)
class Graph:
    """An architecture (or one of its cells) as a DAG, for drawings and graph encodings:
    node names in topological order and (source, target, label) edges."""

    title: str
    nodes: tuple[str, ...]
    edges: tuple[tuple[int, int, str], ...]

    def __post_init__(self) -> None:
        for src, dst, _ in self.edges:
            if not 0 <= src < dst < len(self.nodes):
                raise ValueError(f"edge {src}->{dst} of {self.title!r} is not forward")


class SearchSpace(abc.ABC):
    """The protocol: ``decisions``, ``decode``, ``encode``, ``parse`` and ``build``.

    ``presets`` are the space's CPU-sized networks: ``search`` (the network each trial trains,
    or the supernet) and ``final`` (the retrained network), keyword arguments of ``build`` /
    ``supernet``; ``data`` says what the space is searched on (``images`` or ``text``).
    """

    name: ClassVar[str]
    presets: ClassVar[dict[str, dict[str, Any]]] = {"search": {}, "final": {}}
    data: ClassVar[str] = "images"

    @abc.abstractmethod
    def decisions(self) -> Sequence[Decision]:
        """The ordered categorical choices that define an architecture."""

    @abc.abstractmethod
    def decode(self, choices: Sequence[int]) -> Architecture:
        """One integer per decision -> architecture. Raises ArchitectureError when invalid."""

    @abc.abstractmethod
    def encode(self, arch: Architecture) -> tuple[int, ...]:
        """The inverse of ``decode``."""

    @abc.abstractmethod
    def parse(self, text: str) -> Architecture:
        """Canonical string -> architecture. Raises ArchitectureError saying where it is wrong."""

    def build(self, arch: Architecture, **hparams: Any) -> nn.Module:
        """The stand-alone network of ``arch`` (input NCHW images, output class logits)."""
        raise NotImplementedError(f"space {self.name!r} does not build networks")

    # ---- relaxed paths through a supernet (see archsearch.nn.mixed) ----------------------

    def relaxed_decisions(self) -> Sequence[Decision]:
        """The decisions a supernet's :class:`~archsearch.nn.mixed.Relaxed` path weighs, one
        weight vector each: by default ``decisions()``; a space whose supernet relaxes
        something else (DARTS: every edge of the full cell) says what."""
        return self.decisions()

    def relaxed_choices(self, arch: Architecture) -> tuple[int, ...]:
        """``arch`` as one option per relaxed decision (by default its encoding)."""
        return self.encode(arch)

    def relaxed_cells(self) -> tuple[tuple[str, int], ...]:
        """(name, count) per run of relaxed decisions that share one architecture-weight
        matrix in a differentiable search (DARTS' one alpha per cell type); by default one
        run of all of them."""
        return (("cell", len(self.relaxed_decisions())),)

    # ---- generic operations, written once over decisions/encode/decode -------------------

    def check_choices(self, choices: Sequence[int]) -> tuple[int, ...]:
        decisions = self.decisions()
        choices = tuple(int(c) for c in choices)
        if len(choices) != len(decisions):
            raise ArchitectureError(
                f"{self.name}: expected {len(decisions)} choices, got {len(choices)}"
            )
        for i, (c, d) in enumerate(zip(choices, decisions)):
            if not 0 <= c < d.n_options:
                raise ArchitectureError(
                    f"{self.name}: choice {i} ({d.label}) is {c}, must be in 0..{d.n_options - 1}"
                )
        return choices

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random architecture (uniform over decisions)."""
        return self.decode([int(rng.integers(d.n_options)) for d in self.decisions()])

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Change exactly one decision (that has an alternative) to a different option."""
        choices = list(self.encode(arch))
        mutable = [i for i, d in enumerate(self.decisions()) if d.n_options > 1]
        if not mutable:
            return arch
        i = mutable[int(rng.integers(len(mutable)))]
        offset = 1 + int(rng.integers(self.decisions()[i].n_options - 1))
        choices[i] = (choices[i] + offset) % self.decisions()[i].n_options
        return self.decode(choices)

    def size(self) -> int:
        """The number of distinct choice vectors."""
        return int(np.prod([d.n_options for d in self.decisions()], dtype=object))

    def graphs(self, arch: Architecture) -> list[Graph]:
        """The architecture's DAG(s) (a cell space: one per cell kind). By default a chain
        through the decisions and their chosen options."""
        names = ["input"] + [f"{d.label}={d.options[c] if d.options else c}"
                             for d, c in zip(self.decisions(), self.encode(arch))]
        return [Graph(f"{self.name} architecture", tuple(names),
                      tuple((i, i + 1, "") for i in range(len(names) - 1)))]

    def iso_key(self, arch: Architecture) -> str:
        """A key equal for architectures that compute the same function (default: the string)."""
        return arch.to_str()

    def from_json(self, data: str | dict[str, Any]) -> Architecture:
        """Architecture from ``{"space": ..., "arch": ...}`` (or that JSON text)."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise ArchitectureError(f"architecture JSON is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or "arch" not in data:
            raise ArchitectureError('architecture JSON must be an object with an "arch" key')
        if data.get("space", self.name) != self.name:
            raise ArchitectureError(
                f"architecture is of space {data['space']!r}, not {self.name!r}"
            )
        return self.parse(str(data["arch"]))
