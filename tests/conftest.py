from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# set by the test command (scripts/test.sh, hence CI): missing reference data fails the run
# instead of skipping the tests that read it
REQUIRE_DATA = os.environ.get("ARCHSEARCH_REQUIRE_DATA") == "1"


def shared_file(name: str) -> Path:
    """A reference file from ../shared/data; when it is absent, skip the test saying why (or,
    under ARCHSEARCH_REQUIRE_DATA=1, fail it). Tests that call this carry ``@pytest.mark.data``
    (``-m "not data"`` runs the rest)."""
    path = SHARED_DATA / name
    if not path.exists():
        message = f"reference data {path} is absent (the tests read it from ../shared/data)"
        if REQUIRE_DATA:
            pytest.fail(message + "; ARCHSEARCH_REQUIRE_DATA=1 makes that an error",
                        pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture
def one_thread():
    """One intra-op thread for the test: small tensors gain nothing from more, and on a machine
    shared with other jobs waiting threads made such tests several times slower. Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_tiny_images(path: Path, n: int) -> str:
    """``n`` 8x8 RGB images of 3 classes, the label the brightest channel (learnable), as an
    image-data .npz at ``path``; returns its path."""
    import numpy as np

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    x = rng.integers(0, 80, (n, 8, 8, 3)).astype(np.uint8)
    x[np.arange(n), :, :, y] += 120
    np.savez(path, x=x, y=y)
    return str(path)


@pytest.fixture
def nb201_csv() -> Path:
    return shared_file("nb201_cifar10.csv")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the ``nb201_csv`` fixture reads reference data too."""
    for item in items:
        if "nb201_csv" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)
