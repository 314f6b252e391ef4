"""``fit`` takes exactly the steps it is asked for, and a resumed fit continues the same run.

Pinned: fractional epochs and ``steps`` stop mid-epoch at the right step (the per-epoch callback
sees the epochs begun); training to fewer steps and resuming from the returned state gives the
parameters of one uninterrupted fit (Hyperband's continued rungs rely on it).
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.data.splits import ImageData, Split
from archsearch.train.loop import TrainConfig, fit

CLASSES = 3


def make_data(n: int = 40, seed: int = 0) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    split = Split(torch.randn(n, 3, 6, 6, generator=g),
                  torch.randint(0, CLASSES, (n,), generator=g))
    return ImageData("toy", split, split.take(8), split.take(8), CLASSES, pad=1, flip=True)


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, CLASSES))


def test_fractional_epochs_and_steps_stop_mid_epoch():
    data = make_data()  # 40 images, batch 8: 5 steps an epoch
    epochs_seen: list[int] = []
    out = fit(make_model(), data, TrainConfig(epochs=1.4, batch_size=8),
              torch.Generator().manual_seed(1), on_epoch=lambda e, _: epochs_seen.append(e))
    assert out["steps"] == 7.0
    assert epochs_seen == [1, 2]
    out = fit(make_model(), data, TrainConfig(steps=3, batch_size=8),
              torch.Generator().manual_seed(1))
    assert out["steps"] == 3.0


def test_a_resumed_fit_equals_the_uninterrupted_one():
    data = make_data()
    config = TrainConfig(epochs=2.0, batch_size=8, lr=0.1)
    whole = make_model()
    fit(whole, data, config, torch.Generator().manual_seed(2))
    part = make_model()
    generator = torch.Generator().manual_seed(2)
    first = fit(part, data, TrainConfig(epochs=1.2, batch_size=8, lr=0.1), generator,
                horizon=2.0)
    assert first["steps"] == 6.0
    fit(part, data, config, generator, resume=first["state"])
    for a, b in zip(whole.parameters(), part.parameters(), strict=True):
        assert torch.equal(a, b)
