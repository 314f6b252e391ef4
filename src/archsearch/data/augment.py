"""Training augmentation on tensors, on whatever device the batch is on (no host round trip).

``augment(x, generator, pad, flip, cutout)``: random pad-and-crop (zero padding), horizontal
flips and cutout, each drawn per image from ``generator`` (which must live on x's device).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))  # (B, C, H+2p, W+2p)
    dy = torch.randint(0, 2 * pad + 1, (b,), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), device=x.device, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (B,1,H,1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (B,1,1,W)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]  # (B, C, H, W)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one size x size square per image, centred anywhere (clipped at the borders)."""
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b,), device=x.device, generator=generator)[:, None, None]
    cx = torch.randint(0, w, (b,), device=x.device, generator=generator)[:, None, None]
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys - cy).abs() * 2 < size) & ((xs - cx).abs() * 2 < size)  # (B, H, W)
    return x * (~inside)[:, None].to(x.dtype)


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4, flip: bool = True,
            cutout_size: int = 0) -> torch.Tensor:
    if pad > 0:
        x = random_crop(x, pad, generator)
    if flip:
        x = random_flip(x, generator)
    if cutout_size > 0:
        x = cutout(x, cutout_size, generator)
    return x
