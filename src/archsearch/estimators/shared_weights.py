"""One supernet whose weights all architectures share (ENAS, SPOS, DARTS: one-shot NAS).

The step-level protocol of a supernet estimator (:class:`~archsearch.oneshot.base.
SupernetEstimator`), which the one-shot methods are written against:

- ``train_step(path, batch=None)``: one SGD step of the shared weights on one minibatch (the
  next training minibatch when none is given) through ``path``: an architecture, or a relaxed
  path (a weight vector per decision, :mod:`archsearch.nn.mixed`);
- ``batch(split)``: the next training minibatch (augmented, in a seeded per-epoch order), or a
  random validation minibatch;
- ``loss(path, batch, params=None)``: the differentiable loss of ``path`` on a batch (a
  bi-level method steps its architecture parameters on it between weight steps), with the
  supernet's own weights or with ``params`` in their place (DARTS' unrolled weights);
- ``current_lr()``: the learning rate the next weight step uses;
- ``score(paths, batches, shared)``: the reward of each path on validation minibatches, the
  same ones for all (``shared``) or each its own (ENAS's controller rewards), on the device;
- ``epoch_stats()``: the training loss and accuracy since the last call (one host copy).

``train_epoch(archs)``, ``score_many`` and ``rewards`` are the epoch-level conveniences built on
them; ``evaluate(arch)`` makes the estimator an ordinary one for any strategy (the reward over
``eval_batches`` validation minibatches, or the whole validation split).

``reward="neg_loss"`` scores with minus the validation cross-entropy instead of the accuracy (not
in the paper): on a small validation set the loss ranks sub-networks less coarsely than the
fraction of a 64-image batch they get right (see BENCHMARKS.md, NB201 supernet ranking).

Batch normalisation (``bn_affine``, ``bn_track``; recorded in every epoch's statistics and
result): by default the supernet's BatchNorm layers keep no running statistics and have no
affine parameters, so every forward pass (training or scoring) normalises with the statistics
of its own batch through its own sub-network. Running statistics accumulated across thousands
of different sub-networks describe none of them, which is one reason weight-sharing NAS on
NAS-Bench-201 collapsed in the benchmark's paper; with ``bn_track`` scoring uses them (as
RSPS with running statistics does), unless they are recalibrated first (SPOS).

The weights' optimizer is SGD with Nesterov momentum by default (``nesterov=False``: plain
momentum, as DARTS' code), its learning rate a cosine from ``lr`` to ``lr_min`` changed every
step (``lr_schedule="step"``) or once per epoch (``"epoch"``: DARTS' ``CosineAnnealingLR``
stepped at each epoch's start, so epoch e of E trains at the cosine's value at e / E).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch.nn import functional as F

from archsearch.allocator import keep_freed_memory
from archsearch.data import load_image_data
from archsearch.data.augment import augment
from archsearch.errors import UnknownNameError, UserError
from archsearch.estimators.base import Estimator, check_training_options, require
from archsearch.estimators.full_training import build_seeded, resolve_device
from archsearch.registry import ESTIMATORS
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.train.loop import Diverged, autocast, cosine_lr
from archsearch.types import Budget, Result

REWARDS = ("accuracy", "neg_loss")
LR_SCHEDULES = ("step", "epoch")


@ESTIMATORS.register("shared-weights")
class SharedWeightsEstimator(Estimator):
    def __init__(
        self, space: SearchSpace, data: str = "digits", supernet: dict[str, Any] | None = None,
        batch_size: int = 64, lr: float = 0.05, lr_min: float = 0.0005, momentum: float = 0.9,
        weight_decay: float = 1e-4, grad_clip: float = 5.0, epochs: int = 10, seed: int = 0,
        device: str = "auto", val_fraction: float | None = None, test_fraction: float = 0.2,
        eval_batches: int | None = 1, cutout: int = 0, amp: bool = True,
        reward: str = "accuracy", val_batch_size: int | None = None, bn_affine: bool = False,
        bn_track: bool = False, nesterov: bool = True, lr_schedule: str = "step",
    ) -> None:
        check_training_options("shared-weights", epochs=epochs, batch_size=batch_size, lr=lr,
                               weight_decay=weight_decay)
        require(val_batch_size is None or val_batch_size >= 1,
                f"shared-weights: val_batch_size must be at least 1, not {val_batch_size}")
        require(eval_batches is None or eval_batches >= 1,
                f"shared-weights: eval_batches must be at least 1, not {eval_batches}")
        clash = sorted({"bn_affine", "bn_track"} & set(supernet or {}))
        require(not clash, f"shared-weights: set {', '.join(clash)} as estimator options, not "
                "in supernet={...}")
        if not hasattr(space, "supernet"):
            raise UserError(f"space {space.name!r} has no supernet: weight sharing needs one "
                            "(spaces with one: darts, enas-micro, enas-macro, enas-rnn, nb201)")
        if reward not in REWARDS:
            raise UnknownNameError("reward", reward, REWARDS)
        if lr_schedule not in LR_SCHEDULES:
            raise UnknownNameError("lr_schedule", lr_schedule, LR_SCHEDULES)
        require(not nesterov or momentum > 0, "shared-weights: nesterov needs momentum > 0 "
                "(or nesterov=false)")
        self.reward = reward
        self.space = space
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            keep_freed_memory()  # fewer page faults per step (archsearch.allocator)
        self.data = load_image_data(data, seed=0, val_fraction=val_fraction,
                                    test_fraction=test_fraction).to(self.device)
        self.bn = {"bn_affine": bn_affine, "bn_track": bn_track}
        self.model = build_seeded(lambda: space.supernet(  # type: ignore[attr-defined]
            num_classes=self.data.num_classes, in_channels=self.data.shape[0],
            **{**(supernet or {}), **self.bn}), seed).to(self.device,
                                                        memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(  # foreach: one call per step, not one per tensor
            self.model.parameters(), lr=lr, momentum=momentum, nesterov=nesterov,
            weight_decay=weight_decay, foreach=True)
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.batch_size, self.lr, self.lr_min = batch_size, lr, lr_min
        self.epochs, self.lr_schedule = epochs, lr_schedule
        self.grad_clip, self.cutout, self.amp = grad_clip, cutout, amp
        self.eval_batches = eval_batches
        self.val_batch_size = val_batch_size or batch_size
        self.steps_per_epoch = max(1, len(self.data.train) // batch_size)
        self.total_steps = epochs * self.steps_per_epoch
        self.step = 0
        self.order: torch.Tensor | None = None  # this epoch's training order
        self.position = 0  # minibatches of this epoch taken so far
        self._reset_stats()

    # ---- training the shared weights ------------------------------------------------------

    def _reset_stats(self) -> None:
        self.loss_sum = torch.zeros((), device=self.device)
        self.correct = torch.zeros((), device=self.device)
        self.seen, self.seconds = 0, 0.0

    def batch(self, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """The next training minibatch (a new seeded order each epoch, augmented), or a random
        validation minibatch (``split="val"``)."""
        if split == "val":
            return self.val_batch()
        if split != "train":
            raise ValueError(f"split must be 'train' or 'val', not {split!r}")
        if self.position == 0 or self.order is None:
            self.order = torch.randperm(len(self.data.train), device=self.device,
                                        generator=self.generator)
        i = self.position
        self.position = (self.position + 1) % self.steps_per_epoch
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        x = augment(self.data.train.x[idx], self.generator, self.data.pad, self.data.flip,
                    self.cutout).contiguous(memory_format=torch.channels_last)
        return x, self.data.train.y[idx]

    def loss(self, path: Any, batch: tuple[torch.Tensor, torch.Tensor],
             params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The cross-entropy of ``path`` on ``batch``, differentiable (training mode); with
        ``params`` (parameter name -> tensor) in place of the supernet's own weights."""
        if not self.model.training:  # a mode switch walks every module
            self.model.train()
        x, y = batch
        with autocast(self.device, self.amp):
            if params is None:
                return F.cross_entropy(self.model(x, path), y)
            return F.cross_entropy(torch.func.functional_call(self.model, params, (x, path)), y)

    def current_lr(self) -> float:
        """The learning rate of the next weight step (the cosine schedule at this step)."""
        if self.lr_schedule == "epoch":
            return cosine_lr(min(self.step // self.steps_per_epoch, self.epochs), self.epochs,
                             self.lr, self.lr_min)
        return cosine_lr(min(self.step, self.total_steps), self.total_steps, self.lr,
                         self.lr_min)

    def train_step(self, path: Any,
                   batch: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        """One SGD step of the shared weights through ``path`` (no host synchronisation). A
        relaxed path with a graph (SNAS' sample) also gets the gradient of the same loss."""
        start = time.perf_counter()
        x, y = batch if batch is not None else self.batch("train")
        lr = self.current_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if not self.model.training:  # a mode switch walks every module
            self.model.train()
        with autocast(self.device, self.amp):
            logits = self.model(x, path)
            loss = F.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.loss_sum += loss.detach() * len(y)
        self.correct += (logits.argmax(1) == y).sum()
        self.seen += len(y)
        self.step += 1
        self.seconds += time.perf_counter() - start

    def epoch_stats(self) -> dict[str, float]:
        """Training loss and accuracy over the steps since the last call (and the BN setup)."""
        if not math.isfinite(self.loss_sum.item()):
            raise Diverged("the supernet's training diverged: its loss is "
                           f"{self.loss_sum.item()} (lower the estimator's lr)")
        stats = {"shared_loss": self.loss_sum.item() / max(self.seen, 1),
                 "shared_acc": self.correct.item() / max(self.seen, 1),
                 "shared_seconds": self.seconds, **{k: float(v) for k, v in self.bn.items()}}
        self._reset_stats()
        return stats

    def train_epoch(self, archs: Sequence[Any]) -> dict[str, float]:
        """One pass over the training data, minibatch i through ``archs[i]``."""
        self.position = 0  # a pass of its own, whatever came before
        for arch in archs[: self.steps_per_epoch]:
            self.train_step(arch)
        self.position = 0
        return self.epoch_stats()

    # ---- scoring sub-networks -------------------------------------------------------------

    def val_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A random validation minibatch (drawn from the estimator's generator)."""
        n = len(self.data.val)
        order = torch.randperm(n, device=self.device, generator=self.generator)
        idx = order[: self.val_batch_size]
        x = self.data.val.x[idx].contiguous(memory_format=torch.channels_last)
        return x, self.data.val.y[idx]

    @torch.no_grad()
    def reward_on(self, arch: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The reward on (x, y): accuracy, or minus the mean cross-entropy (``reward``)."""
        if self.model.training:  # without bn_track, BN uses batch statistics in eval mode too
            self.model.eval()
        with autocast(self.device, self.amp):
            logits = self.model(x, arch)
        if self.reward == "neg_loss":
            return -F.cross_entropy(logits.float(), y)
        return (logits.argmax(1) == y).float().mean()

    def score(self, paths: Sequence[Any], batches: int = 1, shared: bool = True) -> torch.Tensor:
        """The reward of each path, averaged over ``batches`` random validation minibatches:
        the same minibatches for every path (``shared``), or fresh ones for each; (n,) on the
        device (the caller copies it to the host once)."""
        if shared:
            data = [self.val_batch() for _ in range(batches)]
            return torch.stack([torch.stack([self.reward_on(a, x, y) for x, y in data]).mean()
                                for a in paths])
        out = []
        for a in paths:
            rewards = [self.reward_on(a, *self.val_batch()) for _ in range(batches)]
            out.append(rewards[0] if batches == 1 else torch.stack(rewards).mean())
        return torch.stack(out)

    @torch.no_grad()
    def recalibrate(self, path: Any, batches: int) -> None:
        """Reset BatchNorm's running statistics and re-estimate them for ``path`` from the
        first ``batches`` minibatches of a fixed order of the training split, unaugmented
        (SPOS's recalibration: a sub-network is scored with its own statistics, not ones
        accumulated over every path the supernet trained). Deterministic; needs bn_track."""
        norms = [m for m in self.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        if not self.bn["bn_track"] or not norms:
            return
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the calibration batches
        if not self.model.training:  # a mode switch walks every module
            self.model.train()
        order = self.calibration_order()
        for i in range(min(batches, max(1, len(order) // self.batch_size))):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.data.train.x[idx].contiguous(memory_format=torch.channels_last)
            with autocast(self.device, self.amp):
                self.model(x, path)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum

    def calibration_order(self) -> torch.Tensor:
        if getattr(self, "_calibration", None) is None:
            g = torch.Generator().manual_seed(0x5EED)
            self._calibration = torch.randperm(len(self.data.train), generator=g).to(self.device)
        return self._calibration

    def rewards(self, archs: Sequence[Architecture]) -> torch.Tensor:
        """ENAS's reward for each architecture, each on its own random validation minibatch."""
        return self.score(archs, 1, shared=False)

    def score_many(self, archs: Sequence[Architecture], batches: int = 1) -> list[float]:
        """The reward of each architecture on the same ``batches`` validation minibatches."""
        return self.score(archs, batches, shared=True).tolist()

    def evaluate(self, arch: Architecture, budget: Budget | None = None) -> Result:
        start = time.perf_counter()
        if self.eval_batches is None:  # the whole validation split
            v, cl = self.data.val, torch.channels_last
            sums = [self.reward_on(arch, v.x[i:i + 500].contiguous(memory_format=cl),
                                   v.y[i:i + 500]) * len(v.y[i:i + 500])
                    for i in range(0, len(v), 500)]
            value = float(torch.stack(sums).sum()) / len(v)
        else:
            value = self.score_many([arch], self.eval_batches)[0]
        name = "val_acc" if self.reward == "accuracy" else "val_neg_loss"
        if not math.isfinite(value):
            return Result.failed(f"non-finite {self.reward}")
        metrics = {name: value, **{k: float(v) for k, v in self.bn.items()}}
        return Result(value, metrics, time.perf_counter() - start)

    # ---- resume ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "step": self.step,
                "order": self.order, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].cpu())
        self.step = state["step"]
        self.position = state.get("position", 0)  # absent from first-wave checkpoints
        order = state.get("order")
        self.order = None if order is None else order.to(self.device)
