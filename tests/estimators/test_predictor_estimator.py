"""The predictor estimator: a model fitted on a table's sample answers for every architecture."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from archsearch.errors import UserError
from archsearch.registry import ESTIMATORS, STRATEGIES
from archsearch.testing import ToySpace
from archsearch.testing.conformance import drive
from archsearch.testing.toy import ToyEstimator

pytestmark = pytest.mark.usefixtures("one_thread")
SPACE = ToySpace(4, 4)  # 256 architectures


@pytest.fixture
def toy_table(tmp_path: Path) -> Path:
    truth = ToyEstimator(SPACE)
    rows = ["arch_str,score"]
    for choices in itertools.product(range(4), repeat=4):
        arch = SPACE.decode(choices)
        rows.append(f"{arch.to_str()},{truth.evaluate(arch).objective}")
    path = tmp_path / "toy.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def build(table: Path, **options):
    options = {"metric": "score", "train_count": 60, **options}
    return ESTIMATORS.create("predictor", space=SPACE, train_table=str(table), **options)


def test_results_are_the_models_predictions_and_track_the_truth(toy_table: Path) -> None:
    estimator = build(toy_table)
    truth = ToyEstimator(SPACE)
    archs = [SPACE.decode(c) for c in itertools.product(range(4), repeat=4)]
    results = [estimator.evaluate(a) for a in archs]
    mean, std = estimator.model.predict(archs)
    # one at a time or all at once: the same up to float32 rounding
    np.testing.assert_allclose([r.objective for r in results], mean, rtol=1e-5)
    np.testing.assert_allclose([r.metrics["predicted_score_std"] for r in results], std,
                               rtol=1e-4, atol=1e-6)
    assert all(r.metrics["predicted_score"] == r.objective for r in results)
    assert spearmanr(mean, [truth.evaluate(a).objective for a in archs])[0] > 0.9
    assert len(set(estimator.train)) == 60


def test_the_same_seed_fits_the_same_model_and_a_strategy_searches_on_it(
        toy_table: Path) -> None:
    a, b, c = build(toy_table, seed=1), build(toy_table, seed=1), build(toy_table, seed=2)
    arch = SPACE.decode((1, 2, 3, 0))
    assert a.train == b.train != c.train
    assert a.evaluate(arch) == b.evaluate(arch) != c.evaluate(arch)
    proposals = drive(STRATEGIES.create("evolution", space=SPACE, seed=0), a, 40)
    best = max(proposals, key=lambda p: a.evaluate(SPACE.parse(p)).objective)
    assert ToyEstimator(SPACE).evaluate(SPACE.parse(best)).objective >= 3.5  # optimum 4


def test_bad_options_are_refused(toy_table: Path) -> None:
    with pytest.raises(UserError, match=r"train_count must be in 1\.\.256"):
        build(toy_table, train_count=257)
    with pytest.raises(UserError, match="no column 'acc'"):
        build(toy_table, metric="acc")
    with pytest.raises(UserError, match="unknown predictor 'nope'"):
        build(toy_table, predictor="nope")
