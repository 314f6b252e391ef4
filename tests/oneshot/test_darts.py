"""DARTS: alpha steps on a validation batch before the weights step on a training batch; the
second order's unrolled step is the weights' next SGD step and its finite-difference term the
Hessian-vector product; with no unrolled step it is the first order; tiny searches on the darts
and nb201 spaces run, report the last epoch's genotype and resume exactly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from archsearch import methods
from archsearch.errors import UserError
from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.nn.mixed import Relaxed
from archsearch.oneshot.darts import DARTS, ESTIMATOR_DEFAULTS, DARTSConfig
from archsearch.oneshot.darts_architect import Architect, hessian_vector_term, unrolled_weights
from archsearch.registry import SPACES
from archsearch.train.loop import cosine_lr

SUPERNETS = {"darts": {"channels": 2, "cells": 3}, "nb201": {"channels": 4, "cells_per_stage": 1}}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> str:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 96)
    x = rng.integers(0, 60, (96, 8, 8, 3)).astype(np.uint8)
    x[np.arange(96), :, :, y] += 150  # the label is the brightest channel: learnable
    path = tmp_path_factory.mktemp("images") / "tiny.npz"
    np.savez(path, x=x, y=y)
    return str(path)


def estimator(images: str, space_name: str = "darts", epochs: int = 2,
              batch_size: int = 48, **options) -> SharedWeightsEstimator:
    """The official search's weight settings on 48 training and 48 validation images."""
    space = SPACES.create(space_name)
    return SharedWeightsEstimator(space, data=images, supernet=SUPERNETS[space_name],
                                  device="cpu", test_fraction=0.0, epochs=epochs,
                                  **{**ESTIMATOR_DEFAULTS, "batch_size": batch_size, **options})


def make(images: str, space_name: str = "darts", epochs: int = 2, seed: int = 1,
         batch_size: int = 48, **config) -> DARTS:
    return DARTS(estimator(images, space_name, epochs, batch_size),
                 DARTSConfig(epochs=epochs, **config), seed=seed)


# ---- the method ----------------------------------------------------------------------------

def test_config_and_registry_hold_the_official_settings() -> None:
    config = DARTSConfig()
    assert (config.epochs, config.order, config.alpha_lr, config.alpha_betas,
            config.alpha_weight_decay, config.alpha_init) == (50, 1, 3e-4, (0.5, 0.999), 1e-3,
                                                              1e-3)
    method = methods.get("darts")
    assert method.kind == "loop" and method.config is DARTSConfig and "darts" in methods.names()
    weights = method.preset("darts")["estimator"]
    assert weights == {"batch_size": 64, "lr": 0.025, "lr_min": 0.001, "momentum": 0.9,
                       "nesterov": False, "weight_decay": 3e-4, "grad_clip": 5.0,
                       "lr_schedule": "epoch", "val_fraction": 0.5}
    with pytest.raises(UserError, match="order must be 1 or 2"):
        DARTSConfig(order=3)
    with pytest.raises(UserError, match="alpha_betas"):
        DARTSConfig.from_options({"alpha_betas": [0.5, 1.5]})


def test_alpha_is_one_seeded_matrix_per_cell_type(images: str) -> None:
    est = estimator(images)
    darts = DARTS(est, DARTSConfig(), seed=1)
    assert [tuple(a.shape) for a in darts.alphas] == [(14, 8), (14, 8)]
    assert 5e-4 < float(torch.cat([a.detach().flatten() for a in darts.alphas]).std()) < 2e-3
    again, other = DARTS(est, DARTSConfig(), seed=1), DARTS(est, DARTSConfig(), seed=2)
    assert all(torch.equal(a, b) for a, b in zip(darts.alphas, again.alphas))
    assert not torch.equal(darts.alphas[0], other.alphas[0])
    nb201 = make(images, "nb201")
    assert [tuple(a.shape) for a in nb201.alphas] == [(6, 5)]
    with pytest.raises(UserError, match="no derive"):
        DARTS(SharedWeightsEstimator(SPACES.create("enas-macro", n_layers=2), data=images,
                                     supernet={"channels": 4}, device="cpu"), DARTSConfig())


