"""Time archsearch's DARTS (or GDAS) search step: seconds per step, one step being one iteration
of the method's ``train_epoch`` loop, built the way the library builds the method.

- ``--method darts``: the body of ``archsearch.oneshot.darts.DARTS.train_epoch``'s loop: the next
  training minibatch and a random validation minibatch are taken (``estimator.batch``; the
  training one augmented), one Adam step of alpha on the validation batch
  (``alpha_step(train, val)``; ``--order 2``: through one unrolled weight step on the training
  batch), then one SGD step of the weights on the training batch through the updated softmax
  (``estimator.train_step(path(detach=True), train)``).
- ``--method gdas``: ``archsearch.oneshot.gdas.GDAS.step()``, the body of its ``train_epoch``
  loop: the two minibatches, the weights' SGD step through a hard Gumbel sample first, then
  alpha's Adam step on the validation batch through a fresh sample (first order only; only
  the sampled op of each edge runs).

The estimator is the one the method's presets configure (``ESTIMATOR_DEFAULTS`` of
``oneshot/darts.py`` or ``oneshot/gdas.py``: lr, momentum, Nesterov or not, weight decay,
gradient clipping at 5, per-epoch cosine), at ``--batch-size`` (32 by default, NNI's comparison
batch, not the presets' 64), the training images half for the weights, half for alpha, on
CIFAR-shaped random uint8 images (32x32x3, 10 classes). The supernet: ``--space darts``:
``--channels`` wide (16), ``--cells`` cells in all (5: reductions at cells 1 and 3, as NNI's
``DARTS(width=16, num_cells=5)``); ``--space nb201``: ``--cells`` cells per stage (5: the
benchmark's network).

Each step is timed with ``time.perf_counter`` (CUDA synchronised before and after on a GPU),
after 2 untimed warm-up steps; one JSON line: the mean and the minimum over ``--steps`` steps,
the process's CPU time per step and its minor page faults per step.
The timed step includes taking its two minibatches (indexing, the training one's random crop
and flip, on the device: a small part of a step); NNI's timed ``training_step`` is handed its
batches by its DataLoader, outside the timing.
Compare with ``benchmarks/nni_darts_speed.py`` (``benchmarks/darts_speed_vs_nni.sh``).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.oneshot import darts, gdas
from archsearch.registry import SPACES

WARMUP = 2  # untimed steps first (allocations, lazy init)


def build_step(search: Any, method: str) -> Callable[[], None]:
    """One iteration of the method's ``train_epoch`` loop."""
    estimator = search.estimator
    if method == "gdas":
        return search.step  # weights first, then alpha (GDAS.step)

    def darts_step() -> None:
        train, val = estimator.batch("train"), estimator.batch("val")
        search.alpha_step(train, val)  # alpha first, as DARTS.train_epoch
        estimator.train_step(search.path(detach=True), train)

    return darts_step


def build_search(args: argparse.Namespace) -> tuple[Any, SharedWeightsEstimator]:
    """The method over its preset estimator on CIFAR-shaped random images (enough for
    ``args.steps`` + the warm-up steps)."""
    presets = (gdas if args.method == "gdas" else darts).ESTIMATOR_DEFAULTS
    sizes = ({"cells": args.cells} if args.space == "darts"
             else {"cells_per_stage": args.cells})
    rng = np.random.default_rng(0)
    n = (args.steps + WARMUP) * args.batch_size  # training images: one epoch covers the run
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cifar_shaped.npz"
        np.savez(path, x=rng.integers(0, 256, (2 * n, 32, 32, 3), dtype=np.uint8),
                 y=rng.integers(0, 10, 2 * n))
        space = SPACES.create(args.space)
        estimator = SharedWeightsEstimator(
            space, data=str(path), supernet={"channels": args.channels, **sizes},
            **{**presets, "batch_size": args.batch_size, "val_fraction": 0.5},
            test_fraction=0.0, device=args.device, amp=args.amp)
    if args.method == "gdas":
        search: Any = gdas.GDAS(estimator, gdas.GDASConfig(), seed=0)
    else:
        search = darts.DARTS(estimator, darts.DARTSConfig(order=args.order), seed=0)
    return search, estimator


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--space", choices=("darts", "nb201"), default="darts")
    p.add_argument("--method", choices=("darts", "gdas"), default="darts")
    p.add_argument("--order", type=int, choices=(1, 2), default=1,
                   help="DARTS' order (GDAS: first order only)")
    p.add_argument("--channels", type=int, default=16, help="supernet width")
    p.add_argument("--cells", type=int, default=5,
                   help="darts: cells in all; nb201: cells per stage")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=10, help="timed steps (after 2 untimed)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                   help="the estimator's bf16 autocast (CUDA only; the library's default: on)")
    args = p.parse_args()
    if args.steps < 1:
        p.error("--steps must be at least 1")
    if args.method == "gdas" and args.order != 1:
        p.error("GDAS is first order only")
    if args.threads:
        torch.set_num_threads(args.threads)
    search, estimator = build_search(args)
    step = build_step(search, args.method)
    cuda = estimator.device.type == "cuda"
    times: list[float] = []
    cpu_times: list[float] = []  # the process's CPU time: less inflated by other processes
    faults = 0  # minor page faults in the timed steps (memory the kernel maps in and zeroes)
    for k in range(WARMUP + args.steps):
        if cuda:
            torch.cuda.synchronize(estimator.device)
        start, cpu_start = time.perf_counter(), time.process_time()
        faults_start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        step()
        if cuda:
            torch.cuda.synchronize(estimator.device)
        if k >= WARMUP:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
            faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_start
    estimator.epoch_stats()  # one host copy: raises if the weights' loss went non-finite
    print(json.dumps({
        "framework": "archsearch", "torch": torch.__version__, "space": args.space,
        "method": args.method, "order": args.order, "channels": args.channels,
        "cells": args.cells, "batch_size": args.batch_size, "threads": torch.get_num_threads(),
        "device": str(estimator.device), "amp": args.amp and cuda,
        "alpha_tensors": len(search.alphas), "alpha_entries": sum(a.numel() for a in search.alphas),
        "steps_timed": len(times),
        "s_per_step": sum(times) / len(times), "s_per_step_min": min(times),
        "cpu_s_per_step": sum(cpu_times) / len(cpu_times),
        "minor_faults_per_step": faults / len(times),
    }))


if __name__ == "__main__":
    main()
