"""Train each architecture from scratch for a budget of epochs and report how well it does.

The objective is the validation accuracy (in [0, 1]); the metrics add the test accuracy, the
parameter count and the training time. The training seed is derived from the estimator's
``seed`` and the architecture string, so evaluating the same architecture twice gives the same
result (on the same device and library versions).
"""

from __future__ import annotations

import math
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from archsearch.checkpoint_io import read_checkpoint
from archsearch.data import load_image_data
from archsearch.data.splits import ImageData
from archsearch.errors import UserError
from archsearch.estimators.base import Estimator, check_training_options, require
from archsearch.nn.ops import count_params_m
from archsearch.registry import ESTIMATORS
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.train.loop import TrainConfig, evaluate, fit
from archsearch.types import Budget, Result


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when there is one), ``cpu``, ``cuda`` or ``cuda:N``; anything else, or
    CUDA on a machine without it, is refused saying so."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {device!r}; valid: auto, cpu, cuda, cuda:N") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r}: this machine has no CUDA GPU (or PyTorch was "
                        "built without CUDA); use --device cpu or auto")
    if chosen.type not in ("cpu", "cuda"):
        raise UserError(f"device {device!r} is not supported; valid: auto, cpu, cuda, cuda:N")
    if chosen.type == "cuda" and chosen.index is not None and \
            chosen.index >= torch.cuda.device_count():
        raise UserError(f"device {device!r}: this machine has {torch.cuda.device_count()} "
                        "CUDA device(s)")
    return chosen


def arch_seed(seed: int, arch: Architecture) -> int:
    """A per-architecture seed: the same architecture under the same seed gets the same one."""
    return (seed * 1_000_003 + zlib.crc32(arch.to_str().encode())) % 2**31