def test_each_step_moves_alpha_on_a_validation_batch_before_the_weights(images: str) -> None:
    darts = make(images, batch_size=24)  # 2 steps an epoch
    calls: list[tuple[str, object]] = []
    alpha_step, train_step = darts.alpha_step, darts.estimator.train_step

    def record_alpha(train, val):
        calls.append(("alpha", (train, val)))
        alpha_step(train, val)

    def record_weights(path, batch):
        calls.append(("weights", (path, batch)))
        train_step(path, batch)

    darts.alpha_step, darts.estimator.train_step = record_alpha, record_weights
    before = [a.detach().clone() for a in darts.alphas]
    darts.train_epoch()
    assert [kind for kind, _ in calls] == ["alpha", "weights"] * 2
    val_x = darts.estimator.data.val.x
    for (_, (train, val)), (_, (path, batch)) in zip(calls[::2], calls[1::2]):
        assert batch is train  # the weights train on the batch alpha's unrolled step used
        assert any(torch.equal(val[0][0], v) for v in val_x)  # alpha: validation images
        assert not any(torch.equal(train[0][0], v) for v in val_x)
        assert isinstance(path, Relaxed) and not any(w.requires_grad for w in path.weights)
    assert not torch.equal(before[0], darts.alphas[0])
    # the weights' step ran on softmax(alpha) after alpha's step of the same iteration
    last_path = calls[-1][1][0]
    assert torch.equal(last_path.weights[0], F.softmax(darts.alphas[0].detach(), -1)[0])


def test_the_weights_schedule_steps_once_per_epoch_without_nesterov(images: str) -> None:
    est = estimator(images, epochs=4, batch_size=24)
    assert not est.optimizer.param_groups[0]["nesterov"]
    lrs = []
    for _ in range(4 * est.steps_per_epoch):
        lrs.append(est.current_lr())
        est.step += 1
    assert lrs == [cosine_lr(e, 4, 0.025, 0.001) for e in range(4) for _ in range(2)]
    assert lrs[0] == 0.025 and lrs[-1] > 0.001


@pytest.mark.parametrize("space_name, order", [("darts", 1), ("nb201", 2)])
def test_a_tiny_search_runs_and_resumes_exactly(images: str, tmp_path: Path, space_name: str,
                                                order: int) -> None:
    whole = make(images, space_name, epochs=2, order=order)
    history = whole.run()
    assert [r["epoch"] for r in history] == [1, 2]
    space = whole.space
    for record in history:
        assert 0 < record["alpha_entropy"] <= math.log(space.relaxed_decisions()[0].n_options)
        assert 0 <= record["derived_score"] <= 1 and 0 <= record["relaxed_score"] <= 1
        assert isinstance(record["skip_connects"], int)
        space.parse(record["derived"])
    # the answer is the last epoch's genotype, derived from the last alpha
    assert whole.derived == space.parse(history[-1]["derived"]) == space.derive(whole.weights())
    if space_name == "darts":
        assert {"alpha_entropy_normal", "alpha_entropy_reduce"} <= set(history[-1])

    first = make(images, space_name, epochs=2, order=order)
    first.run_epoch()
    first.save(tmp_path / "darts.pt")
    resumed = make(images, space_name, epochs=2, order=order, seed=7)  # alpha from the file
    resumed.load(tmp_path / "darts.pt")
    resumed.run()

    def untimed(h):
        return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in h]

    assert untimed(resumed.history) == untimed(history)
    assert all(torch.equal(a, b) for a, b in zip(resumed.alphas, whole.alphas))
    for a, b in zip(resumed.estimator.model.state_dict().values(),
                    whole.estimator.model.state_dict().values()):
        assert torch.equal(a, b)
    assert resumed.optimizer.state_dict()["state"][0]["step"] == 2


