"""CIFAR-10 from the standard python-pickle batch folder or from an ``.npz`` of images.

* ``cifar-10-batches-py/`` (``data_batch_1..5``, ``test_batch``): the last ``val_fraction`` of
  the training images (10%: 5,000) are the validation split and ``test_batch`` is the test split.
* ``.npz`` with ``x`` (uint8, N x 32 x 32 x 3, HWC RGB) and ``y`` (N,): seeded
  train/validation/test split by fractions. Optional ``x_test``/``y_test`` arrays are used as the
  test split when present.

Pixels are normalised with the usual CIFAR-10 channel statistics.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from archsearch.data.splits import ImageData, Split, normalise, split_indices
from archsearch.errors import UserError

MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32) * 255
STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32) * 255


def _split(x: np.ndarray, y: np.ndarray) -> Split:
    return Split(normalise(x, MEAN, STD), torch.from_numpy(y.astype(np.int64)))


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return data, np.asarray(batch[b"labels"], dtype=np.int64)


def load_cifar10_batches(folder: str | Path, val_fraction: float = 0.1) -> ImageData:
    folder = Path(folder)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise UserError(
            f"{folder} is not a cifar-10-batches-py folder: missing {', '.join(missing)}"
        )
    parts = [_read_batch(folder / n) for n in names[:5]]
    x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    xt, yt = _read_batch(folder / "test_batch")
    if not 0 <= val_fraction < 1:
        raise UserError(f"val_fraction must be in [0, 1), not {val_fraction}")
    cut = len(y) - round(len(y) * val_fraction)
    return ImageData("cifar10", _split(x[:cut], y[:cut]), _split(x[cut:], y[cut:]),
                     _split(xt, yt), 10)


def load_cifar10_npz(path: str | Path, val_fraction: float = 0.2, test_fraction: float = 0.2,
                     seed: int = 0) -> ImageData:
    with np.load(path, allow_pickle=False) as arrays:
        if "x" not in arrays or "y" not in arrays:
            raise UserError(f"{path}: an image .npz needs arrays 'x' and 'y'; it has "
                            f"{', '.join(arrays.files)}")
        x, y = arrays["x"], arrays["y"]
        test = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
    if x.ndim != 4 or x.shape[3] != 3 or x.dtype != np.uint8 or len(x) != len(y):
        raise UserError(f"{path}: x must be uint8 (N, H, W, 3) with N labels in y; got x "
                        f"{x.dtype} {x.shape}, y {y.shape}")
    num_classes = int(y.max()) + 1
    if test is not None:
        train, val, _ = split_indices(len(y), val_fraction, 0.0, seed)
        return ImageData(Path(path).stem, _split(x[train], y[train]), _split(x[val], y[val]),
                         _split(*test), num_classes)
    train, val, tst = split_indices(len(y), val_fraction, test_fraction, seed)
    return ImageData(Path(path).stem, _split(x[train], y[train]), _split(x[val], y[val]),
                     _split(x[tst], y[tst]), num_classes)
