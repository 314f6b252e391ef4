"""One supernet whose weights all architectures share (ENAS, one-shot NAS).

``train_epoch(archs)`` trains the shared weights one minibatch per architecture (the caller
samples them, e.g. from a controller); ``score(arch)`` is the accuracy of the sub-network on one
random validation minibatch (ENAS's reward); ``evaluate(arch)`` makes it an ordinary estimator
for any strategy (accuracy over ``eval_batches`` validation minibatches).

``reward="neg_loss"`` scores with minus the validation cross-entropy instead of the accuracy (not
in the paper): on a small validation set the loss ranks sub-networks less coarsely than the
fraction of a 64-image batch they get right (see BENCHMARKS.md, NB201 supernet ranking).

Batch normalisation: the supernet's BatchNorm layers keep no running statistics and have no
affine parameters, so every forward pass (training or scoring) normalises with the statistics
of its own batch through its own sub-network. Running statistics accumulated across thousands
of different sub-networks describe none of them, which is one reason weight-sharing NAS on
NAS-Bench-201 collapsed in the benchmark's paper.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch.nn import functional as F

from archsearch.data import load_image_data
from archsearch.data.augment import augment
from archsearch.errors import UnknownNameError
from archsearch.estimators.base import Estimator
from archsearch.estimators.full_training import build_seeded, resolve_device
from archsearch.registry import ESTIMATORS
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.train.loop import autocast, cosine_lr
from archsearch.types import Budget, Result

REWARDS = ("accuracy", "neg_loss")


@ESTIMATORS.register("shared-weights")
class SharedWeightsEstimator(Estimator):
    def __init__(
        self, space: SearchSpace, data: str = "digits", supernet: dict[str, Any] | None = None,
        batch_size: int = 64, lr: float = 0.05, lr_min: float = 0.0005, momentum: float = 0.9,
        weight_decay: float = 1e-4, grad_clip: float = 5.0, epochs: int = 10, seed: int = 0,
        device: str = "auto", val_fraction: float | None = None, test_fraction: float = 0.2,
        eval_batches: int | None = 1, cutout: int = 0, amp: bool = True,
        reward: str = "accuracy", val_batch_size: int | None = None,
    ) -> None:
        if not hasattr(space, "supernet"):
            raise ValueError(f"space {space.name!r} has no supernet")
        if reward not in REWARDS:
            raise UnknownNameError("reward", reward, REWARDS)
        self.reward = reward
        self.space = space
        self.device = resolve_device(device)
        self.data = load_image_data(data, seed=0, val_fraction=val_fraction,
                                    test_fraction=test_fraction).to(self.device)
        self.model = build_seeded(lambda: space.supernet(  # type: ignore[attr-defined]
            num_classes=self.data.num_classes, in_channels=self.data.shape[0], **(supernet or {}),
        ), seed).to(self.device, memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(  # foreach: one call per step, not one per tensor
            self.model.parameters(), lr=lr, momentum=momentum, nesterov=True,
            weight_decay=weight_decay, foreach=True)
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.batch_size, self.lr, self.lr_min = batch_size, lr, lr_min
        self.grad_clip, self.cutout, self.amp = grad_clip, cutout, amp
        self.eval_batches = eval_batches
        self.val_batch_size = val_batch_size or batch_size
        self.steps_per_epoch = max(1, len(self.data.train) // batch_size)
        self.total_steps = epochs * self.steps_per_epoch
        self.step = 0

    # ---- training the shared weights ------------------------------------------------------

    def train_epoch(self, archs: Sequence[Architecture]) -> dict[str, float]:
        """One pass over the training data, minibatch i through ``archs[i]``."""
        order = torch.randperm(len(self.data.train), device=self.device,
                               generator=self.generator)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        seen, start = 0, time.perf_counter()
        self.model.train()
        for i, arch in enumerate(archs[: self.steps_per_epoch]):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = augment(self.data.train.x[idx], self.generator, self.data.pad, self.data.flip,
                        self.cutout).contiguous(memory_format=torch.channels_last)
            y = self.data.train.y[idx]
            for group in self.optimizer.param_groups:
                group["lr"] = cosine_lr(min(self.step, self.total_steps), self.total_steps,
                                        self.lr, self.lr_min)
            with autocast(self.device, self.amp):
                logits = self.model(x, arch)
                loss = F.cross_entropy(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            self.step += 1
        return {"shared_loss": loss_sum.item() / max(seen, 1),
                "shared_acc": correct.item() / max(seen, 1),
                "shared_seconds": time.perf_counter() - start}

    # ---- scoring sub-networks -------------------------------------------------------------

    def val_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A random validation minibatch (drawn from the estimator's generator)."""
        n = len(self.data.val)
        order = torch.randperm(n, device=self.device, generator=self.generator)
        idx = order[: self.val_batch_size]
        x = self.data.val.x[idx].contiguous(memory_format=torch.channels_last)
        return x, self.data.val.y[idx]

    @torch.no_grad()
    def reward_on(self, arch: Architecture, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The reward on (x, y): accuracy, or minus the mean cross-entropy (``reward``)."""
        self.model.eval()  # BN uses batch statistics either way; eval disables nothing else
        with autocast(self.device, self.amp):
            logits = self.model(x, arch)
        if self.reward == "neg_loss":
            return -F.cross_entropy(logits.float(), y)
        return (logits.argmax(1) == y).float().mean()

    def score(self, arch: Architecture) -> float:
        """The reward on one random validation minibatch (ENAS: its accuracy)."""
        return float(self.reward_on(arch, *self.val_batch()))

    def rewards(self, archs: Sequence[Architecture]) -> torch.Tensor:
        """ENAS's reward for each architecture, each on its own random validation minibatch,
        as one tensor on the device (the caller copies it to the host once)."""
        return torch.stack([self.reward_on(a, *self.val_batch()) for a in archs])

    def score_many(self, archs: Sequence[Architecture], batches: int = 1) -> list[float]:
        """The reward of each architecture on the same ``batches`` validation minibatches."""
        data = [self.val_batch() for _ in range(batches)]
        scores = torch.stack([
            torch.stack([self.reward_on(a, x, y) for x, y in data]).mean() for a in archs
        ])
        return scores.tolist()  # one host copy for all of them

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
        return Result(value, {name: value}, time.perf_counter() - start)

    # ---- resume ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].cpu())
        self.step = state["step"]
