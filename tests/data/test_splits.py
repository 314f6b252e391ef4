"""Train/validation/test splits are disjoint, cover every sample and are fixed by the seed.

Pinned for ``split_indices`` (pairwise disjoint index arrays whose union is range(n), sizes
from the fractions, same seed same split, another seed another) and for what
``load_image_data`` returns on the embedded digits and on small ``.npz`` files: there the
check is on the images themselves (each split image traced back to its source sample, labels
still paired with it), not on indices the loader never shows.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.data import load_image_data
from archsearch.data.cifar10 import MEAN, STD
from archsearch.data.splits import ImageData, split_indices


def assert_partition(parts: tuple[np.ndarray, ...], n: int) -> None:
    sets = [set(p.tolist()) for p in parts]
    for part, unique in zip(parts, sets):
        assert len(unique) == len(part), "an index repeats inside a split"
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            assert not sets[i] & sets[j], f"splits {i} and {j} share {sorted(sets[i] & sets[j])}"
    assert set().union(*sets) == set(range(n))


@pytest.mark.parametrize("n, val, test", [(1797, 0.2, 0.2), (50, 0.2, 0.2), (101, 0.1, 0.3),
                                          (10, 0.0, 0.5), (7, 0.3, 0.0), (1000, 0.05, 0.05)])
def test_split_indices_partition_range_n_with_the_requested_sizes(n: int, val: float,
                                                                  test: float) -> None:
    for seed in range(5):
        train, v, t = split_indices(n, val, test, seed)
        assert_partition((train, v, t), n)
        assert (len(v), len(t)) == (round(n * val), round(n * test))
        assert len(train) == n - len(v) - len(t)


def test_split_indices_are_fixed_by_the_seed() -> None:
    a = split_indices(500, 0.2, 0.2, seed=7)
    b = split_indices(500, 0.2, 0.2, seed=7)
    c = split_indices(500, 0.2, 0.2, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    for x, y in zip(a, c):
        assert not np.array_equal(x, y)
        assert set(x.tolist()) != set(y.tolist())  # other members, not only another order


def test_split_indices_refuse_fractions_that_leave_no_training_data() -> None:
    for val, test in [(0.5, 0.5), (1.0, 0.0), (-0.1, 0.2), (0.2, 1.2)]:
        with pytest.raises(ValueError):
            split_indices(10, val, test, 0)


# ---- loaded data: trace each split image back to the sample it came from -------------------

def digits_source() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.int64), bunch.target.astype(np.int64)


def recover_digit_pixels(data: ImageData) -> dict[str, np.ndarray]:
    """Each split's pixels as the integers 0..16 they were: the normalisation is affine (the
    raw training pixels' mean and std), and the training split holds a 0 and a 16, so its
    minimum and maximum give the map back."""
    raw, _ = digits_source()
    lo = float(data.train.x.min())
    hi = float(data.train.x.max())
    assert raw.min() == 0 and raw.max() == 16
    scale = (hi - lo) / 16.0
    out = {}
    for name in ("train", "val", "test"):
        x = (getattr(data, name).x.double().numpy() - lo) / scale
        pixels = np.rint(x)
        assert np.abs(x - pixels).max() < 1e-3  # an exact affine image of integer pixels
        out[name] = pixels.astype(np.int64)
    return out


def sample_counter(pixels: np.ndarray, labels: np.ndarray) -> Counter:
    return Counter((p.tobytes(), int(y)) for p, y in zip(pixels.reshape(len(pixels), -1), labels))


def test_digits_splits_are_disjoint_and_cover_the_dataset_on_the_images_themselves() -> None:
    raw, target = digits_source()
    data = load_image_data("digits", seed=0)
    pixels = recover_digit_pixels(data)
    counters = {name: sample_counter(pixels[name], getattr(data, name).y.numpy())
                for name in pixels}
    everything = sample_counter(raw, target)
    # together the splits hold every sample exactly as often as the dataset does
    assert counters["train"] + counters["val"] + counters["test"] == everything
    # and no image that occurs once in the dataset is in two splits
    once = {k for k, c in everything.items() if c == 1}
    names = list(counters)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not (set(counters[a]) & set(counters[b]) & once), (a, b)
    assert (len(data.train), len(data.val), len(data.test)) == (1079, 359, 359)


def test_digits_splits_are_the_seeded_index_split_of_the_dataset() -> None:
    raw, target = digits_source()
    for seed in (0, 5):
        data = load_image_data("digits", seed=seed)
        pixels = recover_digit_pixels(data)
        for name, idx in zip(("train", "val", "test"), split_indices(len(target), 0.2, 0.2, seed)):
            assert np.array_equal(pixels[name], raw[idx][:, None]), (seed, name)
            assert np.array_equal(getattr(data, name).y.numpy(), target[idx]), (seed, name)


def test_digits_split_is_fixed_by_the_seed_and_changes_with_it() -> None:
    a, b, c = (load_image_data("digits", seed=s) for s in (3, 3, 4))
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(a, name).x, getattr(b, name).x)
        assert torch.equal(getattr(a, name).y, getattr(b, name).y)
    pa, pc = recover_digit_pixels(a), recover_digit_pixels(c)
    ya, yc = a.val.y.numpy(), c.val.y.numpy()
    assert sample_counter(pa["val"], ya) != sample_counter(pc["val"], yc)
    assert sample_counter(pa["test"], a.test.y.numpy()) != sample_counter(
        pc["test"], c.test.y.numpy())


def write_indexed_npz(path: Path, n: int, seed: int, test: int = 0) -> np.ndarray:
    """Random images whose first two pixels spell the sample's index (labels: index % 10)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n + test, 8, 8, 3), dtype=np.uint8)
    index = np.arange(n + test)
    x[:, 0, 0, 0], x[:, 0, 0, 1] = index % 256, index // 256
    y = (index % 10).astype(np.int64)
    arrays = {"x": x[:n], "y": y[:n]}
    if test:
        arrays |= {"x_test": x[n:], "y_test": y[n:]}
    np.savez(path, **arrays)
    return x


