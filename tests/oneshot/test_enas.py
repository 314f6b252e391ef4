"""A tiny ENAS run on synthetic data: completes, checkpoints, resumes identically."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.errors import UserError
from archsearch.estimators.base import Estimator
from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.oneshot.enas import ENAS, ENASConfig, enas_controller
from archsearch.registry import SPACES
from archsearch.types import Result


@pytest.fixture
def images(tmp_path: Path) -> str:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 96)
    x = rng.integers(0, 60, (96, 8, 8, 3)).astype(np.uint8)
    x[np.arange(96), :, :, y] += 150  # the label is the brightest channel: learnable
    path = tmp_path / "tiny.npz"
    np.savez(path, x=x, y=y)
    return str(path)


def make(data: str, space_name: str = "enas-micro", epochs: int = 3, device: str = "cpu",
         **loop) -> ENAS:
    options = {"enas-micro": {"n_nodes": 3}, "enas-macro": {"n_layers": 4}}.get(space_name, {})
    space = SPACES.create(space_name, **options)
    supernet = {"channels": 4} | ({"cells_per_stage": 1} if space_name != "enas-macro" else {})
    estimator = SharedWeightsEstimator(space, data=data, supernet=supernet, batch_size=16,
                                       epochs=epochs, device=device, test_fraction=0.0)
    controller = enas_controller(space, seed=1, aggregate=2, hidden=16)
    return ENAS(estimator, controller, ENASConfig(epochs=epochs, controller_steps=2,
                                                  aggregate=2, derive_samples=4, **loop))


@pytest.mark.parametrize("space_name", ["enas-micro", "enas-macro", "nb201"])
def test_tiny_enas_completes(images: str, space_name: str) -> None:
    enas = make(images, space_name, epochs=2)
    history = enas.run()
    assert [r["epoch"] for r in history] == [1, 2]
    for record in history:
        assert 0 <= record["shared_acc"] <= 1 and 0 <= record["derived_score"] <= 1
        assert record["entropy"] > 0
        # a mean cross-entropy over the same logits as shared_acc: each misclassified sample
        # puts at most 1/2 on its label, so costs at least log 2
        assert record["shared_loss"] >= (1 - record["shared_acc"]) * math.log(2) > 0
    assert enas.space.parse(history[-1]["derived"]) == enas.derived


@pytest.mark.parametrize("loop", [{}, {"derive_window": 3}])
def test_checkpoint_and_resume_continue_identically(images: str, tmp_path: Path,
                                                    loop: dict) -> None:
    whole = make(images, epochs=4, **loop)
    whole.run()
    first = make(images, epochs=4, **loop)
    first.run_epoch()
    first.run_epoch()  # inside the window, when there is one
    first.save(tmp_path / "enas.pt")
    resumed = make(images, epochs=4, **loop)
    resumed.load(tmp_path / "enas.pt")
    resumed.run(checkpoint=tmp_path / "enas.pt")
    def untimed(history):
        return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in history]

    assert untimed(resumed.history) == untimed(whole.history)
    for a, b in zip(resumed.estimator.model.state_dict().values(),
                    whole.estimator.model.state_dict().values()):
        assert torch.equal(a, b)
    assert not (tmp_path / "enas.pt.tmp").exists()


def test_derive_window_keeps_one_pool_and_picks_the_best_mean_score(images: str,
                                                                     monkeypatch) -> None:
    enas = make(images, epochs=4, derive_window=2)
    enas.run_epoch()
    enas.run_epoch()
    assert enas.pool == []  # before the window: the paper's derive
    seen: list[list[float]] = []
    score = enas.estimator.score

    def recorded(archs, batches=1, shared=True):
        out = score(archs, batches, shared)
        if shared:  # the derive step's scores (the controller's rewards are per arch)
            seen.append(out.tolist())
        return out

    monkeypatch.setattr(enas.estimator, "score", recorded)
    enas.run_epoch()
    pool = list(enas.pool)
    assert len(pool) == 4
    enas.run_epoch()
    assert enas.pool == pool  # the same candidates, scored again with the new weights
    means = [(a + b) / 2 for a, b in zip(*seen)]
    best = max(range(4), key=lambda i: means[i])
    assert enas.history[-1]["derived"] == pool[best]
    assert enas.history[-1]["derived_score"] == pytest.approx(means[best])


def test_neg_loss_reward_is_minus_the_validation_cross_entropy(images: str) -> None:
    space = SPACES.create("nb201")
    estimator = SharedWeightsEstimator(space, data=images, supernet={"channels": 4,
                                       "cells_per_stage": 1}, batch_size=16, device="cpu",
                                       test_fraction=0.0, reward="neg_loss", val_batch_size=12)
    arch = space.sample(np.random.default_rng(0))
    x, y = estimator.val_batch()
    assert len(y) == 12  # the reward batch has its own size
    estimator.model.eval()
    with torch.no_grad():
        expected = -torch.nn.functional.cross_entropy(estimator.model(x, arch), y)
    assert torch.allclose(estimator.reward_on(arch, x, y), expected)
    assert estimator.evaluate(arch).metrics.keys() == {"val_neg_loss", "bn_affine", "bn_track"}
    with pytest.raises(UserError, match="valid reward names: accuracy, neg_loss"):
        SharedWeightsEstimator(space, data=images, reward="loss", device="cpu")


def test_uniform_shared_sampling_still_trains_the_controller(images: str) -> None:
    for sampling, policy_draws in (("controller", 4), ("uniform", 2)):
        enas = make(images, epochs=2, shared_sampling=sampling)
        before = [p.clone() for p in enas.controller.controller.parameters()]
        calls = []  # batched policy draws: the derive step each epoch, and the shared archs
        sampled = enas.controller.sample_architectures
        enas.controller.sample_architectures = lambda n, f=sampled: calls.append(n) or f(n)
        enas.run()
        assert len(calls) == policy_draws
        after = list(enas.controller.controller.parameters())
        assert any(not torch.equal(a, b) for a, b in zip(before, after))  # REINFORCE learned
    with pytest.raises(UserError, match="shared_sampling must be"):
        ENASConfig(shared_sampling="policy")


def test_isomorphism_class_sampling_trains_nb201_on_distinct_cells(images: str) -> None:
    enas = make(images, "nb201", epochs=1, shared_sampling="uniform-iso")
    sampler = enas.iso_sampler
    assert sampler is not None and len(sampler) == 6466
    drawn, trained = [], []
    sample, train_step = sampler.sample, enas.estimator.train_step
    sampler.sample = lambda rng: drawn.append(sample(rng)) or drawn[-1]  # type: ignore
    enas.estimator.train_step = lambda arch: trained.append(arch) or train_step(arch)
    enas.run()
    assert trained == drawn and len(trained) == enas.estimator.steps_per_epoch
    with pytest.raises(UserError, match="too many to sample by isomorphism class"):
        make(images, "enas-micro", shared_sampling="uniform-iso")


class ConvCount(Estimator):
    """A stand-in prior: how many of an NB201 cell's edges carry a 3x3 convolution (failing
    on cells whose first edge is a 1x1 convolution, as a proxy may fail)."""

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, arch, budget=None) -> Result:
        self.calls += 1
        if arch.ops[0] == "nor_conv_1x1":
            return Result.failed("non-finite score")
        return Result(float(arch.ops.count("nor_conv_3x3")))


def test_prior_warm_up_moves_the_policy_to_the_priors_favourites(images: str,
                                                                 tmp_path: Path) -> None:
    def mean_convs(enas: ENAS) -> float:
        return float(np.mean([a.ops.count("nor_conv_3x3")
                              for a in enas.controller.sample_architectures(400)]))

    def warmed(epochs: int) -> ENAS:
        space = SPACES.create("nb201")
        estimator = SharedWeightsEstimator(space, data=images, supernet={
            "channels": 4, "cells_per_stage": 1}, batch_size=16, epochs=epochs, device="cpu",
            test_fraction=0.0)
        controller = enas_controller(space, seed=1, aggregate=10, hidden=16, lr=0.05)
        config = ENASConfig(epochs=epochs, controller_steps=0, aggregate=10, derive_samples=4,
                            prior_samples=300)
        return ENAS(estimator, controller, config, ConvCount())

    enas = warmed(epochs=2)
    before = mean_convs(enas)  # 6 edges x 1/5: ~1.2
    enas.run_epoch()
    assert enas.prior.calls == 300 + 64  # the warm-up samples and the reference
    assert mean_convs(enas) > before + 1.0
    assert enas.history[0]["prior_last"] > enas.history[0]["prior_first"]
    assert enas.controller.baseline is None  # the supernet's first reward starts a new one
    enas.save(tmp_path / "enas.pt")
    resumed = warmed(epochs=2)
    resumed.load(tmp_path / "enas.pt")
    resumed.run()  # the warm-up happens once, before the first epoch, not again on resume
    assert resumed.prior.calls == 0 and len(resumed.history) == 2
    with pytest.raises(UserError, match="prior_samples must be"):
        ENASConfig(prior_samples=-1)
    broken = warmed(epochs=1)
    broken.prior.evaluate = lambda arch, budget=None: Result.failed("nan")
    with pytest.raises(UserError, match="failed on every reference"):
        broken.run_epoch()
