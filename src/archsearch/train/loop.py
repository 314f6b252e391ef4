"""The training loop: SGD (Nesterov) with a cosine schedule, on-device data and augmentation.

Small and explicit, nanoGPT-style. The batch order and augmentation come from a seeded
``torch.Generator`` on the data's device; the step never copies to the host (losses and
accuracies accumulate on the device). Models and batches use channels_last memory on every
device (on this project's CPUs it makes depthwise convolutions ~8x and pooling several times
faster); on CUDA the step runs under bf16 autocast. The same code path runs on CPU and GPU.

A model may expose ``drop_path_prob`` (set here, growing linearly to ``drop_path`` over
training: ScheduledDropPath) and may return ``(logits, aux_logits)`` in training, whose loss
enters with weight ``aux_weight``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from archsearch.data.augment import augment
from archsearch.data.splits import ImageData, Split
from archsearch.errors import UserError


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 10.0  # fractional epochs train that fraction of the steps
    steps: int | None = None  # optimizer steps in all, in place of epochs
    batch_size: int = 64
    lr: float = 0.05
    lr_min: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    grad_clip: float | None = 5.0
    label_smoothing: float = 0.0
    cutout: int = 0
    drop_path: float = 0.0  # final drop-path probability (scheduled linearly from 0)
    aux_weight: float = 0.4  # weight of an auxiliary head's loss, when the model has one
    amp: bool = True  # bf16 autocast where the device supports it (CUDA); no effect on CPU
    channels_last: bool = True


class Diverged(UserError, ArithmeticError):
    """The training loss became NaN or infinite: a trial fails with this reason; a one-shot
    search stops with it (its last epoch's checkpoint kept)."""


def autocast(device: torch.device, enabled: bool) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16,
                          enabled=enabled and device.type == "cuda")


def cosine_lr(step: int, total: int, lr: float, lr_min: float) -> float:
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * step / max(1, total)))


def fit(
    model: nn.Module, data: ImageData, config: TrainConfig, generator: torch.Generator,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    resume: dict[str, Any] | None = None, horizon: float | None = None,
) -> dict[str, Any]:
    """Train ``model`` on ``data.train`` (model and data already on the same device) for
    ``config.epochs`` (or ``config.steps``) in all.

    ``horizon`` (epochs, default ``config.epochs``) is the length of the cosine schedule and of
    the drop-path ramp: training to fewer epochs than the horizon is a prefix of the longer run,
    so that a later call with ``resume`` (the ``state`` this call returns: optimizer, generator,
    step and the current epoch's batch order) continues it exactly, as Hyperband's promotions
    do when they continue a lower rung instead of restarting.
    """
    device = data.train.x.device
    memory = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )
    n = len(data.train)
    steps_per_epoch = max(1, n // config.batch_size)
    total = config.steps or max(1, round(config.epochs * steps_per_epoch))
    schedule = total if horizon is None else max(total, round(horizon * steps_per_epoch))
    step, order = 0, None
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        generator.set_state(resume["generator"])
        step, order = int(resume["step"]), resume["order"]
    start, cpu_start = time.perf_counter(), time.process_time()
    stats = {"train_loss": math.nan, "train_acc": math.nan}
    model.train()
    while step < total:
        first = step % steps_per_epoch  # > 0 only when resuming within an epoch
        if first == 0 or order is None:
            order = torch.randperm(n, device=device, generator=generator)
        batches = range(first, min(steps_per_epoch, first + total - step))
        stats = _train_epoch(model, data, config, generator, optimizer, order, batches,
                             step, schedule)
        step += len(batches)
        if not math.isfinite(stats["train_loss"]):  # a diverged network is no result
            raise Diverged(f"training diverged: the loss is {stats['train_loss']} in epoch "
                           f"{math.ceil(step / steps_per_epoch)} (lower the learning rate)")
        if on_epoch is not None:
            on_epoch(math.ceil(step / steps_per_epoch), stats)
    state = {"optimizer": optimizer.state_dict(), "generator": generator.get_state(),
             "step": step, "order": order}
    # train_cpu_seconds: the process's CPU time (all its threads), which other processes'
    # load does not inflate as it does the wall-clock train_seconds
    return {**stats, "train_seconds": time.perf_counter() - start,
            "train_cpu_seconds": time.process_time() - cpu_start, "steps": float(step),
            "state": state}


def _train_epoch(
    model: nn.Module, data: ImageData, config: TrainConfig, generator: torch.Generator,
    optimizer: torch.optim.Optimizer, order: torch.Tensor, batches: range, step: int,
    schedule: int,
) -> dict[str, float]:
    """The steps ``batches`` of one epoch (batch i is ``order``'s i-th slice), the first of
    them the run's step ``step``; the epoch's mean training loss and accuracy."""
    device = data.train.x.device
    memory = torch.channels_last if config.channels_last else torch.contiguous_format
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    seen = 0
    for i in batches:
        idx = order[i * config.batch_size:(i + 1) * config.batch_size]
        x = augment(data.train.x[idx], generator, data.pad, data.flip, config.cutout)
        x = x.contiguous(memory_format=memory)
        y = data.train.y[idx]
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, schedule, config.lr, config.lr_min)
        if hasattr(model, "drop_path_prob"):
            model.drop_path_prob = config.drop_path * step / schedule
        loss, logits = train_step(model, x, y, optimizer, config)
        loss_sum += loss.detach() * len(y)  # stays on the device: no sync per step
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        step += 1
    return {"train_loss": loss_sum.item() / seen, "train_acc": correct.item() / seen}


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               optimizer: torch.optim.Optimizer, config: TrainConfig
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step (an auxiliary head's loss added when the model returns one):
    (loss, logits), on the device."""
    with autocast(x.device, config.amp):
        out = model(x)
        logits, aux = out if isinstance(out, tuple) else (out, None)
        loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
        if aux is not None:
            loss = loss + config.aux_weight * F.cross_entropy(aux, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return loss, logits


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, batch_size: int = 500, amp: bool = True,
             channels_last: bool = True) -> tuple[float, float]:
    """(mean cross-entropy, accuracy in [0, 1]) of ``model`` on a split, in eval mode."""
    if len(split) == 0:
        return math.nan, math.nan
    was_training = model.training
    model.eval()
    device = split.x.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    for i in range(0, len(split), batch_size):
        x, y = split.x[i:i + batch_size], split.y[i:i + batch_size]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    return loss_sum.item() / len(split), correct.item() / len(split)
