"""Paths through a supernet: per decision either one choice or a weight vector over its options.

A supernet's ``forward(x, path)`` takes an architecture of its space (one choice per decision:
the sub-network ENAS or SPOS trains) or a :class:`Relaxed` path (a weight vector per decision:
DARTS' softmax, GDAS's or SNAS's Gumbel samples). Inside, each decision becomes a *selector*
(:func:`selectors`), and every place the supernet makes that decision calls :func:`mix`::

    y = mix(selector, lambda j: ops[j](x))

or, so that an op can fold its weight into its last BatchNorm (``nn.ops.run_scaled``), with
:func:`mix_scaled`, whose ``compute(j, w)`` returns option j's output times ``w`` (None: 1).

With a choice, ``mix`` runs that one option (the discrete sub-network, exactly as before); with
weights, the weighted sum of the options' outputs, skipping options whose output is nothing
(``none``: ``compute`` returns None) and options outside ``active``. ``active`` is decided on the
host by the method (GDAS computes only its sampled op, SPOS-style methods one path), so a step
never waits for the device to say which weights are zero; without it, zero weights are skipped
when the weights live on the CPU (where reading them costs nothing) and all options run
elsewhere.

Where a node sums several relaxed edges, the NB201 and darts supernets gather each edge's
weighted ops into the node's one sum instead (:class:`archsearch.nn.terms.Terms`: the same
values up to float rounding, in one pass over memory, the ops' last BatchNorms normalised on
the way); choices, samples and single-option weights go through :func:`mix`.

A path may also weigh each *edge* in its node's sum (``edge_weights``, one per relaxed decision
of a space whose relaxed decisions are edges: PC-DARTS' edge normalisation, softmax(beta) over
each node's incoming edges); the supernet multiplies each edge's output by its weight
(:func:`edge_weights`, :func:`weigh`). Without them (every other method) each edge weighs 1,
and nothing is multiplied.

A ``straight_through`` path (GDAS's hard Gumbel sample, one-hot in value) runs only its one
active option per decision, ``w[c] * op_c(x)``, and adds the other options' weights to that
output, ``+ sum_{j != c} w[j]``: zero in value, but each of those weights gets the gradient of
the output's sum, as AutoDL's NB201 GDAS cell (``forward_gdas``) adds them, so that every
option's weight is in the graph while one op computes. Where the active option is ``none`` the
edge's output is that zero-valued scalar alone; a supernet's node turns a scalar-only sum into
a zero map with :func:`node_sum`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from archsearch.errors import ArchitectureError

Weighted = tuple[torch.Tensor, tuple[int, ...]]  # (weights over the options, options to compute)


@dataclass(frozen=True, eq=False)
class Sampled:
    """A straight-through selector: option ``index`` runs, times its weight, plus ``rest``."""

    weights: torch.Tensor  # (n_options,), one-hot in value
    index: int
    rest: torch.Tensor  # (): the other options' weights summed, zero in value


Selector = int | Weighted | Sampled


@dataclass(frozen=True, eq=False)
class Relaxed:
    """A weight vector per relaxed decision of a space, in its ``relaxed_decisions()`` order
    (by default its ``decisions()``).

    ``active``: per decision, the options worth computing (None: every option with a nonzero
    weight where that is free to check, else all). ``edge_weights``: shape (decisions,), the
    weight of each decision's edge in its node's sum (None: 1 each, nothing multiplied).
    ``straight_through``: each decision has one active option and the others' weights are kept
    in the graph (see the module docstring)."""

    weights: tuple[torch.Tensor, ...]
    active: tuple[tuple[int, ...], ...] | None = None
    edge_weights: torch.Tensor | None = None
    straight_through: bool = False


def selectors(space: Any, path: Any) -> list[Selector]:
    """One selector per relaxed decision of ``space`` (``space.relaxed_decisions()``, by
    default its decisions): the choices of an architecture (``space.relaxed_choices``), or
    (weights, active options) of a :class:`Relaxed` path, checked against the sizes."""
    if not isinstance(path, Relaxed):
        return list(space.relaxed_choices(path))
    decisions = space.relaxed_decisions()
    if len(path.weights) != len(decisions):
        raise ArchitectureError(f"{space.name}: a relaxed path needs {len(decisions)} weight "
                                f"vectors, got {len(path.weights)}")
    out: list[Selector] = []
    for d, (decision, w) in enumerate(zip(decisions, path.weights)):
        if w.shape != (decision.n_options,):
            raise ArchitectureError(f"{space.name}: decision {decision.label} takes "
                                    f"{decision.n_options} weights, got shape {tuple(w.shape)}")
        if path.straight_through:
            out.append(_sampled(decision.label, w, None if path.active is None
                                else path.active[d]))
            continue
        if path.active is not None:
            active = tuple(path.active[d])
        elif w.device.type == "cpu":
            active = tuple(int(j) for j in torch.nonzero(w.detach()).flatten())
        else:
            active = tuple(range(decision.n_options))
        out.append((w, active))
    return out


def _sampled(label: str, w: torch.Tensor, active: tuple[int, ...] | None) -> Sampled:
    if active is None or len(active) != 1:
        raise ArchitectureError(f"a straight-through path needs one active option per decision "
                                f"({label})")
    c = int(active[0])
    return Sampled(w, c, torch.cat((w[:c], w[c + 1:])).sum())


def mix(selector: Selector, compute: Callable[[int], torch.Tensor | None]) -> torch.Tensor | None:
    """Option ``selector``'s output, or the weighted sum of the active options' outputs;
    None when nothing contributes (e.g. only ``none``). A straight-through selector: its
    option's output times its weight, plus the other weights (zero-valued; alone for ``none``)."""
    return mix_scaled(selector, lambda j, scale: weigh(compute(j), scale))


