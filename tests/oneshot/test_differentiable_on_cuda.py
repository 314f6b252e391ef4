"""The differentiable searches on CUDA: skipped without a GPU.

On a machine with CUDA:

- every method over architecture weights (DARTS first and second order, DARTS+, SNAS, GDAS,
  PC-DARTS, P-DARTS, and DARTS with the options that keep it from collapsing on nb201) runs a
  tiny search end to end on the GPU in channels_last under the estimator's bf16 autocast, its
  weights and alpha on the device, and resumes from its checkpoint;
- a search step makes no more host synchronisations over three steps than over one (none per
  step; GDAS: at most its two samples' indices);
- the relaxed darts and nb201 supernets compute the same function and the same gradients, of
  the weights and of alpha, on the GPU as on the CPU (float64), and close to it in bf16.

``ARCHSEARCH_GPU_TESTS_ON_CPU=1`` runs the same tests on the CPU (the synchronisation count
then reads 0): a check of the tests themselves on a machine without a GPU, not of the GPU.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from archsearch.nn.mixed import Relaxed
from archsearch.registry import SPACES
from archsearch.run.build import oneshot
from archsearch.run.config import RunConfig, resolve
from archsearch.train.loop import autocast
from tests.test_cuda import count_syncs

ON_CPU = os.environ.get("ARCHSEARCH_GPU_TESTS_ON_CPU", "0") == "1"
DEVICE = "cpu" if ON_CPU else "cuda"
pytestmark = pytest.mark.skipif(not ON_CPU and not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (the CPU path is tested everywhere)")

SUPERNETS = {"darts": {"channels": 4, "cells": 3}, "nb201": {"channels": 4, "cells_per_stage": 1}}
METHODS: dict[str, tuple[str, str, dict[str, Any]]] = {  # id -> method, space, its options
    "darts-1": ("darts", "darts", {"order": 1}),
    "darts-2": ("darts", "nb201", {"order": 2}),
    "darts-robust": ("darts", "nb201", {"none_in_derive": False, "beta_decay": 1.0}),
    "darts-plus": ("darts-plus", "darts", {}),
    "snas": ("snas", "darts", {}),
    "gdas": ("gdas", "nb201", {}),
    "pc-darts": ("pc-darts", "nb201", {"arch_start_epoch": 1}),
    "p-darts": ("p-darts", "darts", {"add_cells": (0, 1, 2), "arch_start_epoch": 1}),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> str:
    """64 random 8x8 images of 3 classes (nothing here needs them learnable)."""
    rng, path = np.random.default_rng(0), tmp_path_factory.mktemp("images") / "tiny.npz"
    np.savez(path, x=rng.integers(0, 256, (64, 8, 8, 3), dtype=np.uint8),
             y=rng.integers(0, 3, 64))
    return str(path)


def build(images: str, key: str, epochs: int = 2, seed: int = 0) -> Any:
    """The method as a run builds it, at batch 16 on the tiny images, on the device."""
    method, space, options = METHODS[key]
    supernet = dict(SUPERNETS[space])
    if method == "pc-darts":
        supernet["partial_channels"] = 2
    resolved = resolve(RunConfig(
        method=method, space=space, data=images, device=DEVICE, epochs=epochs, seed=seed,
        method_options=options,
        estimator_options={"supernet": supernet, "batch_size": 16, "test_fraction": 0.0}))
    return oneshot(resolved)


def syncs(step) -> int:
    """How many times ``step()`` makes the host wait for the GPU (0 on the CPU)."""
    if not torch.cuda.is_available():
        step()
        return 0
    return count_syncs(step)


def untimed(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in history]


@pytest.mark.parametrize("key", list(METHODS))
def test_every_differentiable_method_runs_on_the_device_and_resumes(
        images: str, key: str, tmp_path: Path) -> None:
    whole = build(images, key)
    history = whole.run()
    epochs = 6 if key == "p-darts" else 2  # P-DARTS: 2 epochs in each of its 3 stages
    assert [r["epoch"] for r in history] == list(range(1, epochs + 1))
    estimator = whole.estimator
    assert estimator.device.type == DEVICE
    assert all(a.device.type == DEVICE for a in whole.alphas)
    model = estimator.model
    assert next(model.parameters()).device.type == DEVICE
    assert all(math.isfinite(v) for r in history for k, v in r.items()
               if k.endswith("loss") and isinstance(v, float))
    whole.space.parse(history[-1]["derived"])
    assert whole.derived == whole.space.parse(history[-1]["derived"])

    first = build(images, key)
    first.run_epoch()
    first.save(tmp_path / "search.pt")
    resumed = build(images, key, seed=5)  # alpha and the weights from the file
    resumed.load(tmp_path / "search.pt")
    # the checkpoint's state exactly, on the device (what follows may differ by the GPU's
    # nondeterministic reductions)
    assert all(torch.equal(a, b) for a, b in zip(resumed.alphas, first.alphas))
    for a, b in zip(resumed.estimator.model.state_dict().values(),
                    first.estimator.model.state_dict().values()):
        assert torch.equal(a, b)
    resumed.run()
    assert [r["epoch"] for r in resumed.history] == list(range(1, epochs + 1))
    assert untimed(resumed.history)[0] == untimed(first.history)[0]
    assert all(a.device.type == DEVICE for a in resumed.alphas)


def one_step(search: Any) -> Any:
    """One iteration of the method's epoch loop (what ``train_epoch`` repeats)."""
    if hasattr(search, "step"):  # GDAS, SNAS: their own step
        return search.step
    estimator = search.estimator

    def darts_step() -> None:
        train, val = estimator.batch("train"), estimator.batch("val")
        search.alpha_step(train, val)
        estimator.train_step(search.path(detach=True), train)

    return darts_step


