"""Drawings of architectures: each cell (or the layer stack) as a DAG with labelled edges."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from archsearch.spaces.base import Architecture, Graph, SearchSpace

COLORS = {"none": "#bbbbbb", "skip_connect": "#4c72b0", "identity": "#4c72b0"}


def draw(space: SearchSpace, arch: Architecture, path: str | Path) -> None:
    """Each of the architecture's graphs (``space.graphs``: a cell each, or the network)."""
    graphs = space.graphs(arch)
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
