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
def nb201_csv() -> Path:
    return shared_file("nb201_cifar10.csv")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the ``nb201_csv`` fixture reads reference data too."""
    for item in items:
        if "nb201_csv" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)
