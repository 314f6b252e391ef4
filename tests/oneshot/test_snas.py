"""SNAS: one training minibatch per step moves both the weights and alpha (alpha by the gradient
of that batch's loss through the soft sample, no validation batch); the temperature falls
linearly from 1 to 0.03; the resource penalty lowers costly ops; a seeded search repeats and
resumes exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archsearch import methods
from archsearch.errors import UserError
from archsearch.nn.mixed import Relaxed
from archsearch.oneshot.gumbel import soft_sample
from archsearch.oneshot.snas import ESTIMATOR_DEFAULTS, SNAS, SNASConfig
from archsearch.spaces.darts import PRIMITIVES
from archsearch.spaces.nb201 import OPS
from tests.oneshot.test_darts import estimator
from tests.oneshot.test_gdas import assert_seeded_and_resumable, recorded_taus


def make(images: str, space_name: str = "nb201", epochs: int = 2, seed: int = 1,
         batch_size: int = 48, **config) -> SNAS:
    """SNAS with the official weight settings (a validation split only for scoring)."""
    weights = {k: v for k, v in ESTIMATOR_DEFAULTS.items() if k != "batch_size"}
    return SNAS(estimator(images, space_name, epochs, batch_size, **weights, val_fraction=0.5),
                SNASConfig(epochs=epochs, **config), seed=seed)


def test_config_and_registry_hold_the_official_settings(images: str) -> None:
    config = SNASConfig()
    assert (config.epochs, config.tau_max, config.tau_min, config.alpha_optimizer,
            config.alpha_lr, config.alpha_grad_clip, config.resource_lambda) == (
        150, 1.0, 0.03, "sgd", 3e-4, 10.0, 0.0)
    method = methods.get("snas")
    assert method.kind == "loop" and method.config is SNASConfig and method.requires == ("derive",)
    assert method.preset("darts")["estimator"] == {
        "batch_size": 64, "lr": 0.025, "lr_min": 0.001, "momentum": 0.9, "nesterov": False,
        "weight_decay": 3e-4, "grad_clip": 5.0, "lr_schedule": "epoch"}
    assert type(make(images).optimizer) is torch.optim.SGD
    adam = make(images, alpha_optimizer="adam").optimizer
    assert type(adam) is torch.optim.Adam and adam.defaults["weight_decay"] == 1e-3
    with pytest.raises(UserError, match="alpha_optimizer must be one of sgd, adam"):
        SNASConfig.from_options({"alpha_optimizer": "rmsprop"})
    with pytest.raises(UserError, match="alpha_grad_clip must be positive"):
        SNASConfig(alpha_grad_clip=0.0)


def test_a_step_moves_alpha_by_its_training_batchs_gradient_and_uses_no_validation_batch(
        images: str) -> None:
    snas = make(images, batch_size=24, alpha_lr=1.0)  # SGD, lr 1: the step is minus the grad
    est = snas.estimator
    splits, batches = [], []
    batch = est.batch

    def record(split: str = "train"):
        splits.append(split)
        batches.append(batch(split))
        return batches[-1]

    est.batch = record
    # what the step will see: alpha, the weights, the noise
    alpha = snas.alphas[0].detach().clone().requires_grad_()
    weights = {n: p.detach().clone() for n, p in est.model.named_parameters()}
    noise = torch.Generator()
    noise.set_state(snas.generator.get_state())
    snas.step()
    assert splits == ["train"]
    z = soft_sample(alpha, snas.tau, noise)  # the same sample, with a graph to the copy
    loss = est.loss(Relaxed(tuple(z)), batches[0], weights)
    (grad,) = torch.autograd.grad(loss, alpha)
    grad = grad * min(1.0, 10.0 / float(grad.norm()))  # the code's clipping at 10
    assert grad.abs().max() > 1e-4
    torch.testing.assert_close(alpha.detach() - snas.alphas[0].detach(), grad,
                               rtol=1e-4, atol=1e-6)
    assert not all(torch.equal(w, p) for w, p in zip(weights.values(),
                                                     est.model.parameters()))
    splits.clear()
    snas.train_epoch()
    assert splits == ["train"] * est.steps_per_epoch
    # a gradient above 10 (a heavy resource penalty) is clipped to norm 10
    heavy = make(images, batch_size=24, alpha_lr=1.0, resource_lambda=1e6)
    before = heavy.alphas[0].detach().clone()
    heavy.step()
    assert float((before - heavy.alphas[0].detach()).norm()) == pytest.approx(10.0, rel=1e-4)


def test_tau_falls_linearly_from_1_to_0_03(images: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    snas = make(images, epochs=3)
    taus = recorded_taus(monkeypatch, "archsearch.oneshot.snas.soft_sample", snas)
    assert taus == [[1.0], [pytest.approx(0.515)], [0.03]]
    assert [r["tau"] for r in snas.history] == [t for (t,) in taus]


def test_the_resource_penalty_lowers_the_weights_of_costly_ops(images: str) -> None:
    free = make(images, epochs=1, batch_size=24, alpha_lr=0.01)
    costs = torch.tensor(free.estimator.model.option_params_m())  # (6 edges, 5 ops)
    conv1, conv3 = OPS.index("nor_conv_1x1"), OPS.index("nor_conv_3x3")
    assert (costs[:, conv1] > 0).all() and torch.allclose(costs[:, conv3], 9 * costs[:, conv1])
    assert (costs[:, [OPS.index(o) for o in ("none", "skip_connect", "avg_pool_3x3")]] == 0).all()
    darts = torch.tensor(estimator(images, "darts").model.option_params_m())  # (28, 8)
    sep3, sep5 = PRIMITIVES.index("sep_conv_3x3"), PRIMITIVES.index("sep_conv_5x5")
    assert darts.shape == (28, 8) and (darts[:, sep5] > darts[:, sep3]).all()
    assert (darts[:, [PRIMITIVES.index(o) for o in ("none", "max_pool_3x3")]] == 0).all()
    penalised = make(images, epochs=1, batch_size=24, alpha_lr=0.01, resource_lambda=1000.0)
    free.run()
    penalised.run()
    w_free = torch.softmax(free.alphas[0].detach(), -1)
    w_pen = torch.softmax(penalised.alphas[0].detach(), -1)
    assert (w_pen[:, conv3] < w_free[:, conv3]).all()  # the costliest op, on every edge
    cheap = [OPS.index(o) for o in ("none", "skip_connect", "avg_pool_3x3")]
    assert (w_pen[:, cheap] > w_free[:, cheap]).all()
    assert float((w_pen * costs).sum()) < float((w_free * costs).sum())


def test_a_seeded_search_repeats_and_resumes_exactly(images: str, tmp_path: Path) -> None:
    assert_seeded_and_resumable(
        lambda seed: make(images, seed=seed, resource_lambda=10.0), tmp_path)
    record = make(images, "darts", epochs=1).run()[-1]  # the darts supernet runs too
    assert {"tau", "alpha_entropy", "alpha_entropy_reduce", "skip_connects"} <= set(record)
