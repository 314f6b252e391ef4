"""Training and evaluating word-level language models: truncated back-propagation through time
with the hidden state carried across segments, SGD with gradient clipping, perplexity."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class LMConfig:
    epochs: float = 1.0
    batch_size: int = 32
    bptt: int = 35
    lr: float = 20.0
    lr_decay: float = 0.95  # per epoch, from epoch ``decay_start`` on (ENAS: x0.95 from 12)
    decay_start: int = 12
    grad_clip: float = 0.25
    weight_decay: float = 1e-6


def segments(data: torch.Tensor, bptt: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(T, B) -> [(inputs (t, B), targets (t, B))] of length ``bptt`` (the last may be shorter);
    every token after the first is a target exactly once."""
    out = []
    for i in range(0, data.shape[0] - 1, bptt):
        y = data[i + 1:i + 1 + bptt]
        out.append((data[i:i + y.shape[0]], y))
    return out


def lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, h: torch.Tensor,
            arch: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    logits, h = model(x, h, arch)  # (t, B, V)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten()), h


def train_epoch(model: nn.Module, data: torch.Tensor, config: LMConfig,
                optimizer: torch.optim.Optimizer, arch_of: Callable[[int], Any] | None = None,
                max_steps: int | None = None) -> dict[str, float]:
    """One pass over ``data`` (T, B); segment i runs ``arch_of(i)`` (None: the model's own)."""
    model.train()
    h = model.init_hidden(data.shape[1], data.device)
    total = torch.zeros((), device=data.device)
    n = 0
    for i, (x, y) in enumerate(segments(data, config.bptt)):
        if max_steps is not None and i >= max_steps:
            break
        h = h.detach()  # truncate back-propagation at the segment boundary
        loss, h = lm_loss(model, x, y, h, arch_of(i) if arch_of else None)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        total += loss.detach() * y.numel()
        n += y.numel()
    loss = total.item() / max(n, 1)
    if not math.isfinite(loss):
        from archsearch.train.loop import Diverged

        raise Diverged(f"training diverged: the loss is {loss} (lower the learning rate)")
    return {"train_loss": loss, "train_ppl": math.exp(min(loss, 50))}


@torch.no_grad()
def perplexity(model: nn.Module, data: torch.Tensor, bptt: int = 35, arch: Any = None) -> float:
    """exp(mean cross-entropy per token) over ``data`` (T, B), hidden state carried."""
    model.eval()
    h = model.init_hidden(data.shape[1], data.device)
    total, n = 0.0, 0
    for x, y in segments(data, bptt):
        loss, h = lm_loss(model, x, y, h, arch)
        total += float(loss) * y.numel()
        n += y.numel()
    return math.exp(total / max(n, 1))