def build_seeded(make: Callable[[], torch.nn.Module], seed: int) -> torch.nn.Module:
    """``make()`` with weights initialised from ``seed``, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


@ESTIMATORS.register("full-training")
class FullTrainingEstimator(Estimator):
    """Options: the training protocol (``epochs``, ``batch_size``, ``lr``, ``weight_decay``,
    ``cutout``, ``drop_path``, ``aux_weight``) and ``build`` (keyword arguments of the space's
    ``build``: channels, cells per stage, ``auxiliary``...). ``max_of_last=k`` also measures the
    validation accuracy after each of the last k epochs and reports their maximum as
    ``val_acc_max_last`` (NAS-RL's reward uses k = 5).

    A trial's budget overrides the protocol: ``epochs``, ``steps`` (optimizer steps) or
    ``fraction`` (train on that fraction of the training split). With ``continue_dir``, each
    trained network is kept there (per architecture and data fraction), and an evaluation at a
    larger budget continues the largest smaller one instead of restarting; the cosine schedule
    then runs over ``horizon`` epochs (the largest budget), so that continuing to b epochs
    trains exactly the network a fresh run to b epochs would.
    """

    def __init__(
        self, space: SearchSpace, data: str = "digits", epochs: float = 10,
        batch_size: int = 64, lr: float = 0.05, weight_decay: float = 5e-4, cutout: int = 0,
        drop_path: float = 0.0, aux_weight: float = 0.4, seed: int = 0, device: str = "auto",
        train_subset: int | None = None, build: dict[str, Any] | None = None,
        max_of_last: int = 0, continue_dir: str | None = None, horizon: float | None = None,
    ) -> None:
        check_training_options("full-training", epochs=epochs, batch_size=batch_size, lr=lr,
                               weight_decay=weight_decay)
        require(cutout >= 0 and 0 <= drop_path < 1 and max_of_last >= 0 and aux_weight >= 0,
                "full-training: cutout, max_of_last and aux_weight must be at least 0 and "
                "drop_path in [0, 1)")
        require(train_subset is None or train_subset >= 1,
                f"full-training: train_subset must be at least 1, not {train_subset}")
        if continue_dir is not None and horizon is None:
            raise UserError("full-training: continue_dir needs horizon (the largest budget in "
                            "epochs: the length of the learning-rate schedule)")
        self.space = space
        self.device = resolve_device(device)
        full = load_image_data(data, seed=0)
        if train_subset is not None:
            full = replace(full, train=full.train.take(train_subset))
        self.data = full.to(self.device)
        self.config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr,
                                  weight_decay=weight_decay, cutout=cutout, drop_path=drop_path,
                                  aux_weight=aux_weight)
        self.seed = seed
        self.build = dict(build or {})
        self.max_of_last = max_of_last
        self.continue_dir = None if continue_dir is None else Path(continue_dir)
        self.horizon = horizon
        self.last_model: torch.nn.Module | None = None  # the latest trained network

    def _protocol(self, budget: Budget | None) -> tuple[TrainConfig, ImageData]:
        """The training configuration and data of one trial at ``budget``."""
        config, data = self.config, self.data
        if budget is not None and budget.epochs is not None:
            config = replace(config, epochs=budget.epochs)
        if budget is not None and budget.steps is not None:
            config = replace(config, steps=budget.steps)
        if budget is not None and budget.fraction is not None:
            keep = max(config.batch_size, round(budget.fraction * len(data.train)))
            data = replace(data, train=data.train.take(keep))
        return config, data

    def _saved(self, arch: Architecture, budget: Budget | None) -> Path | None:
        if self.continue_dir is None:
            return None
        fraction = 1.0 if budget is None or budget.fraction is None else budget.fraction
        key = zlib.crc32(f"{arch.to_str()}|{self.seed}|{fraction}".encode())
        return self.continue_dir / f"{key:08x}.pt"

    def evaluate(self, arch: Architecture, budget: Budget | None = None) -> Result:
        start = time.perf_counter()
        config, data = self._protocol(budget)
        seed = arch_seed(self.seed, arch)
        model = build_seeded(lambda: self.space.build(
            arch, num_classes=data.num_classes, in_channels=data.shape[0], **self.build,
        ), seed).to(self.device)
        generator = torch.Generator(self.device).manual_seed(seed)
        saved_path = self._saved(arch, budget)
        resume, continued = None, 0.0
        if saved_path is not None and saved_path.exists():
            saved = read_checkpoint(saved_path, f"{saved_path}: a lower rung's network",
                                    "delete it to train this architecture from scratch",
                                    self.device)
            if saved["arch"] == arch.to_str() and saved["epochs"] <= config.epochs:
                model.load_state_dict(saved["model"])
                resume, continued = saved["fit"], float(saved["epochs"])
        recent: list[float] = []  # validation accuracy after each of the last epochs

        def on_epoch(epoch: int, _: dict[str, float]) -> None:
            if epoch > math.ceil(config.epochs) - self.max_of_last:
                recent.append(evaluate(model, data.val)[1])  # back in train mode after

        # dropout and drop-path draw from torch's global generator: seed it for this trial
        # only, leaving the caller's random state as it was
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            if resume is not None:  # continue the dropout stream where the lower rung left it
                torch.set_rng_state(resume["torch_rng"])
            stats = fit(model, data, config, generator,
                        on_epoch=on_epoch if self.max_of_last > 0 else None,
                        resume=resume, horizon=self.horizon)
            stats["state"]["torch_rng"] = torch.get_rng_state()
        if saved_path is not None:
            save_atomic({"arch": arch.to_str(), "epochs": config.epochs,
                         "model": model.state_dict(), "fit": stats["state"]}, saved_path)
        self.last_model = model
        _, val_acc = evaluate(model, data.val)
        _, test_acc = evaluate(model, data.test)
        metrics = {
            "val_acc": val_acc, "test_acc": test_acc, "train_acc": stats["train_acc"],
            "params_m": count_params_m(model), "train_seconds": stats["train_seconds"],
            "train_cpu_seconds": stats["train_cpu_seconds"], "epochs": config.epochs,
        }
        if continued:
            metrics["continued_from_epochs"] = continued
        if recent:
            metrics["val_acc_max_last"] = max(recent)
        return Result(val_acc, metrics, time.perf_counter() - start)


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
