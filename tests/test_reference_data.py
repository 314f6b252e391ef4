"""Tests that read ../shared/data say so with ``@pytest.mark.data``, so that ``-m "not data"``
selects the rest and CI (ARCHSEARCH_REQUIRE_DATA=1) fails rather than skips without it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests import conftest

TESTS = Path(__file__).parent


def reads_reference_data(fn: ast.FunctionDef) -> bool:
    calls = any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "shared_file"
                for n in ast.walk(fn))
    return calls or any(a.arg == "nb201_csv" for a in fn.args.args)


def has_data_marker(fn: ast.FunctionDef) -> bool:
    return any(ast.unparse(d) == "pytest.mark.data" for d in fn.decorator_list)


def test_every_test_reading_reference_data_is_marked() -> None:
    unmarked = []
    for path in TESTS.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
                    and reads_reference_data(node) and not has_data_marker(node)
                    and "nb201_csv" not in [a.arg for a in node.args.args]):
                unmarked.append(f"{path.relative_to(TESTS)}::{node.name}")
    assert not unmarked, f"read ../shared/data without @pytest.mark.data: {unmarked}"


def test_missing_reference_data_fails_under_the_switch(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(conftest, "SHARED_DATA", tmp_path)
    monkeypatch.setattr(conftest, "REQUIRE_DATA", True)
    with pytest.raises(pytest.fail.Exception, match="ARCHSEARCH_REQUIRE_DATA=1"):
        conftest.shared_file("nb201_cifar10.csv")
    monkeypatch.setattr(conftest, "REQUIRE_DATA", False)
    with pytest.raises(pytest.skip.Exception, match="is absent"):
        conftest.shared_file("nb201_cifar10.csv")