# GDAS computes only each edge's sampled op, so the host reads the sampled indices: one copy
# for each of a step's two samples (the weights' and alpha's), by design
SYNCS_PER_STEP = {"gdas": 2}


@pytest.mark.parametrize("key", ["darts-1", "darts-2", "gdas", "snas", "pc-darts"])
def test_a_search_step_never_waits_for_the_host(images: str, key: str) -> None:
    search = build(images, key, epochs=4)
    search.epoch = 1  # past PC-DARTS' warm-up: alpha steps
    step = one_step(search)
    step()  # warm-up (allocator, cuDNN)

    def steps(n: int):
        return lambda: [step() for _ in range(n)]

    assert syncs(steps(3)) - syncs(steps(1)) <= 2 * SYNCS_PER_STEP.get(key, 0)


def random_path(space: Any, generator: torch.Generator) -> Relaxed:
    """A softmax over random logits for each relaxed decision, in float64."""
    return Relaxed(tuple(
        torch.randn(d.n_options, generator=generator, dtype=torch.float64).softmax(-1)
        for d in space.relaxed_decisions()))


@pytest.mark.parametrize("space_name", ["darts", "nb201"])
def test_a_relaxed_supernet_computes_the_same_function_and_gradients_on_the_device(
        space_name: str) -> None:
    space = SPACES.create(space_name)
    torch.manual_seed(0)
    cpu = space.supernet(num_classes=3, in_channels=3, **SUPERNETS[space_name]).double()
    dev = copy.deepcopy(cpu).to(DEVICE).to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, 8, 8, generator=g, dtype=torch.float64)
    path = random_path(space, g)
    weights = [w.clone().requires_grad_() for w in path.weights]
    on_dev = [w.detach().to(DEVICE).requires_grad_() for w in path.weights]
    expected = cpu(x, Relaxed(tuple(weights)))
    expected.square().sum().backward()
    xd = x.to(DEVICE).contiguous(memory_format=torch.channels_last)
    got = dev(xd, Relaxed(tuple(on_dev)))
    got.square().sum().backward()
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-9, atol=1e-9)
    for w, d in zip(weights, on_dev):
        torch.testing.assert_close(d.grad.cpu(), w.grad, rtol=1e-7, atol=1e-9)
    for (name, p), q in zip(cpu.named_parameters(), dev.parameters()):
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            torch.testing.assert_close(q.grad.cpu(), p.grad, rtol=1e-7, atol=1e-9, msg=name)
    with autocast(torch.device(DEVICE), True):  # what training runs: bf16 on CUDA
        half = dev.float()(xd.float(), Relaxed(tuple(w.detach().float() for w in on_dev)))
    if DEVICE == "cuda":
        assert half.dtype == torch.bfloat16
    expected = expected.detach()
    assert float((half.detach().double().cpu() - expected).norm() / expected.norm()) < 0.05
