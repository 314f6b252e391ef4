"""Estimators honour a trial's budget: full-training (epochs, steps, a fraction of the data,
and continuing a lower rung's network exactly as a fresh run), lm-training, and tabular tables
through a budget-to-column mapping or a per-epoch table."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.errors import UserError
from archsearch.estimators.full_training import FullTrainingEstimator
from archsearch.estimators.language_model import LMTrainingEstimator
from archsearch.estimators.tabular import TabularEstimator
from archsearch.registry import SPACES
from archsearch.types import Budget

SMALL = {"channels": 4, "cells_per_stage": 1}


@pytest.fixture(scope="module")
def nb201():
    return SPACES.create("nb201")


def estimator(nb201, **options) -> FullTrainingEstimator:
    return FullTrainingEstimator(nb201, data="digits", epochs=1, batch_size=64, build=SMALL,
                                 device="cpu", train_subset=256, **options)


def test_epochs_steps_and_fraction_budgets_change_what_is_trained(nb201, monkeypatch) -> None:
    seen = []
    import archsearch.estimators.full_training as ft

    real_fit = ft.fit
    monkeypatch.setattr(ft, "fit", lambda model, data, config, *a, **k: seen.append(
        (len(data.train), config.epochs, config.steps)) or real_fit(model, data, config, *a, **k))
    arch = nb201.sample(np.random.default_rng(0))
    est = estimator(nb201)
    assert est.evaluate(arch).metrics["epochs"] == 1
    assert est.evaluate(arch, Budget(epochs=2)).metrics["epochs"] == 2
    est.evaluate(arch, Budget(steps=3))
    est.evaluate(arch, Budget(fraction=0.5))
    assert seen == [(256, 1, None), (256, 2, None), (256, 1, 3), (128, 1, None)]


def test_continuing_a_lower_rung_trains_the_network_a_fresh_run_would(nb201, tmp_path) -> None:
    arch = nb201.sample(np.random.default_rng(1))
    fresh = estimator(nb201, horizon=3)
    straight = fresh.evaluate(arch, Budget(epochs=2.5))
    rungs = estimator(nb201, horizon=3, continue_dir=str(tmp_path / "rungs"))
    low = rungs.evaluate(arch, Budget(epochs=1.5))  # stops within an epoch
    high = rungs.evaluate(arch, Budget(epochs=2.5))  # continues the 1.5-epoch network
    assert high.metrics["continued_from_epochs"] == 1.5 and "continued_from_epochs" not in low.metrics
    assert high.objective == straight.objective
    for a, b in zip(rungs.last_model.state_dict().values(),
                    fresh.last_model.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(UserError, match="continue_dir needs horizon"):
        estimator(nb201, continue_dir=str(tmp_path))


def test_without_a_horizon_a_budget_is_its_own_schedule(nb201) -> None:
    arch = nb201.sample(np.random.default_rng(1))
    short, prefix = estimator(nb201), estimator(nb201, horizon=3)
    short.evaluate(arch, Budget(epochs=1))
    prefix.evaluate(arch, Budget(epochs=1))
    weights = zip(short.last_model.parameters(), prefix.last_model.parameters())
    assert not all(torch.equal(a, b) for a, b in weights)  # the schedules ended apart


def test_lm_training_honours_epochs_and_steps(tmp_path: Path) -> None:
    rng = random.Random(0)
    for split, n in (("train", 120), ("valid", 20), ("test", 20)):
        (tmp_path / f"ptb.{split}.txt").write_text("\n".join(
            " ".join(rng.choice(["a", "b", "c"]) for _ in range(6)) for _ in range(n)) + "\n")
    space = SPACES.create("enas-rnn", n_nodes=3)
    est = LMTrainingEstimator(space, str(tmp_path), hidden=8, batch_size=4, bptt=8,
                              device="cpu", epochs=1)
    arch = space.sample(np.random.default_rng(0))
    assert est.evaluate(arch, Budget(epochs=2)).metrics["epochs"] == 2
    per_epoch = len(range(0, est.text.train.shape[0] - 1, 8))
    assert est.evaluate(arch, Budget(steps=per_epoch // 2)).metrics["epochs"] == pytest.approx(
        (per_epoch // 2) / per_epoch)


def write(path: Path, header: list[str], rows: list[list]) -> str:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return str(path)


A, B = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", \
    "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def test_tabular_maps_budgets_to_columns_with_their_costs(nb201, tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", ["arch_str", "acc200", "acc12", "t12", "t200"],
                 [[A, 90, 70, 12, 200], [B, 80, 75, 13, 210]])
    est = TabularEstimator(path, "acc200", space=nb201, budget_metrics={12: "acc12", 200: "acc200"},
                           budget_costs={12: "t12", 200: "t200"})
    arch = nb201.parse(B)
    assert est.evaluate(arch).objective == 80
    low = est.evaluate(arch, Budget(epochs=12))
    assert (low.objective, low.cost_seconds, low.metrics["epochs"]) == (75, 13, 12)
    assert est.evaluate(arch, Budget(epochs=200)).cost_seconds == 210
    missing = est.evaluate(arch, Budget(epochs=50))
    assert not missing.ok and "at 50 epochs" in missing.error and "12, 200" in missing.error


def test_tabular_reads_a_table_of_learning_curves(nb201, tmp_path: Path) -> None:
    rows = [[a, e, v + e] for a, v in ((A, 10), (B, 20)) for e in (1, 2, 3)]
    path = write(tmp_path / "curves.csv", ["arch_str", "epoch", "val_acc"], rows)
    est = TabularEstimator(path, "val_acc", fidelity_column="epoch")
    assert est.evaluate(nb201.parse(A), Budget(epochs=2)).objective == 12
    assert est.evaluate(nb201.parse(B)).objective == 23  # the default budget: the last epoch
    assert est.budgets() == [1, 2, 3] and est.best() == 23
    assert est.values() == {A: 13, B: 23}


@pytest.mark.parametrize("rows, message", [
    ([[A, "inf"]], "not a finite number"),
    ([[A, "nan"]], "not a finite number"),
    ([[A, "90"], [A, "91"]], "listed twice with different"),
    ([["normal:identity~0", "90"]], "not an architecture of space 'nb201'"),
])
def test_tabular_refuses_tables_it_cannot_trust(nb201, tmp_path: Path, rows, message) -> None:
    path = write(tmp_path / "bad.csv", ["arch_str", "acc"], rows)
    with pytest.raises(UserError, match=message):
        TabularEstimator(path, "acc", space=nb201)


def test_tabular_accepts_identical_duplicates_and_binary_files_fail_cleanly(nb201,
                                                                            tmp_path) -> None:
    path = write(tmp_path / "dup.csv", ["arch_str", "acc"], [[A, 90], [A, 90]])
    assert TabularEstimator(path, "acc", space=nb201).values() == {A: 90}
    binary = tmp_path / "table.csv"
    binary.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(UserError):
        TabularEstimator(binary, "acc")


def test_tabular_reads_the_cost_column_and_costs_nothing_without_one(nb201,
                                                                     tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", ["arch_str", "acc", "seconds"], [[A, 90, 17.5], [B, 80, 3]])
    assert TabularEstimator(path, "acc", cost_column="seconds").evaluate(
        nb201.parse(A)).cost_seconds == 17.5
    assert TabularEstimator(path, "acc").evaluate(nb201.parse(A)).cost_seconds == 0.0


def test_a_missing_budget_names_the_architecture(nb201, tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", ["arch_str", "acc200", "acc12"], [[A, 90, 70]])
    est = TabularEstimator(path, "acc200", budget_metrics={12: "acc12", 200: "acc200"})
    missing = est.evaluate(nb201.parse(A), Budget(epochs=50))
    assert missing.error.startswith(f"no entry for {A} at 50 epochs")
    absent = est.evaluate(nb201.parse(B), Budget(epochs=12))
    assert absent.error == f"{B} is not in the benchmark table"


def test_the_ground_truth_is_the_default_budget_whatever_the_row_order(nb201,
                                                                       tmp_path: Path) -> None:
    # the last epoch listed first: values() must pick the default budget, not the last row
    rows = [[a, e, v + e] for a, v in ((A, 10), (B, 20)) for e in (3, 1, 2)]
    est = TabularEstimator(write(tmp_path / "c.csv", ["arch_str", "epoch", "acc"], rows), "acc",
                           fidelity_column="epoch")
    assert est.values() == {A: 13, B: 23}


def test_the_checksum_follows_the_content(tmp_path: Path) -> None:
    from archsearch.estimators.tabular import table_checksum

    first = write(tmp_path / "a.csv", ["arch_str", "acc"], [[A, 90]])
    same = write(tmp_path / "b.csv", ["arch_str", "acc"], [[A, 90]])
    other = write(tmp_path / "c.csv", ["arch_str", "acc"], [[A, 91]])
    assert table_checksum(first) == table_checksum(same) != table_checksum(other)
    assert TabularEstimator(first, "acc").checksum == table_checksum(first)
