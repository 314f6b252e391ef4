from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archsearch.errors import UserError
from archsearch.registry import ESTIMATORS
from archsearch.spaces.nb201 import NB201Space
from archsearch.types import Budget

SPACE = NB201Space()
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def write_table(path: Path) -> None:
    path.write_text(f"arch_str,acc\n{CELL},91.5\n")


def test_tabular_lookup(tmp_path: Path) -> None:
    write_table(tmp_path / "t.csv")
    est = ESTIMATORS.create("tabular", space=SPACE, benchmark=tmp_path / "t.csv", metric="acc")
    assert est.evaluate(SPACE.parse(CELL)).objective == 91.5
    missing = est.evaluate(SPACE.decode([0] * 6))
    assert not missing.ok and "not in the benchmark" in missing.error


def test_tabular_missing_column_lists_the_columns(tmp_path: Path) -> None:
    write_table(tmp_path / "t.csv")
    with pytest.raises(UserError, match="no column 'accuracy'; its columns are: arch_str, acc"):
        ESTIMATORS.create("tabular", benchmark=tmp_path / "t.csv", metric="accuracy")


def test_tabular_missing_file() -> None:
    with pytest.raises(UserError, match="does not exist"):
        ESTIMATORS.create("tabular", benchmark="/no/table.csv", metric="acc")


def test_full_training_reports_metrics_and_is_deterministic() -> None:
    est = ESTIMATORS.create("full-training", space=SPACE, data="digits", epochs=1,
                            batch_size=128, device="cpu", build={"channels": 4,
                                                                 "cells_per_stage": 1})
    arch = SPACE.parse(CELL)
    a, b = est.evaluate(arch), est.evaluate(arch)
    assert a.ok and a.objective == a.metrics["val_acc"] == b.objective
    assert a.metrics["test_acc"] == b.metrics["test_acc"]
    assert 0.0 <= a.metrics["test_acc"] <= 1.0 and a.metrics["params_m"] > 0
    longer = est.evaluate(arch, Budget(epochs=3))
    assert longer.metrics["epochs"] == 3 and longer.objective > a.objective
    # CPU seconds of the training alone: positive, more for three epochs than for one, and
    # within the evaluation's (wall) cost times the threads torch may use
    cpu = [r.metrics["train_cpu_seconds"] for r in (a, longer)]
    assert 0 < cpu[0] < cpu[1] <= longer.cost_seconds * torch.get_num_threads() + 0.05
