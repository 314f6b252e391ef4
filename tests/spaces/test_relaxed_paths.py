"""Supernets take relaxed paths: a one-hot path computes exactly the architecture, weights
mix the options' outputs, ``none`` and inactive options are never computed, and BatchNorm's
affine parameters and running statistics are supernet options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from archsearch.errors import ArchitectureError
from archsearch.nn.mixed import Relaxed, mix, one_hot, selectors, uniform
from archsearch.registry import SPACES

CASES = {  # space options, supernet options
    "nb201": ({}, {"channels": 4, "cells_per_stage": 1}),
    "enas-micro": ({"n_nodes": 3}, {"channels": 4, "cells_per_stage": 1}),
    "enas-macro": ({"n_layers": 4}, {"channels": 4}),
}


def supernet(name: str, **bn):
    space_options, net = CASES[name]
    space = SPACES.create(name, **space_options)
    torch.manual_seed(0)
    model = space.supernet(num_classes=3, in_channels=3, **net, **bn).double()
    return space, model


@pytest.mark.parametrize("name", list(CASES))
def test_a_one_hot_path_computes_the_architecture(name: str) -> None:
    space, model = supernet(name)
    x = torch.randn(6, 3, 8, 8, dtype=torch.float64)
    rng = np.random.default_rng(3)
    for _ in range(4):
        arch = space.sample(rng)
        expected = model(x, arch)
        path = one_hot(space, arch)
        got = model(x, Relaxed(tuple(w.double() for w in path.weights)))
        assert torch.allclose(got, expected, atol=1e-10), arch


@pytest.mark.parametrize("name", list(CASES))
def test_uniform_weights_run_and_reach_every_weight_vector(name: str) -> None:
    space, model = supernet(name)
    path = uniform(space)
    weights = tuple(w.double().requires_grad_() for w in path.weights)
    model(torch.randn(4, 3, 8, 8, dtype=torch.float64), Relaxed(weights)).sum().backward()
    assert all(w.grad is not None and torch.isfinite(w.grad).all() for w in weights)
    assert sum(bool(w.grad.abs().sum() > 0) for w in weights) >= len(weights) // 2


def test_mix_skips_none_and_inactive_options_and_weights_the_rest() -> None:
    calls: list[int] = []

    def compute(j: int):
        calls.append(j)
        return None if j == 0 else torch.full((2,), float(j))

    assert torch.equal(mix(2, compute), torch.full((2,), 2.0)) and calls == [2]
    calls.clear()
    w = torch.tensor([0.5, 0.2, 0.3, 0.0])
    out = mix((w, (0, 1, 2)), compute)
    assert calls == [0, 1, 2] and torch.allclose(out, torch.full((2,), 0.2 * 1 + 0.3 * 2))
    assert mix((w, (0,)), compute) is None  # only none: nothing contributes


def test_zero_weights_on_the_cpu_are_not_computed_and_bad_paths_are_refused() -> None:
    space = SPACES.create("nb201")
    weights = tuple(torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0]) for _ in range(6))
    assert all(active == (2,) for _, active in selectors(space, Relaxed(weights)))
    with pytest.raises(ArchitectureError, match="needs 6 weight vectors"):
        selectors(space, Relaxed(weights[:5]))
    with pytest.raises(ArchitectureError, match="takes 5 weights"):
        selectors(space, Relaxed((torch.ones(4),) * 6))


@pytest.mark.parametrize("name", list(CASES))
def test_batchnorm_affine_and_running_statistics_are_supernet_options(name: str) -> None:
    for affine, track in ((False, False), (True, False), (False, True), (True, True)):
        _, model = supernet(name, bn_affine=affine, bn_track=track)
        norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert norms and all(m.affine == affine and m.track_running_stats == track
                             for m in norms)


@pytest.mark.parametrize("name", ["nb201", "darts"])
def test_a_node_s_relu_runs_once_for_all_its_relu_first_ops(name: str, monkeypatch) -> None:
    import importlib

    from archsearch.nn.ops import ReLUFirst

    space = SPACES.create(name)
    sizes = {"cells_per_stage": 1} if name == "nb201" else {"cells": 3}
    torch.manual_seed(0)
    model = space.supernet(num_classes=3, in_channels=3, channels=4, **sizes).double()
    firsts = [m[0] for m in model.modules() if isinstance(m, ReLUFirst) and m is not model]
    ran: list[int] = []
    for relu in firsts:
        relu.register_forward_hook(lambda *_: ran.append(1))
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    path = uniform(space)
    shared = model(x, path)
    grads = torch.autograd.grad(shared.square().sum(), list(model.parameters()))
    cell_ops = len(ran)  # first ReLUs that ran: preprocessing and reduction blocks, no edge op
    module = importlib.import_module("archsearch.spaces.nb201" if name == "nb201"
                                     else "archsearch.spaces.darts_supernet")
    monkeypatch.setattr(module, "starts_with_relu", lambda op: False)  # every op its own ReLU
    ran.clear()
    alone = model(x, path)
    assert len(ran) > cell_ops  # the edges' ops ran their own ReLUs this time
    torch.testing.assert_close(shared, alone, rtol=1e-12, atol=1e-12)
    for g, h in zip(grads, torch.autograd.grad(alone.square().sum(), list(model.parameters()))):
        torch.testing.assert_close(g, h, rtol=1e-10, atol=1e-12)


def test_nb201_pools_each_node_once_with_the_values_and_gradients_of_pooling_each_edge(
        monkeypatch) -> None:
    from archsearch.nn import skip_pool
    from archsearch.nn.ops import Pool
    from archsearch.spaces.nb201 import NB201CellModule

    _, model = supernet("nb201")
    pooled: list[int] = []
    for m in model.modules():
        if isinstance(m, Pool):
            m.register_forward_hook(lambda *_: pooled.append(1))
    node_pool = skip_pool.avg_pool  # a node's one pooling (float64: skip_pool's reference)
    monkeypatch.setattr(skip_pool, "avg_pool",
                        lambda *args: (pooled.append(1), node_pool(*args))[1])
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    weights = tuple(torch.softmax(torch.randn(5, dtype=torch.float64), 0).requires_grad_()
                    for _ in range(6))
    folded = model(x, Relaxed(weights))
    assert len(pooled) == 3 * 3  # 3 cells (1 per stage), one pooling per node
    grads = torch.autograd.grad(folded.square().sum(), [*weights, *model.parameters()])
    monkeypatch.setattr(NB201CellModule, "relaxed_on_whole_channels", lambda self, sel: False)
    pooled.clear()
    each = model(x, Relaxed(weights))
    assert len(pooled) == 3 * 6  # every edge its own pooling
    torch.testing.assert_close(folded, each, rtol=1e-12, atol=1e-12)
    for g, h in zip(grads, torch.autograd.grad(each.square().sum(),
                                               [*weights, *model.parameters()])):
        torch.testing.assert_close(g, h, rtol=1e-10, atol=1e-12)
