"""The per-seed tabular estimator (``tabular-seeds``): a query observes one of the cell's
training seeds, the slot drawn from (seed, query) alone. So the same seed observes the same,
an interrupted run resumed observes what an uninterrupted one does, every observation is one of
the cell's own seeds, and querying a cell again may observe another of them."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from archsearch.errors import UserError
from archsearch.experiment import Experiment, SQLiteStorage
from archsearch.experiment.trial import build_space
from archsearch.registry import ESTIMATORS, STRATEGIES, Spec
from archsearch.testing.toy import ToySpace
from archsearch.types import TrialState

SPACE = ToySpace()
THREE = SPACE.parse("toy:1-2-3-0")  # seeds 81, 82, 83
TWO = SPACE.parse("toy:0-0-0-1")  # seeds 70, 71


def seed_csv(path: Path) -> Path:
    """Every toy cell with 2 or 3 seeds (value = 10 x the choices' sum + the slot), but the
    two cells above, whose seeds are the values in their comments."""
    lines = ["arch_index,arch_str,seed_slot,val_acc_200ep"]
    for i, choices in enumerate(itertools.product(range(4), repeat=4)):
        arch = f"toy:{'-'.join(map(str, choices))}"
        values = [10.0 * sum(choices) + s for s in range(3 if i % 2 else 2)]
        values = {THREE.to_str(): [81.0, 82.0, 83.0], TWO.to_str(): [70.0, 71.0]}.get(arch, values)
        lines += [f"{i},{arch},{slot},{v}" for slot, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")
    return path


def estimator(path: Path, seed: int):
    return ESTIMATORS.create("tabular-seeds", space=SPACE, benchmark=str(path), seed=seed)


def test_the_same_seed_observes_the_same_and_another_seed_does_not(tmp_path: Path) -> None:
    path = seed_csv(tmp_path / "seeds.csv")
    first, again, other = estimator(path, 3), estimator(path, 3), estimator(path, 4)
    queries = [(q, THREE if q % 2 else TWO) for q in range(60)]
    seen = [first.evaluate_query(q, a).objective for q, a in queries]
    assert seen == [again.evaluate_query(q, a).objective for q, a in queries]
    assert seen != [other.evaluate_query(q, a).objective for q, a in queries]


def test_observations_are_the_cells_own_seeds_and_vary_across_queries(tmp_path: Path) -> None:
    est = estimator(seed_csv(tmp_path / "seeds.csv"), 0)
    for arch, slots in [(THREE, [81.0, 82.0, 83.0]), (TWO, [70.0, 71.0])]:
        results = [est.evaluate_query(q, arch) for q in range(40)]
        assert {r.objective for r in results} == set(slots)  # each seed, and nothing else
        assert all(r.objective == slots[int(r.metrics["seed_slot"])] for r in results)
        assert all(r.metrics["val_acc_200ep"] == r.objective for r in results)
    # outside an experiment each call is the next query: the same cell again varies too
    assert len({est.evaluate(THREE).objective for _ in range(20)}) == 3


def test_a_resumed_run_observes_what_an_uninterrupted_one_does(tmp_path: Path) -> None:
    path = seed_csv(tmp_path / "seeds.csv")
    spec, space = Spec("toy"), build_space(Spec("toy"))
    observed = Spec("tabular-seeds", {"benchmark": str(path), "seed": 5})

    def run(db: Path, *stops: int) -> list[tuple[str, float | None]]:
        for n in stops:  # a new Experiment per stop: the strategy comes back from the store
            strategy = STRATEGIES.create("evolution", space=space, seed=1, population_size=5,
                                         sample_size=2)
            experiment = Experiment(spec, observed, strategy, SQLiteStorage(db))
            records = experiment.run(n_trials=n)
            experiment.close()
        return [(r.arch, r.objective) for r in records]

    whole = run(tmp_path / "whole.db", 40)
    assert run(tmp_path / "parts.db", 15, 40) == whole
    reference = estimator(path, 5)  # trial n observed as query n
    assert [o for _, o in whole] == [reference.evaluate_query(n, SPACE.parse(a)).objective
                                     for n, (a, _) in enumerate(whole)]


def test_a_cell_missing_from_the_table_fails_its_trial(tmp_path: Path) -> None:
    path = tmp_path / "seeds.csv"
    path.write_text(f"arch_str,seed_slot,val_acc_200ep\n{THREE},0,81\n")
    result = estimator(path, 0).evaluate_query(0, TWO)
    assert result.state is TrialState.FAILED and "not in the per-seed table" in result.error


@pytest.mark.parametrize("rows, message", [
    ("toy:1-2-3-0,0,81\ntoy:1-2-3-0,0,82\n", "listed twice with seed_slot 0"),
    ("toy:1-2-3-0,0,nan\n", "val_acc_200ep is nan, not a finite number"),
    ("toy:1-2-3-0,0.5,81\n", "not a seed position"),
    ("nb201:x,0,81\n", "is not an architecture of space 'toy'"),
    ("", "the table has no rows"),
])
def test_a_bad_table_is_refused(rows: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "seeds.csv"
    path.write_text("arch_str,seed_slot,val_acc_200ep\n" + rows)
    with pytest.raises(UserError, match=message):
        estimator(path, 0)


def test_a_missing_table_and_a_negative_seed_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=re.escape("per-seed table '/no/seeds.csv' does not exist")):
        estimator(Path("/no/seeds.csv"), 0)
    with pytest.raises(UserError, match="seed must be an integer of at least 0"):
        estimator(seed_csv(tmp_path / "seeds.csv"), -1)