def indices_of(split) -> np.ndarray:
    """The sample indices spelled by a split's images (undoing the CIFAR normalisation)."""
    x = split.x.numpy()[:, :2, 0, 0]  # (N, 2): channels 0 and 1 of pixel (0, 0)
    raw = np.rint(x * STD[:2] + MEAN[:2]).astype(np.int64)
    index = raw[:, 0] + 256 * raw[:, 1]
    assert np.array_equal(split.y.numpy(), index % 10), "labels left their images"
    return index


def test_npz_splits_are_disjoint_cover_every_image_and_keep_labels(tmp_path: Path) -> None:
    path = tmp_path / "imgs.npz"
    x = write_indexed_npz(path, 300, seed=0)
    data = load_image_data(str(path), seed=0, val_fraction=0.2, test_fraction=0.1)
    parts = tuple(indices_of(getattr(data, n)) for n in ("train", "val", "test"))
    assert_partition(parts, 300)
    assert tuple(len(p) for p in parts) == (210, 60, 30)
    # the images are the source images, whole, not only their index pixels
    raw_val = np.rint(data.val.x.numpy().transpose(0, 2, 3, 1) * STD + MEAN)
    assert np.array_equal(raw_val.astype(np.uint8), x[parts[1]])


def test_npz_with_its_own_test_arrays_splits_only_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "imgs.npz"
    write_indexed_npz(path, 200, seed=1, test=40)
    data = load_image_data(str(path), seed=2, val_fraction=0.25)
    train, val, test = (indices_of(getattr(data, n)) for n in ("train", "val", "test"))
    assert_partition((train, val), 200)
    assert len(val) == 50
    assert test.tolist() == list(range(200, 240))  # the given test set, whole and in order


def test_npz_split_is_fixed_by_the_seed_and_changes_with_it(tmp_path: Path) -> None:
    path = tmp_path / "imgs.npz"
    write_indexed_npz(path, 120, seed=3)
    a, b, c = (load_image_data(str(path), seed=s, val_fraction=0.2, test_fraction=0.2)
               for s in (5, 5, 6))
    for name in ("train", "val", "test"):
        assert np.array_equal(indices_of(getattr(a, name)), indices_of(getattr(b, name)))
        assert set(indices_of(getattr(a, name)).tolist()) != set(
            indices_of(getattr(c, name)).tolist())
