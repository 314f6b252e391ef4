"""Time NNI 3.0's ENAS on the micro space: seconds per shared-weights training batch and per
reward batch (sample an architecture, forward a validation batch). Runs in the NNI virtual
environment made by benchmarks/enas_speed_vs_nni.sh, never in the project's.

NNI's one-shot ENAS feeds a concatenation of training and validation batches to
``EnasLightningModule.training_step``: training batches update the supernet, validation batches
are reward steps. We time each call of that method by its mode, on CIFAR-shaped data.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

warnings.filterwarnings("ignore")

import torch  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batches", type=int, default=12, help="training batches to time")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import nni
    from nni.nas.evaluator.pytorch import Classification, DataLoader
    from nni.nas.experiment import NasExperiment
    from nni.nas.hub.pytorch import ENAS as ENASSpace
    from nni.nas.oneshot.pytorch.sampling import EnasLightningModule
    from nni.nas.strategy import ENAS as ENASStrategy

    times: dict[str, list[float]] = {"train": [], "val": []}
    original = EnasLightningModule.training_step

    def timed(self, batch_packed, batch_idx):
        mode = "train" if len(batch_packed) == 3 and batch_packed[2] == 0 else "val"
        if len(batch_packed) == 2:
            mode = batch_packed[1]
        start = time.perf_counter()
        out = original(self, batch_packed, batch_idx)
        times[mode].append(time.perf_counter() - start)
        return out

    EnasLightningModule.training_step = timed
    g = torch.Generator().manual_seed(0)
    n = args.batches * args.batch_size
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    data = TensorDataset(x, y)
    evaluator = Classification(
        train_dataloaders=DataLoader(data, batch_size=args.batch_size),
        val_dataloaders=DataLoader(data, batch_size=args.batch_size),
        max_epochs=1, num_classes=10, accelerator="cpu", enable_progress_bar=False,
        logger=False, enable_checkpointing=False, enable_model_summary=False,
    )
    space = ENASSpace(width=16, num_cells=5, dataset="cifar")
    strategy = ENASStrategy(reward_metric_name="val_acc")
    experiment = NasExperiment(space, evaluator, strategy)
    experiment.run()
    skip = 2  # the first calls include warm-up (allocations, lazy init)
    train, val = times["train"][skip:], times["val"][skip:]
    result = {
        "framework": f"nni {nni.__version__}", "torch": torch.__version__,
        "threads": torch.get_num_threads(), "batch_size": args.batch_size,
        "train_batches_timed": len(train), "reward_batches_timed": len(val),
        "train_s_per_batch": sum(train) / max(len(train), 1),
        "reward_s_per_batch": sum(val) / max(len(val), 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
