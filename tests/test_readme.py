"""The README's library example runs as written (from a folder beside ../shared)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA

README = Path(__file__).resolve().parents[1] / "README.md"


def library_example() -> str:
    section = README.read_text().split("## As a library", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
@pytest.mark.data
def test_the_library_example_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    from tests.conftest import shared_file

    shared_file("nb201_cifar10.csv")
    (tmp_path / "shared").symlink_to(SHARED_DATA.parent)  # ../shared from the work folder
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    exec(compile(library_example(), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "derived: normal:" in out and "retrained: " in out
    best = re.search(r"best: (\S+) ([\d.]+)", out)
    assert best and float(best.group(2)) > 93.5  # evolution on the real table
    assert (work / "runs" / "py-enas" / "config.toml").exists()
    assert os.path.exists(work / "runs" / "py-evolution" / "trials.db")


def test_the_toml_example_resolves(tmp_path: Path) -> None:
    from archsearch.run.config import from_toml, resolve

    text = re.search(r"```toml\n(.*?)```", README.read_text(), re.S).group(1)
    (tmp_path / "run.toml").write_text(text.replace("../shared/data", str(SHARED_DATA)))
    resolved = resolve(from_toml(tmp_path / "run.toml"))
    assert resolved["run"]["method"] == "evolution" and resolved["run"]["trials"] == 100
    assert resolved["method"]["population_size"] == 10
    assert resolved["estimator"]["name"] == "tabular"
