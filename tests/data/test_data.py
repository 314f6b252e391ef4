from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.data import load_image_data
from archsearch.data.augment import augment, cutout, random_crop, random_flip
from archsearch.errors import UserError
from tests.conftest import shared_file


def digit_samples(split, lo: float, scale: float) -> Counter:
    """A split as a multiset of (raw pixels 0..16, label), undoing the normalisation."""
    pixels = np.rint((split.x.double().numpy() - lo) / scale).astype(np.int64)
    return Counter((p.tobytes(), int(y)) for p, y in zip(pixels.reshape(len(pixels), -1),
                                                          split.y.numpy()))


def test_digits_split_is_fixed_and_disjoint() -> None:
    from sklearn.datasets import load_digits

    a, b = load_image_data("digits"), load_image_data("digits")
    assert (len(a.train), len(a.val), len(a.test)) == (1079, 359, 359)
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(a, name).x, getattr(b, name).x)
        assert torch.equal(getattr(a, name).y, getattr(b, name).y)
    assert a.shape == (1, 8, 8) and a.num_classes == 10 and not a.flip
    assert abs(float(a.train.x.mean())) < 1e-4
    # disjoint on the images themselves: the three splits together hold each (image, label)
    # of the dataset exactly as often as the dataset does (an image in two splits would be
    # one too many there and leave another missing)
    lo, hi = float(a.train.x.min()), float(a.train.x.max())  # raw pixels 0 and 16
    scale = (hi - lo) / 16
    parts = [digit_samples(getattr(a, n), lo, scale) for n in ("train", "val", "test")]
    bunch = load_digits()
    dataset = Counter((img.astype(np.int64).tobytes(), int(y))
                      for img, y in zip(bunch.images.reshape(len(bunch.images), -1),
                                        bunch.target))
    assert parts[0] + parts[1] + parts[2] == dataset
    unique = {k for k, n in dataset.items() if n == 1}
    assert not (set(parts[0]) & set(parts[1]) & unique)
    assert not (set(parts[0]) & set(parts[2]) & unique)
    assert not (set(parts[1]) & set(parts[2]) & unique)
    # another seed, another split
    other = load_image_data("digits", seed=1)
    assert digit_samples(other.val, float(other.train.x.min()),
                         (float(other.train.x.max()) - float(other.train.x.min())) / 16) \
        != parts[1]


def write_batches(folder: Path, per_batch: int = 20) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, per_batch))
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)


def test_cifar10_python_batches(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_batches(folder)
    data = load_image_data(str(folder))
    with open(folder / "data_batch_1", "rb") as f:
        first = pickle.load(f, encoding="bytes")
    # channel-major rows -> NCHW, red plane first, then normalised
    red = first[b"data"][0, :1024].reshape(32, 32).astype(np.float32)
    expected = (red - 0.4914 * 255) / (0.2470 * 255)
    assert np.allclose(data.train.x[0, 0].numpy(), expected, atol=1e-5)
    assert (len(data.train), len(data.val), len(data.test)) == (90, 10, 20)
    assert data.train.x.shape[1:] == (3, 32, 32) and data.flip and data.pad == 4


def test_cifar10_folder_with_missing_batches_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="missing data_batch_1"):
        load_image_data(str(tmp_path / "empty"))


def test_npz_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "imgs.npz"
    np.savez(path, x=rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8),
             y=rng.integers(0, 10, 50))
    data = load_image_data(str(path), val_fraction=0.2, test_fraction=0.2)
    assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 10)
    np.savez(tmp_path / "bad.npz", images=np.zeros(3))
    with pytest.raises(UserError, match="needs arrays 'x' and 'y'"):
        load_image_data(str(tmp_path / "bad.npz"))


@pytest.mark.data
def test_shared_cifar10_sample_loads() -> None:
    data = load_image_data(str(shared_file("cifar10_sample.npz")), val_fraction=0.2,
                           test_fraction=0.0)
    assert (len(data.train), len(data.val)) == (1600, 400)
    assert data.num_classes == 10
    assert data.train.x.mean(dim=(0, 2, 3)).abs().max() < 0.1  # roughly normalised


def test_missing_path_is_a_user_error() -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_image_data("/no/such/data.npz")


def test_crop_without_padding_and_flip_twice_are_identities() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 8, 8)
    assert torch.equal(random_crop(x, 0, g), x)
    flipped = random_flip(x, g)
    assert all(torch.equal(f, o) or torch.equal(f, o.flip(2)) for f, o in zip(flipped, x))


def test_crop_is_a_shifted_window_of_the_padded_image() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6) + 1
    out = random_crop(x, 2, g)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        windows = [padded[i, :, dy:dy + 6, dx:dx + 6] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)


def test_cutout_zeroes_one_square_per_image() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.ones(16, 2, 12, 12)
    out = cutout(x, 4, g)
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert (zeros > 0).all() and (zeros <= 16).all()
    assert torch.equal(out[:, 0] == 0, out[:, 1] == 0)


def test_augment_is_reproducible_by_generator() -> None:
    x = torch.randn(8, 3, 16, 16)
    a = augment(x, torch.Generator().manual_seed(5), 4, True, 8)
    b = augment(x, torch.Generator().manual_seed(5), 4, True, 8)
    assert torch.equal(a, b) and a.shape == x.shape
