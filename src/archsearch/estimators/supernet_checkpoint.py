"""A trained supernet as an estimator: what SPOS's evolutionary search scores candidates with.

``supernet-checkpoint`` rebuilds the supernet of a finished one-shot training (the same
``shared-weights`` options), loads its weights from the one-shot search's checkpoint, and
scores an architecture by its accuracy over the whole validation split. With BatchNorm running
statistics (``bn_track``, SPOS's setting), each candidate's statistics are first recalibrated on
``calibration_batches`` training minibatches through that candidate alone (SPOS: 20,000 images
for ImageNet; 20 batches here by default), so it is scored with its own statistics. Scores are
deterministic: the same architecture gets the same score in any process.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from archsearch.checkpoint_io import read_checkpoint
from archsearch.errors import UserError
from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.registry import ESTIMATORS
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.types import Budget, Result


@ESTIMATORS.register("supernet-checkpoint")
class SupernetCheckpointEstimator(SharedWeightsEstimator):
    def __init__(self, space: SearchSpace, checkpoint: str, calibration_batches: int = 20,
                 **options: Any) -> None:
        options.setdefault("eval_batches", None)  # the whole validation split
        super().__init__(space, **options)
        path = Path(checkpoint)
        if not path.is_file():
            raise UserError(f"supernet checkpoint {checkpoint!r} does not exist (train the "
                            "supernet first: the one-shot phase writes it)")
        state = read_checkpoint(path, f"supernet checkpoint {checkpoint!r}",
                                "train the supernet again (the one-shot phase writes it)",
                                self.device)
        try:
            self.model.load_state_dict(state["estimator"]["model"])
        except (KeyError, RuntimeError) as exc:
            raise UserError(f"{checkpoint}: not a checkpoint of this supernet ({exc}); the "
                            "supernet options must be those it was trained with") from None
        self.calibration_batches = calibration_batches

    def evaluate(self, arch: Architecture, budget: Budget | None = None) -> Result:
        start = time.perf_counter()
        self.recalibrate(arch, self.calibration_batches)
        result = super().evaluate(arch, budget)
        if not result.ok:
            return result
        return Result(result.objective, {**result.metrics, "calibration_batches":
                                         float(self.calibration_batches)},
                      time.perf_counter() - start)
