from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(name: str) -> Path:
    """A reference file from ../shared/data, or skip the test saying why."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"reference data {path} is absent (the tests read it from ../shared/data)")
    return path


@pytest.fixture
def nb201_csv() -> Path:
    return shared_file("nb201_cifar10.csv")
