"""The scripts in benchmarks/ are not run by the suite (they take minutes to hours), but they
must keep importing against the current API and keep a working command line: each is loaded
as a module and, where it has one, asked for its ``--help``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))
OTHER_ENVIRONMENT = {"nni_enas_speed.py"}  # runs in NNI's own virtual environment


@pytest.mark.parametrize("path", [p for p in SCRIPTS if p.name not in OTHER_ENVIRONMENT],
                         ids=lambda p: p.name)
def test_benchmark_script_imports_and_answers_help(path: Path, monkeypatch, capsys) -> None:
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the __main__ guard keeps the benchmark itself from running
    if "argparse" not in path.read_text():
        return
    monkeypatch.setattr(sys, "argv", [str(path), "--help"])
    with pytest.raises(SystemExit) as exit_:
        module.main()
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_the_scripts_are_found() -> None:
    assert len(SCRIPTS) >= 10
