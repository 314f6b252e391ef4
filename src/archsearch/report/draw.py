"""Drawings of architectures: each cell (or the layer stack) as a DAG with labelled edges."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from archsearch.spaces.base import Architecture

COLORS = {"none": "#bbbbbb", "skip_connect": "#4c72b0", "identity": "#4c72b0"}


@dataclass(frozen=True)
class Graph:
    title: str
    nodes: tuple[str, ...]  # drawn left to right in this order
    edges: tuple[tuple[int, int, str], ...]  # (source, target, label)


def arch_graphs(arch: Architecture) -> list[Graph]:
    """The DAG(s) of an architecture of any space this project draws."""
    from archsearch.spaces.enas_macro import MacroArch
    from archsearch.spaces.enas_micro import CELLS, MicroCell, loose_ends
    from archsearch.spaces.nb201 import EDGES, NB201Cell

    if isinstance(arch, NB201Cell):
        edges = tuple((i, j, op) for (j, i), op in zip(EDGES, arch.ops) if op != "none")
        return [Graph("NAS-Bench-201 cell", ("in", "1", "2", "out"), edges)]
    if isinstance(arch, MicroCell):
        graphs = []
        for kind in CELLS:
            nodes = arch.cell(kind)
            names = ("c[k-2]", "c[k-1]") + tuple(str(i + 2) for i in range(len(nodes))) + ("out",)
            edges = [(a, b + 2, oa) for b, (a, oa, _, _) in enumerate(nodes)]
            edges += [(c, b + 2, oc) for b, (_, _, c, oc) in enumerate(nodes)]
            edges += [(i, len(names) - 1, "") for i in loose_ends(nodes)]
            graphs.append(Graph(f"{kind} cell", names, tuple(edges)))
        return graphs
    if isinstance(arch, MacroArch):
        names = ("input",) + tuple(f"{k}:{op}" for k, (op, _) in enumerate(arch.layers))
        edges = [(k, k + 1, "") for k in range(len(arch.layers))]
        edges += [(j + 1, k + 1, "skip") for k, (_, bits) in enumerate(arch.layers)
                  for j, b in enumerate(bits) if b]
        return [Graph("ENAS macro network", names, tuple(edges))]
    from archsearch.spaces.enas_rnn import RNNCell

    if isinstance(arch, RNNCell):
        names = ("x, h[t-1]",) + tuple(str(i) for i in range(len(arch.nodes))) + ("h[t]",)
        edges = [(0, 1, arch.nodes[0][1])]
        edges += [(prev + 1, i + 1, act) for i, (prev, act) in enumerate(arch.nodes) if i > 0]
        edges += [(i + 1, len(names) - 1, "") for i in arch.loose_ends()]
        return [Graph("ENAS recurrent cell (output: mean of the loose ends)", names,
                      tuple(edges))]
    raise TypeError(f"no drawing for {type(arch).__name__}")


def draw(arch: Architecture, path: str | Path) -> None:
    graphs = arch_graphs(arch)
    width = max(len(g.nodes) for g in graphs)
    fig, axes = plt.subplots(len(graphs), 1, figsize=(max(6, 1.3 * width), 3.2 * len(graphs)),
                             squeeze=False)
    for ax, graph in zip(axes[:, 0], graphs):
        _draw_graph(ax, graph)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _draw_graph(ax: plt.Axes, graph: Graph) -> None:
    xs = {i: float(i) for i in range(len(graph.nodes))}
    pairs = [(src, dst) for src, dst, _ in graph.edges]
    for n, (src, dst, label) in enumerate(graph.edges):
        span = dst - src
        twin = pairs.count((src, dst)) > 1  # two ops on the same pair of nodes: bend both
        rad = 0.0 if span == 1 and not twin else \
            (0.35 if n % 2 else -0.35) * min(1.0, 0.4 + 0.15 * span)
        color = COLORS.get(label, "#dd8452" if label else "#888888")
        ax.annotate("", xy=(xs[dst], 0), xytext=(xs[src], 0),
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=1.4, shrinkA=14,
                                    shrinkB=14, connectionstyle=f"arc3,rad={rad}"))
        if label:
            ax.text((xs[src] + xs[dst]) / 2, -rad * span * 0.5, label, fontsize=7, ha="center",
                    va="center", color=color,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    for i, name in enumerate(graph.nodes):
        ax.text(xs[i], 0, name, ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="round,pad=0.4", fc="#f0f0f0", ec="#333333"))
    ax.set_xlim(-0.7, len(graph.nodes) - 0.3)
    ax.set_ylim(-1.6, 1.6)
    ax.set_title(graph.title, fontsize=10)
    ax.axis("off")
