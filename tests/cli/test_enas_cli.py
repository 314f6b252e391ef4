"""The ENAS path of the CLI on a tiny synthetic image set: search, show, train, export, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.cli.main import main

TINY = ["--epochs", "2", "--final-epochs", "0.5", "--baseline-random", "1", "--no-progress",
        "--strategy-opt", "controller_steps=1", "--strategy-opt", "aggregate=2",
        "--strategy-opt", "derive_samples=3",
        "--estimator-opt", "supernet={'channels': 4, 'cells_per_stage': 1}",
        "--estimator-opt", "batch_size=16",
        "--final-opt", "build={'channels': 4, 'cells_per_stage': 1}", "--device", "cpu"]


@pytest.fixture
def images(tmp_path: Path) -> str:
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, x=rng.integers(0, 256, (80, 8, 8, 3), dtype=np.uint8),
             y=rng.integers(0, 4, 80))
    return str(path)


@pytest.mark.slow
def test_enas_search_show_train_export(images: str, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["search", "--data", images, "--run", str(run), *TINY]) == 0
    out = capsys.readouterr().out
    assert "derived architecture" in out and "random mean" in out
    assert (run / "enas.pt").exists() and (run / "best_model.pt").exists()
    assert main(["show", str(run), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert len(shown["epochs"]) == 2 and shown["trials"] == []  # one record per epoch
    assert shown["best_arch"] == shown["epochs"][-1]["derived"]  # ENAS's answer: the last derived
    assert main(["train", str(run), "--epochs", "0.5", "--no-progress",
                 "--json", str(tmp_path / "t.json")]) == 0
    assert json.loads((tmp_path / "t.json").read_text())["best"]["arch"] == shown["best_arch"]
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(tmp_path / "export")]) == 0
    exported = tmp_path / "export"
    arch = json.loads((exported / "arch.json").read_text())
    assert arch == {"space": "enas-micro", "arch": shown["best_arch"]}
    assert (exported / "cells.png").stat().st_size > 5000
    model = torch.jit.load(str(exported / "model.pt"))
    assert model(torch.zeros(2, 3, 8, 8)).shape == (2, 4)
    # resuming a finished run trains nothing more and reports the same answer
    assert main(["search", "--run", str(run), "--resume", "--no-progress"]) == 0
    assert shown["best_arch"] in capsys.readouterr().out


def test_train_accepts_architecture_json(tmp_path: Path, capsys) -> None:
    arch = {"space": "nb201", "arch": "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|"
            "skip_connect~0|none~1|nor_conv_1x1~2|"}
    assert main(["train", json.dumps(arch), "--epochs", "0.3", "--no-progress",
                 "--final-opt", "build={'channels': 4, 'cells_per_stage': 1}"]) == 0
    assert "final protocol (retrained from scratch" in capsys.readouterr().out
    assert main(["train", "{\"space\": \"nb201\", \"arch\": \"|bad|\"}"]) == 2
    assert "NB201 string" in capsys.readouterr().err


def test_a_zero_cost_prior_warms_the_controller_up(images: str, tmp_path: Path,
                                                   capsys) -> None:
    nb201 = ["--space", "nb201", "--data", images, *TINY, "--epochs", "1",
             "--baseline-random", "0", "--final-epochs", "0.2",
             "--strategy-opt", "prior_samples=4"]
    run = tmp_path / "run"
    assert main(["search", "--run", str(run), *nb201, "--strategy-opt", "prior=params"]) == 0
    record = torch.load(run / "enas.pt", weights_only=True)["history"][0]
    assert record["prior_seconds"] > 0 and 0 <= record["prior_last"] <= 1
    capsys.readouterr()
    assert main(["search", "--run", str(tmp_path / "bad"), *nb201,
                 "--strategy-opt", "prior=synflw"]) == 2
    err = capsys.readouterr().err
    assert "synflw" in err and "synflow" in err and "Traceback" not in err
