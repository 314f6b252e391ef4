"""Datasets as device-ready tensors, and augmentation that runs where the data is."""

from __future__ import annotations

from pathlib import Path

from archsearch.data.splits import ImageData, Split
from archsearch.errors import UserError

__all__ = ["ImageData", "Split", "load_image_data"]


def load_image_data(source: str = "digits", seed: int = 0, val_fraction: float | None = None,
                    test_fraction: float = 0.2) -> ImageData:
    """``digits`` (embedded), a ``cifar-10-batches-py`` folder, or an ``.npz`` of images.

    ``val_fraction`` defaults to 0.2 (digits, .npz) or 0.1 (the CIFAR-10 training batches);
    ``test_fraction`` applies where the source has no test split of its own.
    """
    if source == "digits":
        from archsearch.data.digits import load_digits

        return load_digits(0.2 if val_fraction is None else val_fraction, test_fraction, seed)
    path = Path(source)
    if not path.exists():
        raise UserError(
            f"data {source!r} does not exist: give 'digits', a cifar-10-batches-py folder "
            "or an .npz file with arrays x and y"
        )
    if path.is_dir():
        from archsearch.data.cifar10 import load_cifar10_batches

        return load_cifar10_batches(path, 0.1 if val_fraction is None else val_fraction)
    if path.suffix == ".npz":
        from archsearch.data.cifar10 import load_cifar10_npz

        return load_cifar10_npz(path, 0.2 if val_fraction is None else val_fraction,
                                test_fraction, seed)
    raise UserError(f"data {source!r}: expected a folder or an .npz file")
