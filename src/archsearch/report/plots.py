"""Plots people would rather look at than read: search curves, best-so-far per trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_benchmark(report: dict[str, Any], path: str | Path, optimum: float | None = None) -> None:
    """Mean best-so-far curve with a +-1 std band per strategy."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, res in report["results"].items():
        q = res["queries"]
        mean, std = res["mean"], res["std"]
        ax.plot(q, mean, label=name, linewidth=1.8)
        ax.fill_between(q, [m - s for m, s in zip(mean, std)],
                        [m + s for m, s in zip(mean, std)], alpha=0.15)
    if optimum is not None:
        ax.axhline(optimum, color="black", linestyle=":", linewidth=1, label=f"optimum {optimum:.2f}")
    ax.set_xscale("log")
    ax.set_xlabel("queries")
    protocol = report["protocol"].split(":")[0]  # oracle-reward, validation-reward
    ax.set_ylabel(f"best {report['metric']} so far" if protocol == "oracle-reward"
                  else f"{report['metric']} of the best observed")
    first = min(5, report["queries"])
    ax.set_xlim(first, report["queries"])
    low = min(res["mean"][first - 1] for res in report["results"].values())
    high = optimum if optimum is not None else max(max(r["mean"]) for r in report["results"].values())
    ax.set_ylim(low - 0.05 * (high - low), high + 0.1 * (high - low))
    ax.set_title(f"{report['space']}: {report['seeds']} seeds ({protocol} protocol)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_search(objectives: list[float | None], path: str | Path, title: str = "") -> None:
    """Each trial's objective (dots) and the best so far (line)."""
    xs = [i for i, v in enumerate(objectives) if v is not None]
    ys = [v for v in objectives if v is not None]
    best, run = [], float("-inf")
    for v in ys:
        run = max(run, v)
        best.append(run)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(xs, ys, s=12, alpha=0.6, label="trial")
    ax.plot(xs, best, color="C1", linewidth=2, label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_epochs(history: list[dict[str, Any]], path: str | Path) -> None:
    """A one-shot search per epoch: the supernet's training loss and accuracy, the method's
    reward and the derived architecture's score; the controller's entropy where it has one."""
    def series(key: str) -> list[float]:
        return [float("nan") if r.get(key) is None else float(r[key]) for r in history]

    epochs = [r["epoch"] for r in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(epochs, series("shared_acc"), label="supernet train acc")
    a.plot(epochs, series("shared_loss"), label="supernet train loss")
    if any(r.get("reward") is not None for r in history):
        a.plot(epochs, series("reward"), label="controller reward")
    a.plot(epochs, series("derived_score"), label="derived architecture's score")
    a.set_xlabel("epoch")
    a.legend()
    a.grid(alpha=0.3)
    if any(r.get("entropy") is not None for r in history):
        b.plot(epochs, series("entropy"), color="C3")
        b.set_ylabel("controller entropy (nats)")
    else:
        b.plot(epochs, series("seconds"), color="C3")
        b.set_ylabel("seconds per epoch")
    b.set_xlabel("epoch")
    b.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
