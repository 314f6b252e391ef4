"""Conformance checks every search space must pass; run by our tests over the whole registry
and usable as-is by anyone who adds a space::

    from archsearch.testing import space_conformance
    space_conformance.check_all(MySpace(), build={"channels": 4})

What they check: the canonical string round-trips and is what equality keys on; ``encode`` /
``decode`` are inverse and stay within the decisions; sampling and mutation stay valid (a
mutation changes exactly one decision); ``graphs`` describe a forward DAG per cell; and, where
the space has them, the stand-alone network and the supernet run a forward pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from archsearch.spaces.base import Architecture, SearchSpace


def samples(space: SearchSpace, n: int = 12, seed: int = 0) -> list[Architecture]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def check_strings(space: SearchSpace) -> None:
    for arch in samples(space):
        text = arch.to_str()
        again = space.parse(text)
        assert again == arch and again.to_str() == text, text
        assert hash(again) == hash(arch)
        assert space.from_json(arch.to_json()) == arch


def check_encoding(space: SearchSpace) -> None:
    decisions = space.decisions()
    for arch in samples(space):
        choices = space.encode(arch)
        assert len(choices) == len(decisions)
        assert all(0 <= c < d.n_options for c, d in zip(choices, decisions)), choices
        assert space.decode(choices) == arch


def check_sample_and_mutate(space: SearchSpace) -> None:
    rng = np.random.default_rng(1)
    mutable = any(d.n_options > 1 for d in space.decisions())
    drawn = samples(space, 30)
    if space.size() > 30:
        assert len({a.to_str() for a in drawn}) > 1, "sampling always gives the same one"
    for arch in drawn:
        child = space.mutate(arch, rng)
        space.parse(child.to_str())  # valid
        changed = sum(a != b for a, b in zip(space.encode(arch), space.encode(child)))
        assert changed == (1 if mutable else 0), (arch, child)


def check_graphs(space: SearchSpace) -> None:
    for arch in samples(space, 6):
        graphs = space.graphs(arch)
        assert graphs, "no graph"
        for graph in graphs:
            assert graph.nodes and graph.title
            for src, dst, label in graph.edges:
                assert 0 <= src < dst < len(graph.nodes) and isinstance(label, str)


def _input(space: SearchSpace, batch: int) -> tuple[torch.Tensor, dict[str, Any]]:
    if getattr(space, "data", "images") == "text":
        return torch.randint(0, 20, (5, batch)), {"vocab_size": 20}
    return torch.randn(batch, 3, 8, 8), {"num_classes": 3, "in_channels": 3}


def _logits(model: torch.nn.Module, x: torch.Tensor, arch: Any = None) -> torch.Tensor:
    if x.dtype == torch.long:  # a language model: (tokens, hidden) -> (logits, hidden)
        h = model.init_hidden(x.shape[1])  # type: ignore[operator]
        return model(x, h, arch)[0] if arch is not None else model(x, h)[0]
    out = model(x, arch) if arch is not None else model(x)
    return out[0] if isinstance(out, tuple) else out


def check_networks(space: SearchSpace, build: dict[str, Any] | None = None,
                   supernet: dict[str, Any] | None = None) -> None:
    """Stand-alone networks and the supernet (where the space has them) run forward."""
    x, sizes = _input(space, 2)
    for arch in samples(space, 3):
        try:
            model = space.build(arch, **sizes, **(build or {}))
        except NotImplementedError:
            break
        out = _logits(model.eval(), x)
        expected = sizes.get("num_classes", sizes.get("vocab_size"))
        assert out.shape[-1] == expected and torch.isfinite(out).all(), arch
    if hasattr(space, "supernet"):
        net = space.supernet(**sizes, **(supernet or build or {})).eval()  # type: ignore[attr-defined]
        for arch in samples(space, 3):
            out = _logits(net, x, arch)
            assert torch.isfinite(out).all(), arch


def check_all(space: SearchSpace, build: dict[str, Any] | None = None,
              supernet: dict[str, Any] | None = None) -> None:
    check_strings(space)
    check_encoding(space)
    check_sample_and_mutate(space)
    check_graphs(space)
    check_networks(space, build, supernet)
