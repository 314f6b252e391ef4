"""SPOS: the supernet trains on uniformly drawn single paths (resumable exactly), and the
search phase runs regularized evolution over the trained supernet, each candidate scored with
BatchNorm statistics recalibrated for it alone."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.errors import UserError
from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.estimators.supernet_checkpoint import SupernetCheckpointEstimator
from archsearch.experiment.storage import SQLiteStorage
from archsearch.oneshot.spos import SPOS, SPOSConfig, evolution_search
from archsearch.registry import SPACES, Spec
from archsearch.types import TrialState

SUPERNET = {"channels": 4, "cells_per_stage": 1}


@pytest.fixture
def images(tmp_path: Path) -> str:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 96)
    x = rng.integers(0, 60, (96, 8, 8, 3)).astype(np.uint8)
    x[np.arange(96), :, :, y] += 150
    path = tmp_path / "tiny.npz"
    np.savez(path, x=x, y=y)
    return str(path)


def options(images: str) -> dict:
    return {"data": images, "supernet": SUPERNET, "batch_size": 16, "epochs": 3,
            "device": "cpu", "test_fraction": 0.0, "bn_track": True}


def make(images: str, **config) -> SPOS:
    space = SPACES.create("nb201")
    estimator = SharedWeightsEstimator(space, **options(images))
    return SPOS(estimator, SPOSConfig(epochs=3, derive_samples=3, calibration_batches=2,
                                      **config), seed=1)


def test_every_minibatch_trains_one_uniformly_drawn_path(images: str) -> None:
    spos = make(images)
    trained: list[str] = []
    step = spos.estimator.train_step
    spos.estimator.train_step = lambda arch: trained.append(arch.to_str()) or step(arch)
    spos.run_epoch()
    assert len(trained) == spos.estimator.steps_per_epoch
    assert len(set(trained)) == len(trained)  # distinct draws from 15,625 cells
    record = spos.history[-1]
    assert record["epoch"] == 1 and record["bn_track"] == 1.0
    assert spos.space.parse(record["derived"]) == spos.derived


def test_supernet_training_resumes_exactly(images: str, tmp_path: Path) -> None:
    whole = make(images, sampling="uniform-iso")
    start = time.perf_counter()
    whole.run()
    elapsed = time.perf_counter() - start
    assert all(0 < r["seconds"] <= elapsed for r in whole.history)  # each epoch's own time
    first = make(images, sampling="uniform-iso")
    first.run_epoch()
    first.save(tmp_path / "spos.pt")
    resumed = make(images, sampling="uniform-iso")
    resumed.load(tmp_path / "spos.pt")
    resumed.run()

    def untimed(h):
        return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in h]

    assert untimed(resumed.history) == untimed(whole.history)
    for a, b in zip(resumed.estimator.model.state_dict().values(),
                    whole.estimator.model.state_dict().values()):
        assert torch.equal(a, b)


def test_candidates_are_scored_with_their_own_recalibrated_statistics(images: str,
                                                                      tmp_path: Path) -> None:
    spos = make(images)
    spos.run(checkpoint=tmp_path / "spos.pt")
    space = spos.space
    est = SupernetCheckpointEstimator(space, str(tmp_path / "spos.pt"), calibration_batches=2,
                                      **options(images))
    for a, b in zip(est.model.parameters(), spos.estimator.model.parameters()):
        assert torch.equal(a, b)  # the trained weights
    rng = np.random.default_rng(0)
    a, b = space.sample(rng), space.sample(rng)
    first = est.evaluate(a)
    stats_a = [m.running_mean.clone() for m in est.model.modules()
               if isinstance(m, torch.nn.BatchNorm2d)]
    est.evaluate(b)
    stats_b = [m.running_mean for m in est.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert any(not torch.equal(x, y) for x, y in zip(stats_a, stats_b))  # per candidate
    assert est.evaluate(a).objective == first.objective  # deterministic
    assert first.metrics["calibration_batches"] == 2
    with pytest.raises(UserError, match="does not exist"):
        SupernetCheckpointEstimator(space, str(tmp_path / "nope.pt"), **options(images))


def test_the_search_phase_is_evolution_through_the_experiment(images: str,
                                                              tmp_path: Path) -> None:
    spos = make(images)
    spos.run(checkpoint=tmp_path / "spos.pt")
    estimator = Spec("supernet-checkpoint", {"checkpoint": str(tmp_path / "spos.pt"),
                                             "calibration_batches": 2, **options(images)})
    storage = SQLiteStorage(tmp_path / "trials.db")
    records = evolution_search(Spec("nb201"), estimator, storage, n_trials=12, seed=0,
                               population_size=6, sample_size=2)
    assert len(records) == 12 and all(r.state is TrialState.COMPLETE for r in records)
    assert len({r.arch for r in records}) == 12
    assert all(0 <= r.objective <= 1 for r in records)


def test_a_run_scores_each_candidate_on_the_whole_validation_split(images: str,
                                                                  tmp_path: Path) -> None:
    from archsearch.run import Run, RunConfig

    config = RunConfig(method="spos", space="nb201", data=images, seed=0, epochs=1,
                       baseline_random=0, device="cpu",
                       method_options={"search_trials": 4, "calibration_batches": 2,
                                       "population_size": 2, "sample_size": 2},
                       estimator_options={"supernet": SUPERNET, "batch_size": 8,
                                          "eval_batches": 1, "test_fraction": 0.0})
    run = Run.create(tmp_path / "run", config)
    try:
        run.search()
        records = run.storage.trials()
        section = {k: v for k, v in run.resolved["estimator"].items()
                   if k not in ("name", "epochs", "eval_batches")}
    finally:
        run.close()
    whole = SupernetCheckpointEstimator(SPACES.create("nb201"), str(tmp_path / "run/spos.pt"),
                                        calibration_batches=2, **section)
    assert len(whole.data.val) > 8  # one minibatch would not be the whole split
    assert len(records) == 4
    for r in records:
        arch = SPACES.create("nb201").parse(r.arch)
        assert r.objective == whole.evaluate(arch).objective
