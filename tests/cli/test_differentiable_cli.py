"""Item 5 of the differentiable-search issue: a derived genotype is retrained and exported as
ENAS's is (search with random baselines, train, export with cell drawings), on both spaces with
a derive: DARTS on the darts space (a genotype of two cells), GDAS on NB201 (one cell)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.cli.main import main

NETWORKS = {"darts": ("{'channels': 2, 'cells': 3}", "{'channels': 4, 'cells': 3}"),
            "nb201": ("{'channels': 4, 'cells_per_stage': 1}",
                      "{'channels': 4, 'cells_per_stage': 1}")}


@pytest.fixture
def images(tmp_path: Path) -> str:
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, x=rng.integers(0, 256, (64, 8, 8, 3), dtype=np.uint8),
             y=rng.integers(0, 4, 64))
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("method, space", [("darts", "darts"), ("gdas", "nb201")])
def test_a_derived_genotype_is_retrained_beside_random_ones_and_exported(
        images: str, tmp_path: Path, capsys, method: str, space: str) -> None:
    supernet, final = NETWORKS[space]
    run = tmp_path / "run"
    assert main(["search", "--method", method, "--space", space, "--data", images,
                 "--run", str(run), "--epochs", "1", "--final-epochs", "0.5",
                 "--baseline-random", "1", "--no-progress", "--device", "cpu",
                 "--estimator-opt", f"supernet={supernet}", "--estimator-opt", "batch_size=16",
                 "--final-opt", f"build={final}"]) == 0
    out = capsys.readouterr().out
    assert "random mean" in out  # the derived cell retrained beside a random one
    assert main(["show", str(run), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["best_arch"] == shown["epochs"][-1]["derived"]  # the last epoch's genotype
    assert main(["train", str(run), "--epochs", "0.5", "--baseline-random", "1",
                 "--no-progress", "--json", str(tmp_path / "t.json")]) == 0
    trained = json.loads((tmp_path / "t.json").read_text())
    assert trained["best"]["arch"] == shown["best_arch"] and len(trained["random"]) == 1
    capsys.readouterr()
    exported = tmp_path / "export"
    assert main(["export", str(run), "--out", str(exported)]) == 0
    assert json.loads((exported / "arch.json").read_text()) == {"space": space,
                                                               "arch": shown["best_arch"]}
    assert (exported / "cells.png").stat().st_size > 5000
    model = torch.jit.load(str(exported / "model.pt"))
    assert model(torch.zeros(2, 3, 8, 8)).shape == (2, 4)
