"""``archsearch bench --protocol``: under ``validation`` each query observes one training seed's
validation value and the curve reports the test value of the architecture observed best; the
output names the protocol; a bad protocol, a missing per-seed table or one that does not match
the benchmark is refused in one line before any work."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from archsearch.experiment import Experiment
from archsearch.experiment.trial import build_space
from archsearch.registry import STRATEGIES, Spec
from tests.cli.test_reliability import bench, cli, refused, toy_csv
from tests.conftest import shared_file

LURE = "toy:0-0-0-1"  # test acc 1, but every seed observes 50: the best observed, not the best


def seed_csv(path: Path, skip: str | None = None) -> Path:
    """Per-seed values over the toy space: the test value (the choices' sum) + 1.5 x the slot,
    so that a seed's luck can lift a worse cell above a better one; the lure always 50."""
    lines = ["arch_str,seed_slot,val_acc_200ep"]
    for i, choices in enumerate(itertools.product(range(4), repeat=4)):
        arch = f"toy:{'-'.join(map(str, choices))}"
        if arch == skip:
            continue
        for slot in range(3 if i % 2 else 2):
            lines.append(f"{arch},{slot},{50.0 if arch == LURE else sum(choices) + 1.5 * slot}")
    path.write_text("\n".join(lines) + "\n")
    return path


def by_hand(seeds: Path, seed: int, queries: int) -> list[float]:
    """The reported curve computed from the trials themselves: after each query, the test
    value (the sum of the choices) of the first cell with the best observed value so far."""
    space = build_space(Spec("toy"))
    strategy = STRATEGIES.create("random", space=space, seed=seed)
    observed = Spec("tabular-seeds", {"benchmark": str(seeds), "seed": seed})
    records = Experiment(Spec("toy"), observed, strategy).run(n_trials=queries)
    curve, best = [], None
    for record in records:
        if best is None or record.objective > best.objective:
            best = record
        curve.append(float(sum(map(int, best.arch[4:].split("-")))))
    return curve


def forbid_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("work started before the protocol was checked")

    monkeypatch.setattr("archsearch.cli.bench.run_benchmark", forbidden)


def test_validation_reports_the_test_value_of_the_best_observed_cell(tmp_path: Path,
                                                                     capsys) -> None:
    table, seeds = toy_csv(tmp_path / "table.csv"), seed_csv(tmp_path / "seeds.csv")
    out = tmp_path / "b.json"
    common = ["--strategies", "random", "--seeds", 1, "--queries", 256, "--json", out]
    code, _, err = cli(capsys, *bench(table, *common, "--protocol", "validation",
                                      "--valid-seeds", seeds))
    assert code == 0, err
    random = json.loads(out.read_text())["results"]["random"]
    assert random["mean"] == by_hand(seeds, 0, 256)  # at every query count
    # all 256 cells seen: the lure is observed best (50) and reported at its test value, 1,
    # though the best test value is 12; observed and reported differ
    assert random["observed_mean"][-1] == 50.0 and random["mean"][-1] == 1.0
    code, _, err = cli(capsys, *bench(table, *common))
    assert code == 0, err
    oracle = json.loads(out.read_text())["results"]["random"]
    assert oracle["mean"][-1] == 12.0 and "observed_mean" not in oracle


def test_the_output_names_the_protocol(tmp_path: Path, capsys) -> None:
    table, seeds = toy_csv(tmp_path / "table.csv"), seed_csv(tmp_path / "seeds.csv")
    out, plot = tmp_path / "b.json", tmp_path / "b.png"
    code, printed, err = cli(capsys, *bench(table, "--protocol", "validation", "--valid-seeds",
                                            seeds, "--json", out, "--plot", plot))
    assert code == 0, err
    header = printed.splitlines()[0]
    assert header.startswith("acc of the best-observed architecture")
    assert header.endswith("validation-reward protocol")
    assert "protocol: validation-reward: each query observes one training seed's" in printed
    report = json.loads(out.read_text())
    assert report["protocol"].startswith("validation-reward:")
    assert report["observed"] == {"benchmark": str(seeds), "metric": "val_acc_200ep"}
    assert plot.stat().st_size > 1000
    code, printed, err = cli(capsys, *bench(table, "--json", out))
    assert code == 0, err
    assert printed.splitlines()[0].startswith("best acc so far")
    assert "protocol: oracle-reward:" in printed
    assert json.loads(out.read_text())["protocol"].startswith("oracle-reward:")


def test_a_bad_protocol_is_refused_in_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    forbid_work(monkeypatch)
    refused(capsys, bench(toy_csv(tmp_path / "table.csv"), "--protocol", "nope"),
            "--protocol is 'nope'; give oracle", "or validation")


def test_a_missing_per_seed_table_is_refused_naming_it(tmp_path: Path, capsys,
                                                       monkeypatch) -> None:
    forbid_work(monkeypatch)
    table = toy_csv(tmp_path / "table.csv")
    missing = tmp_path / "no_seeds.csv"
    refused(capsys, bench(table, "--protocol", "validation", "--valid-seeds", missing),
            f"{str(missing)!r}, which does not exist", "give --valid-seeds CSV")
    beside = tmp_path / "nb201_cifar10_valid_seeds.csv"  # the default: beside --benchmark
    refused(capsys, bench(table, "--protocol", "validation"),
            f"{str(beside)!r}, which does not exist", "give --valid-seeds CSV")


def test_a_per_seed_table_that_does_not_fit_is_refused(tmp_path: Path, capsys,
                                                       monkeypatch) -> None:
    forbid_work(monkeypatch)
    seeds = seed_csv(tmp_path / "seeds.csv")
    table = toy_csv(tmp_path / "table.csv")
    short = tmp_path / "short.csv"
    short.write_text("\n".join(line for line in table.read_text().splitlines()
                               if not line.startswith("toy:3-3-3-3")) + "\n")
    refused(capsys, bench(short, "--protocol", "validation", "--valid-seeds", seeds),
            "1 architectures (the first 'toy:3-3-3-3') have no acc in")
    refused(capsys, bench(table, "--valid-seeds", seeds), "--valid-seeds is for --protocol "
            "validation")
    refused(capsys, bench(table, "--protocol", "validation", "--valid-seeds", table),
            "no column 'seed_slot'")


@pytest.mark.data
def test_validation_on_the_real_nb201_tables(tmp_path: Path, capsys) -> None:
    import csv

    test_csv = shared_file("nb201_cifar10.csv")
    seeds_csv = shared_file("nb201_cifar10_valid_seeds.csv")
    with open(test_csv) as f:
        test = {r["arch_str"]: float(r["cifar10_test_acc_200ep"]) for r in csv.DictReader(f)}
    slots: dict[str, list[float]] = {}
    with open(seeds_csv) as f:
        for r in csv.DictReader(f):
            slots.setdefault(r["arch_str"], []).append(float(r["val_acc_200ep"]))
    counts = [len(v) for v in slots.values()]
    assert len(slots) == 15625 and counts.count(3) == 8169 and counts.count(2) == 7456
    out = tmp_path / "b.json"
    code, _, err = cli(capsys, "bench", "--benchmark", test_csv, "--metric",
                       "cifar10_test_acc_200ep", "--protocol", "validation", "--strategies",
                       "random,evolution", "--seeds", 1, "--queries", 30, "--workers", 1,
                       "--no-progress", "--json", out)
    assert code == 0, err
    report = json.loads(out.read_text())
    assert report["observed"]["benchmark"] == str(seeds_csv)  # found beside the test table
    tests = {round(v, 6) for v in test.values()}  # as the report rounds them
    values = {round(v, 6) for vs in slots.values() for v in vs}
    for res in report["results"].values():  # one seed: the curves are single runs' values
        assert set(res["mean"]) <= tests and set(res["observed_mean"]) <= values
        assert res["mean"] != res["observed_mean"]
