"""scikit-learn's bundled digits (1,797 8x8 grey images, 10 classes): the embedded default data.

No download: the images ship with scikit-learn. The split is fixed and seeded (60/20/20 by
default), the pixels (0..16) normalised by the training split's mean and std. Augmentation is
a 1-pixel pad-crop only (flipping digits would change their meaning).
"""

from __future__ import annotations

import numpy as np
import torch

from archsearch.data.splits import ImageData, Split, split_indices


def load_digits(val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0) -> ImageData:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = bunch.images.astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    train, val, test = split_indices(len(y), val_fraction, test_fraction, seed)
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std

    def split(idx: np.ndarray) -> Split:
        return Split(torch.from_numpy(x[idx]), torch.from_numpy(y[idx]))

    return ImageData("digits", split(train), split(val), split(test), 10, pad=1, flip=False)
