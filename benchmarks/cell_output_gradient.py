"""What a contiguous gradient for each concatenated node saves in a CPU training step.

A cell's output concatenates its nodes (``archsearch.nn.ops.cat_channels``); each node's
gradient comes back from that concatenation as a channel slice, and the CPU BatchNorm backward
over a non-contiguous gradient takes a slow path. ``cat_channels`` makes each node's gradient
contiguous (one copy per node). Here one process builds a network and alternates training
steps (SGD, batch 32 of 32x32 images, channels_last, one thread) with that copy on and off
(off: ``contiguous_grad`` replaced by the identity), so both see the same load; reported: the
mean process CPU time of a step each way, and off / on.

    python benchmarks/cell_output_gradient.py --networks darts-v2 nasnet enas-micro [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from archsearch.nn import ops
from archsearch.registry import SPACES
from archsearch.spaces.darts import DARTS_V2

CONTIGUOUS = ops.contiguous_grad


def network(name: str) -> torch.nn.Module:
    """The network: DARTS-V2 at 16 channels and 8 cells (the search network's size), or a
    sampled cell (seed 0) of nasnet or enas-micro at its space's build defaults."""
    if name == "darts-v2":
        return SPACES.create("darts").build(DARTS_V2, channels=16, cells=8)
    space = SPACES.create(name)
    return space.build(space.sample(np.random.default_rng(0)))


def time_steps(model: torch.nn.Module, pairs: int) -> dict[str, float]:
    model = model.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, 32, 32, generator=g).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (32,), generator=g)

    def step() -> None:
        out = model(x)
        logits = out[0] if isinstance(out, tuple) else out
        optimizer.zero_grad()
        F.cross_entropy(logits, y).backward()
        optimizer.step()

    step()
    step()
    times: dict[str, list[float]] = {"on": [], "off": []}
    for k in range(pairs):
        for mode in ("on", "off") if k % 2 == 0 else ("off", "on"):
            ops.contiguous_grad = CONTIGUOUS if mode == "on" else (lambda t: t)
            start = time.process_time()
            step()
            times[mode].append(time.process_time() - start)
    ops.contiguous_grad = CONTIGUOUS
    on, off = statistics.mean(times["on"]), statistics.mean(times["off"])
    return {"cpu_s_on": on, "cpu_s_off": off, "off_over_on": off / on}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--networks", nargs="+", default=["darts-v2", "nasnet", "enas-micro"],
                   choices=["darts-v2", "nasnet", "enas-micro"])
    p.add_argument("--pairs", type=int, default=6, help="timed (on, off) pairs of steps")
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in args.networks:
        model = network(name)
        row = {"network": name, "params_m": ops.count_params_m(model),
               **time_steps(model, args.pairs)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
