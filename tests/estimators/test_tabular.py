"""TabularEstimator reads the metric it is named, wherever that column sits: whatever the column
order, with other numeric columns beside it (before and after) and with an architecture column
of another name (``arch_column``); ``best()`` is the maximum of that same column. On the shared
NB201 table (an ``arch_index`` column comes first) it returns the table's own values."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest

from archsearch.errors import UserError
from archsearch.estimators.tabular import TabularEstimator
from archsearch.registry import ESTIMATORS
from archsearch.spaces.nb201 import NB201Space
from tests.conftest import shared_file

SPACE = NB201Space()


def sample_cells(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    cells: dict[str, None] = {}
    while len(cells) < n:
        cells[SPACE.sample(rng).to_str()] = None
    return list(cells)


def numeric_columns(n_rows: int, seed: int) -> dict[str, list[float]]:
    """Four numeric columns, each on its own scale so that no two columns share a value."""
    rng = np.random.default_rng(seed)
    return {
        "index": [float(i) for i in range(n_rows)],
        "val_acc": rng.uniform(10.0, 60.0, n_rows).round(4).tolist(),
        "test_acc": rng.uniform(70.0, 95.0, n_rows).round(4).tolist(),
        "params_m": rng.uniform(0.07, 1.5, n_rows).round(6).tolist(),
    }


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_table(path: Path, order: list[str], cells: list[str], values: dict[str, list[float]],
                arch_column: str) -> Path:
    columns = {arch_column: cells, **values}
    rows = [[columns[name][i] for name in order] for i in range(len(cells))]
    return write_csv(path, order, rows)


ORDERS = [list(p) for p in itertools.permutations(["cell", "index", "val_acc", "test_acc"])][::5]


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
@pytest.mark.parametrize("metric", ["val_acc", "test_acc", "index"])
def test_the_named_metric_is_read_whatever_the_column_order(tmp_path: Path, order: list[str],
                                                            metric: str) -> None:
    cells = sample_cells(12, seed=0)
    values = numeric_columns(len(cells), seed=3)
    del values["params_m"]
    path = write_table(tmp_path / "t.csv", order, cells, values, arch_column="cell")
    est = TabularEstimator(path, metric, arch_column="cell")
    for cell, expected in zip(cells, values[metric]):
        result = est.evaluate(SPACE.parse(cell))
        assert result.ok and result.objective == expected, (cell, metric)
        assert dict(result.metrics) == {metric: expected}
    assert est.best() == max(values[metric])


def test_extra_numeric_columns_on_both_sides_are_ignored(tmp_path: Path) -> None:
    cells = sample_cells(20, seed=1)
    values = numeric_columns(len(cells), seed=2)
    order = ["index", "params_m", "arch", "val_acc", "test_acc"]
    path = write_table(tmp_path / "wide.csv", order, cells, values, arch_column="arch")
    for metric in ("params_m", "val_acc", "test_acc"):
        est = ESTIMATORS.create("tabular", space=SPACE, benchmark=path, metric=metric,
                                arch_column="arch")
        got = [est.evaluate(SPACE.parse(c)).objective for c in cells]
        assert got == values[metric], metric
        assert est.best() == max(values[metric])


def test_the_default_architecture_column_is_arch_str_and_other_names_are_refused(
        tmp_path: Path) -> None:
    cells = sample_cells(5, seed=4)
    values = numeric_columns(len(cells), seed=5)
    path = write_table(tmp_path / "t.csv", ["test_acc", "cell", "val_acc"], cells,
                       {"test_acc": values["test_acc"], "val_acc": values["val_acc"]},
                       arch_column="cell")
    with pytest.raises(UserError, match="no column 'arch_str'"):
        TabularEstimator(path, "val_acc")
    renamed = write_table(tmp_path / "u.csv", ["test_acc", "arch_str", "val_acc"], cells,
                          {"test_acc": values["test_acc"], "val_acc": values["val_acc"]},
                          arch_column="arch_str")
    est = TabularEstimator(renamed, "val_acc")
    assert [est.evaluate(SPACE.parse(c)).objective for c in cells] == values["val_acc"]


def test_a_non_numeric_value_in_the_named_column_is_a_user_error_naming_the_line(
        tmp_path: Path) -> None:
    cells = sample_cells(3, seed=6)
    path = write_csv(tmp_path / "t.csv", ["acc", "arch_str", "note"],
                     [[91.0, cells[0], 1.0], ["n/a", cells[1], 2.0], [90.0, cells[2], 3.0]])
    with pytest.raises(UserError, match=r"line 3: acc is 'n/a', not a number"):
        TabularEstimator(path, "acc")
    # the other numeric column is read fine, the bad one is never touched
    assert TabularEstimator(path, "note").evaluate(SPACE.parse(cells[1])).objective == 2.0


@pytest.mark.data
def test_the_shared_nb201_table_gives_its_own_test_accuracies() -> None:
    path = shared_file("nb201_cifar10.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    est = TabularEstimator(path, "cifar10_test_acc_200ep")
    rng = np.random.default_rng(0)
    for i in rng.choice(len(rows), 50, replace=False):
        row = rows[int(i)]
        result = est.evaluate(SPACE.parse(row["arch_str"]))
        assert result.objective == float(row["cifar10_test_acc_200ep"]), row["arch_index"]
    # the published best: 94.3733 at arch_index 6111 (see shared/data/PROVENANCE.md)
    assert est.best() == pytest.approx(94.37333, abs=1e-4)
    best = est.evaluate(SPACE.parse(rows[6111]["arch_str"]))
    assert best.objective == est.best()