def mix_scaled(selector: Selector,
               compute: Callable[[int, torch.Tensor | None], torch.Tensor | None],
               ) -> torch.Tensor | None:
    """:func:`mix` with ``compute(j, scale)`` returning option j's output times ``scale`` (a
    0-d weight; None: 1), so that an op can fold its weight into its last BatchNorm
    (:func:`archsearch.nn.ops.run_scaled`)."""
    if isinstance(selector, int):
        return compute(selector, None)
    if isinstance(selector, Sampled):
        y = compute(selector.index, selector.weights[selector.index])
        return selector.rest if y is None else y + selector.rest
    weights, active = selector
    total = None
    for j in active:
        total = add_maps(total, compute(j, weights[j]))
    return total


def mix_weighted(selector: Selector,
                 compute: Callable[[int, torch.Tensor | None], torch.Tensor | None],
                 weight: torch.Tensor | None) -> torch.Tensor | None:
    """``weight * mix_scaled(selector, compute)`` (an edge's weight in its node's sum; None: 1),
    the weight folded into each option's scale where the selector holds weights: no product
    of the whole edge's output is then kept for the backward pass."""
    if weight is None or not isinstance(selector, tuple):
        return weigh(mix_scaled(selector, compute), weight)
    return mix_scaled(selector, lambda j, scale: compute(j, weight if scale is None
                                                         else scale * weight))


def edge_weights(space: Any, path: Any) -> list[torch.Tensor | None]:
    """Per relaxed decision of ``space``, its edge's weight in its node's sum: the entries of a
    :class:`Relaxed` path's ``edge_weights``, else None (weight 1)."""
    n = len(space.relaxed_decisions())
    if not isinstance(path, Relaxed) or path.edge_weights is None:
        return [None] * n
    if path.edge_weights.shape != (n,):
        raise ArchitectureError(f"{space.name}: a relaxed path's edge_weights need shape "
                                f"({n},), got {tuple(path.edge_weights.shape)}")
    return list(path.edge_weights.unbind())


def weigh(y: torch.Tensor | None, weight: torch.Tensor | None) -> torch.Tensor | None:
    """An edge's output ``y`` times its weight (None: unweighted; no output: none)."""
    return y if y is None or weight is None else weight * y


def chosen(selector: Selector) -> int | None:
    """The single option a selector picks (a choice, or weights with one active option)."""
    if isinstance(selector, int):
        return selector
    if isinstance(selector, Sampled):
        return selector.index
    return selector[1][0] if len(selector[1]) == 1 else None


def add_maps(total: torch.Tensor | None, y: torch.Tensor | None) -> torch.Tensor | None:
    """A running sum of outputs, None while nothing is in it (``y`` None: nothing to add)."""
    if y is None:
        return total
    return y if total is None else total + y


def node_sum(total: torch.Tensor | None, zeros: Callable[[], torch.Tensor]) -> torch.Tensor:
    """A node's sum of its edges' outputs; ``zeros()`` (a zero map of the node's shape) where no
    edge gave a map: every edge ``none``, or only a straight-through path's zero-valued scalars,
    which are then added to it so that their gradient is kept."""
    if total is None:
        return zeros()
    return total if total.dim() else zeros() + total


def relu_once(x: torch.Tensor) -> Callable[[], torch.Tensor]:
    """relu(x), computed on the first call and returned again after: a node's activation
    shared by every ReLU-first op that reads the node (:class:`archsearch.nn.ops.ReLUFirst`)."""
    cache: list[torch.Tensor] = []

    def activated() -> torch.Tensor:
        if not cache:
            cache.append(torch.relu(x))
        return cache[0]

    return activated


def one_hot(space: Any, arch: Any) -> Relaxed:
    """``arch`` as a relaxed path of one-hot weights (for tests: it must compute ``arch``)."""
    vectors = []
    for decision, c in zip(space.relaxed_decisions(), space.relaxed_choices(arch)):
        w = torch.zeros(decision.n_options)
        w[c] = 1.0
        vectors.append(w)
    return Relaxed(tuple(vectors))


def uniform(space: Any, device: torch.device | str = "cpu") -> Relaxed:
    """Equal weights over every option of every decision (DARTS at initialisation)."""
    return Relaxed(tuple(torch.full((d.n_options,), 1.0 / d.n_options, device=device)
                         for d in space.relaxed_decisions()))