# ---- the architecture gradient -------------------------------------------------------------

class Toy(nn.Module):
    """logits = W2 tanh(sum_k a_k tanh(W1_k x)): smooth in the weights and the path."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(3, 5, 4, dtype=torch.float64) / 2)
        self.w2 = nn.Parameter(torch.randn(3, 5, dtype=torch.float64) / 2)

    def forward(self, x: torch.Tensor, path: Relaxed) -> torch.Tensor:
        mixed = sum(a * torch.tanh(x @ w.T) for a, w in zip(path.weights[0], self.w1))
        return torch.tanh(mixed) @ self.w2.T  # (B, 3)


class ToyEstimator:
    """What the architect needs of an estimator, over the toy model."""

    def __init__(self, lr: float = 0.1) -> None:
        torch.manual_seed(0)
        self.model = Toy()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.9,
                                         weight_decay=3e-4)
        self.lr = lr

    def loss(self, path, batch, params=None):
        x, y = batch
        if params is None:
            return F.cross_entropy(self.model(x, path), y)
        return F.cross_entropy(torch.func.functional_call(self.model, params, (x, path)), y)

    def current_lr(self) -> float:
        return self.lr


def toy_setup(lr: float = 0.1):
    est = ToyEstimator(lr)
    g = torch.Generator().manual_seed(1)
    train = (torch.randn(8, 4, generator=g, dtype=torch.float64), torch.arange(8) % 3)
    val = (torch.randn(8, 4, generator=g, dtype=torch.float64), (torch.arange(8) + 1) % 3)
    alpha = torch.nn.Parameter(torch.randn(1, 3, generator=g, dtype=torch.float64))

    def path(detach: bool = False) -> Relaxed:
        return Relaxed((F.softmax(alpha.detach() if detach else alpha, -1)[0],))

    # a first real weight step, so that the momentum buffer is not zero
    est.optimizer.zero_grad()
    est.loss(path(True), train).backward()
    est.optimizer.step()
    return est, alpha, path, train, val


def test_the_unrolled_weights_are_the_next_sgd_step() -> None:
    est, _, path, train, _ = toy_setup()
    named = dict(est.model.named_parameters())
    grads = dict(zip(named, torch.autograd.grad(est.loss(path(True), train), named.values())))
    buffers = {n: est.optimizer.state[p]["momentum_buffer"] for n, p in named.items()}
    expected = unrolled_weights({n: p.detach() for n, p in named.items()}, grads, buffers,
                                0.1, 0.9, 3e-4)
    for n, p in named.items():
        p.grad = grads[n]
    est.optimizer.step()  # what the weights' optimizer does next (no clipping)
    for n, p in named.items():
        torch.testing.assert_close(p.detach(), expected[n], rtol=0, atol=1e-15)


def test_the_finite_difference_term_is_the_hessian_vector_product() -> None:
    est, alpha, path, train, _ = toy_setup()
    weights = {n: p.detach() for n, p in est.model.named_parameters()}
    g = torch.Generator().manual_seed(3)
    vector = {n: torch.randn(w.shape, generator=g, dtype=w.dtype) for n, w in weights.items()}
    approx = hessian_vector_term(lambda params: est.loss(path(), train, params), weights,
                                 vector, [alpha])[0]
    # exact: d/d alpha of <grad_w L_train(w, alpha), v>
    leaves = {n: w.clone().requires_grad_() for n, w in weights.items()}
    grad_w = torch.autograd.grad(est.loss(path(), train, leaves), list(leaves.values()),
                                 create_graph=True)
    inner = sum((gw * vector[n]).sum() for gw, n in zip(grad_w, leaves))
    exact = torch.autograd.grad(inner, alpha)[0]
    assert exact.abs().max() > 1e-3  # a term worth approximating
    torch.testing.assert_close(approx, exact, rtol=1e-4, atol=1e-7)


def test_the_second_order_gradient_is_the_gradient_through_the_unrolled_step() -> None:
    est, alpha, path, train, val = toy_setup(lr=0.1)
    architect = Architect(est, [alpha], path, order=2)
    got = architect.gradients(train, val)[0]
    # exact hypergradient: autograd through w'(alpha) = w - eta (mu buf + grad_w L_train + wd w)
    named = dict(est.model.named_parameters())
    buffers = {n: est.optimizer.state[p]["momentum_buffer"] for n, p in named.items()}
    leaves = {n: p.detach().clone().requires_grad_() for n, p in named.items()}
    grad_w = torch.autograd.grad(est.loss(path(), train, leaves), list(leaves.values()),
                                 create_graph=True)
    unrolled = {n: w - 0.1 * (0.9 * buffers[n] + g + 3e-4 * w)
                for (n, w), g in zip(leaves.items(), grad_w)}
    exact = torch.autograd.grad(est.loss(path(), val, unrolled), alpha)[0]
    first = Architect(est, [alpha], path, order=1).gradients(train, val)[0]
    assert (exact - first).abs().max() > 1e-3  # the unrolled step matters here
    torch.testing.assert_close(got, exact, rtol=1e-4, atol=1e-7)


def test_the_second_order_without_an_unrolled_step_is_the_first_order(images: str) -> None:
    darts = make(images, order=2)
    est = darts.estimator
    train, val = est.batch("train"), est.batch("val")
    est.train_step(darts.path(detach=True), est.batch("train"))  # a momentum buffer
    first = Architect(est, darts.alphas, darts.path, order=1).gradients(train, val)
    second = darts.architect.gradients(train, val, eta=0.0)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    unrolled = darts.architect.gradients(train, val)  # eta: the current lr, 0.025
    assert not all(torch.allclose(a, b) for a, b in zip(first, unrolled))


def test_a_run_builds_darts_with_the_official_weights_and_refuses_spaces_without_derive(
        ) -> None:
    from archsearch.run.build import oneshot
    from archsearch.run.config import RunConfig, resolve

    resolved = resolve(RunConfig(method="darts", epochs=2, device="cpu",
                                 method_options={"order": 2}))
    assert resolved["space"]["name"] == "darts" and resolved["method"]["order"] == 2
    assert {k: resolved["estimator"][k] for k in ESTIMATOR_DEFAULTS} == ESTIMATOR_DEFAULTS
    search = oneshot(resolved)
    assert isinstance(search, DARTS) and search.epochs == 2 and search.config.order == 2
    assert not search.estimator.optimizer.param_groups[0]["nesterov"]
    assert resolve(RunConfig(method="darts", space="nb201"))["space"]["name"] == "nb201"
    with pytest.raises(UserError, match=r"darts needs a space with derive.*darts, nb201"):
        resolve(RunConfig(method="darts", space="enas-micro"))


# ---- beta-DARTS' regulariser ------------------------------------------------------------------

def test_the_beta_regulariser_is_the_mean_logsumexp_of_every_edge() -> None:
    from archsearch.oneshot.darts import beta_regulariser

    a, b = torch.tensor([[0.0, 1.0, 2.0], [3.0, 3.0, 3.0]]), torch.tensor([[-1.0, 0.0, 5.0]])
    by_hand = [math.log(sum(math.exp(v) for v in row)) for row in ([0, 1, 2], [3, 3, 3],
                                                                  [-1, 0, 5])]
    assert float(beta_regulariser([a, b])) == pytest.approx(sum(by_hand) / 3)


def test_beta_decay_adds_its_gradient_rising_linearly_over_the_epochs(images: str,
                                                                       monkeypatch) -> None:
    from archsearch.oneshot.darts import beta_regulariser

    plain = make(images, epochs=3)
    decayed = make(images, epochs=3, beta_decay=6.0)
    train, val = plain.estimator.batch("train"), plain.estimator.batch("val")
    steps = []
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self: steps.append(
        [p.grad.clone() for p in self.param_groups[0]["params"]]))
    for epoch, weight in ((0, 0.0), (1, 3.0), (2, 6.0)):  # 0 at the first epoch, 6 at the last
        plain.epoch = decayed.epoch = epoch
        plain.alpha_step(train, val)
        decayed.alpha_step(train, val)
        base, grads = steps[-2], steps[-1]
        alphas = [a.detach().requires_grad_() for a in decayed.alphas]
        expected = torch.autograd.grad(weight * beta_regulariser(alphas), alphas)
        for g0, g1, e in zip(base, grads, expected):
            assert torch.allclose(g1, g0 + e, atol=1e-6)
        assert (weight == 0) == all(torch.equal(g0, g1) for g0, g1 in zip(base, grads))



def test_the_warm_up_keeps_alpha_until_arch_start_epoch(images: str, caplog) -> None:
    search = make(images, "nb201", epochs=2, arch_start_epoch=1)
    start = [a.detach().clone() for a in search.alphas]
    search.run_epoch()
    assert all(torch.equal(a, s) for a, s in zip(search.alphas, start))  # epoch 0: frozen
    search.run_epoch()
    assert all(not torch.equal(a, s) for a, s in zip(search.alphas, start))  # epoch 1: steps
    assert search.optimizer.state_dict()["state"][0]["step"] == search.estimator.steps_per_epoch
    with caplog.at_level("WARNING"):
        make(images, "nb201", epochs=2, arch_start_epoch=2)
    assert "alpha never steps" in caplog.text


def test_none_in_derive_off_leaves_none_out_of_the_cell_and_needs_nb201(images: str) -> None:
    from archsearch.spaces.nb201 import OPS

    plain, without = make(images, "nb201"), make(images, "nb201", none_in_derive=False)
    for search in (plain, without):
        with torch.no_grad():
            search.alphas[0].zero_()
            search.alphas[0][:, OPS.index("none")] = 2.0
            search.alphas[0][:, OPS.index("avg_pool_3x3")] = 1.0
    assert plain.current_arch().ops == ("none",) * 6
    assert without.current_arch().ops == ("avg_pool_3x3",) * 6
    assert without.derive()[0] == without.current_arch()  # what each epoch records
    with pytest.raises(UserError, match="none_in_derive: space 'darts' never derives none"):
        make(images, "darts", none_in_derive=False)


def test_max_skips_caps_the_derived_cell_and_needs_a_capped_derive(images: str,
                                                                  monkeypatch) -> None:
    from archsearch.spaces.nb201 import OPS, NB201Space

    plain, capped = make(images, "nb201"), make(images, "nb201", max_skips=1)
    skip, conv = OPS.index("skip_connect"), OPS.index("nor_conv_3x3")
    with torch.no_grad():
        for search in (plain, capped):
            search.alphas[0].zero_()
            search.alphas[0][:, skip] = torch.tensor([4.0, 3.0, 5.0, 1.0, 2.0, 0.5])
            search.alphas[0][:, conv] = 0.25  # every edge's second best
    assert plain.current_arch().ops == ("skip_connect",) * 6
    assert capped.current_arch().ops == (("nor_conv_3x3",) * 2 + ("skip_connect",)
                                         + ("nor_conv_3x3",) * 3)  # the strongest skip stays
    assert capped.derive()[0] == capped.current_arch()  # what each epoch records
    monkeypatch.delattr(NB201Space, "derive_capped")
    with pytest.raises(UserError, match="max_skips: space 'nb201' has no capped derive"):
        make(images, "nb201", max_skips=1)
    make(images, "nb201")  # without the cap, no capped derive is needed
