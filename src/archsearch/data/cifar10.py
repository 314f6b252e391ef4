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
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archsearch.data.splits import ImageData, Split, normalise, split_indices
from archsearch.errors import UserError

MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32) * 255
STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32) * 255


def _split(x: np.ndarray, y: np.ndarray) -> Split:
    return Split(normalise(x, MEAN, STD), torch.from_numpy(y.astype(np.int64)))


class BatchUnpickler(pickle.Unpickler):
    """Reads only what CIFAR-10 batches hold: dicts, lists, bytes, strings, numbers and numpy
    arrays. Any other global a pickle names (``os.system``, ...) is refused, so a crafted
    batch file cannot run code (plain ``pickle.load`` would run it)."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"a CIFAR-10 batch holds no {module}.{name}")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = BatchUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
            raise ValueError(f"data {data.shape} and labels {labels.shape}")
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, IndexError,
            AttributeError, OverflowError) as exc:
        raise UserError(f"{path} is not a CIFAR-10 batch (a pickle of data (N, 3072) uint8 and "
                        f"N labels): {exc}") from None
    data = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return data, check_labels(labels, str(path), 10)


def check_labels(y: np.ndarray, where: str, num_classes: int | None = None) -> np.ndarray:
    """Integer class labels 0..K-1 (K = ``num_classes``, or at most 10,000 and each class
    present up to the largest), as int64; anything else is refused saying what it found."""
    if y.dtype.kind not in "iu":
        raise UserError(f"{where}: labels must be integers, not {y.dtype}")
    if y.ndim != 1 or len(y) == 0:
        raise UserError(f"{where}: labels must be a non-empty 1-d array, got shape {y.shape}")
    low, high = int(y.min()), int(y.max())
    limit = num_classes if num_classes is not None else 10_000
    if low < 0 or high >= limit:
        raise UserError(f"{where}: labels range over {low}..{high}; they must be class ids in "
                        f"0..{limit - 1}")
    return y.astype(np.int64)


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
    x, y, test = _read_npz(Path(path))
    num_classes = int(y.max()) + 1
    if test is not None:
        train, val, _ = split_indices(len(y), val_fraction, 0.0, seed)
        return ImageData(Path(path).stem, _split(x[train], y[train]), _split(x[val], y[val]),
                         _split(*test), num_classes)
    train, val, tst = split_indices(len(y), val_fraction, test_fraction, seed)
    if min(len(train), len(val)) == 0:
        raise UserError(f"{path}: {len(y)} images are too few to split into training and "
                        "validation images")
    return ImageData(Path(path).stem, _split(x[train], y[train]), _split(x[val], y[val]),
                     _split(x[tst], y[tst]), num_classes)


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """x, y and the optional (x_test, y_test) of an image .npz, checked."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays or "y" not in arrays:
                raise UserError(f"{path}: an image .npz needs arrays 'x' and 'y'; it has "
                                f"{', '.join(arrays.files) or 'none'}")
            x, y = arrays["x"], arrays["y"]
            test = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
    except UserError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path} is not a readable .npz of arrays x and y ({exc})") from None
    _check_images(x, y, str(path))
    y = check_labels(y, f"{path}: y")
    if test is not None:
        _check_images(*test, f"{path} (x_test, y_test)")
        if test[0].shape[1:] != x.shape[1:]:
            raise UserError(f"{path}: x_test images are {test[0].shape[1:]}, x's {x.shape[1:]}")
        test = (test[0], check_labels(test[1], f"{path}: y_test", int(y.max()) + 1))
    return x, y, test


def _check_images(x: np.ndarray, y: np.ndarray, where: str) -> None:
    if x.ndim != 4 or x.shape[3] != 3 or x.dtype != np.uint8 or len(x) != len(y):
        raise UserError(f"{where}: x must be uint8 (N, H, W, 3) with N labels in y; got x "
                        f"{x.dtype} {x.shape}, y {y.shape}")
    if len(x) == 0 or min(x.shape[1:3]) < 1:
        raise UserError(f"{where}: holds no images")
