"""Time NNI 3.0's DARTS (or GumbelDARTS) search step: seconds per call of its one-shot Lightning
module's ``training_step``. Runs in the NNI virtual environment made by
benchmarks/darts_speed_vs_nni.sh (or enas_speed_vs_nni.sh), never in the project's.

NNI's DARTS strategy feeds ``DartsLightningModule.training_step`` a dict of one training and one
validation batch (a Lightning CombinedLoader of the two loaders), and one call does the whole
search step (``nni/nas/oneshot/pytorch/differentiable.py``):

1. the architecture step: ``resample()`` (nothing to draw for DARTS), zero alpha's gradients,
   the evaluator's ``training_step`` (forward, cross-entropy, the logged training accuracy) on
   the validation batch, ``manual_backward``, one Adam step of alpha (lr 3e-4, betas
   (0.5, 0.999), weight decay 1e-3) -- first order only: NNI has no unrolled second order;
2. the weight step: ``resample()``, the evaluator's ``training_step`` on the training batch,
   ``advance_optimization`` (zero_grad, backward, gradient clipping at
   ``gradient_clip_val``, the weights' optimizer step), then the learning-rate schedulers
   (none here) and, every 10th call, the alphas' softmax logged.

``--method gdas`` times ``nni.nas.strategy.GumbelDARTS`` (``GumbelDartsLightningModule``, whose
``training_step`` is DARTS' own): the softmax of alpha replaced by a soft Gumbel-softmax
(``F.gumbel_softmax(hard=False)``, temperature 1 -> 0.33 over the epochs), every op of every edge
still computed and summed. It is NNI's nearest to GDAS, not GDAS: GDAS runs one op per edge, the
weights' step first.

The spaces: ``--space darts``: ``nni.nas.hub.pytorch.DARTS(width, num_cells, dataset='cifar')``
(``--cells`` cells in all, split 1/2/2 over the stages for 5: reductions at cells 1 and 3; the
7 DARTS ops, ``none`` as an extra alpha entry); ``--space nb201``:
``nni.nas.hub.pytorch.NasBench201(stem_out_channels, num_modules_per_stack)`` (``--cells`` cells
per stage, ResNet blocks between the stages, the 5 NB201 ops on each of a cell's 6 edges, the
cells' choices shared through their common label).

The evaluator is ``Classification`` (cross-entropy, accuracy metric); ``--optimizer sgd`` (the
default) trains the weights as DARTS' official search and archsearch's presets do: SGD with
momentum 0.9, lr 0.025, weight decay 3e-4 (no cosine: one epoch), gradient clipping at 5;
``adam`` is NNI's default (Adam, lr 1e-3, no weight decay, no clipping). Batch 32 of
CIFAR-shaped random data (N(0, 1) floats, 10 classes), the same tensors for training and
validation, accelerator cpu, one epoch of ``--steps`` + 2 batches: each ``training_step`` call
is timed with ``time.perf_counter``, the first 2 calls not (warm-up). One JSON line, the keys of
``benchmarks/darts_speed.py``'s.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

warnings.filterwarnings("ignore")

import torch  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

SKIP = 2  # untimed first calls (allocations, lazy init)


class MomentumSGD(torch.optim.SGD):
    """SGD with momentum 0.9: ``Classification`` passes an optimizer class only lr and
    weight_decay."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, momentum=0.9, weight_decay=weight_decay)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--space", choices=("darts", "nb201"), default="darts")
    p.add_argument("--method", choices=("darts", "gdas"), default="darts",
                   help="darts: nni.nas.strategy.DARTS; gdas: nni.nas.strategy.GumbelDARTS")
    p.add_argument("--channels", type=int, default=16, help="width / stem_out_channels")
    p.add_argument("--cells", type=int, default=5,
                   help="darts: num_cells (in all); nb201: num_modules_per_stack")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=10, help="timed steps (after 2 untimed)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="the weights': sgd as DARTS' search (momentum 0.9, lr 0.025, weight "
                        "decay 3e-4, clip 5); adam: NNI's Classification default")
    args = p.parse_args()
    if args.steps < 1:
        p.error("--steps must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    import nni
    from nni.nas.evaluator.pytorch import Classification, DataLoader
    from nni.nas.experiment import NasExperiment
    from nni.nas.hub.pytorch import DARTS as DARTSSpace
    from nni.nas.hub.pytorch import NasBench201
    from nni.nas.oneshot.pytorch.differentiable import DartsLightningModule
    from nni.nas.strategy import DARTS as DARTSStrategy
    from nni.nas.strategy import GumbelDARTS

    times: list[float] = []
    alphas: dict[str, int] = {}
    original = DartsLightningModule.training_step  # GumbelDartsLightningModule's too

    def timed(self, batch, batch_idx):
        if not alphas:
            params = self.arch_parameters()
            alphas.update(tensors=len(params), entries=sum(a.numel() for a in params))
        start = time.perf_counter()
        out = original(self, batch, batch_idx)
        times.append(time.perf_counter() - start)
        return out

    DartsLightningModule.training_step = timed
    g = torch.Generator().manual_seed(0)
    n = (args.steps + SKIP) * args.batch_size
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    data = TensorDataset(x, y)
    sgd = args.optimizer == "sgd"
    evaluator = Classification(
        learning_rate=0.025 if sgd else 1e-3, weight_decay=3e-4 if sgd else 0.0,
        optimizer=MomentumSGD if sgd else torch.optim.Adam,
        train_dataloaders=DataLoader(data, batch_size=args.batch_size),
        val_dataloaders=DataLoader(data, batch_size=args.batch_size),
        max_epochs=1, num_classes=10, accelerator="cpu", enable_progress_bar=False,
        logger=False, enable_checkpointing=False, enable_model_summary=False,
    )
    if args.space == "darts":
        space = DARTSSpace(width=args.channels, num_cells=args.cells, dataset="cifar")
    else:
        space = NasBench201(stem_out_channels=args.channels, num_modules_per_stack=args.cells)
    strategy_cls = GumbelDARTS if args.method == "gdas" else DARTSStrategy
    strategy = strategy_cls(gradient_clip_val=5.0 if sgd else None)
    NasExperiment(space, evaluator, strategy).run()
    timed_calls = times[SKIP:]
    if not timed_calls:
        raise SystemExit(f"only {len(times)} training_step calls: nothing timed")
    print(json.dumps({
        "framework": f"nni {nni.__version__}", "torch": torch.__version__, "space": args.space,
        "method": args.method, "order": 1, "channels": args.channels, "cells": args.cells,
        "batch_size": args.batch_size, "threads": torch.get_num_threads(), "device": "cpu",
        "optimizer": args.optimizer, "alpha_tensors": alphas.get("tensors"),
        "alpha_entries": alphas.get("entries"), "steps_timed": len(timed_calls),
        "s_per_step": sum(timed_calls) / len(timed_calls), "s_per_step_min": min(timed_calls),
    }))


if __name__ == "__main__":
    main()
