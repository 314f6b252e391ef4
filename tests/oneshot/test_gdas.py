"""GDAS: a straight-through sample is one-hot in value with the soft sample's gradient; a
straight-through path computes only its sampled ops yet keeps every weight of an edge in the
graph; the weights step before alpha; tau follows AutoDL's linear schedule; a seeded search
repeats and resumes exactly; the CLI runs it on nb201."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from archsearch import methods
from archsearch.errors import UserError
from archsearch.nn.mixed import Relaxed
from archsearch.oneshot.gdas import ESTIMATOR_DEFAULTS, GDAS, GDASConfig
from archsearch.oneshot.gumbel import soft_sample, straight_through
from archsearch.spaces.darts import EDGES as DARTS_EDGES
from archsearch.spaces.darts import PRIMITIVES
from archsearch.spaces.darts_network import op_key
from archsearch.spaces.nb201 import OPS, NB201CellModule
from tests.oneshot.test_darts import estimator


def make(images: str, space_name: str = "nb201", epochs: int = 2, seed: int = 1,
         batch_size: int = 48, **config) -> GDAS:
    """GDAS with AutoDL's NB201 weight settings on 48 training and 48 validation images."""
    weights = {k: v for k, v in ESTIMATOR_DEFAULTS.items() if k != "batch_size"}
    return GDAS(estimator(images, space_name, epochs, batch_size, **weights),
                GDASConfig(epochs=epochs, **config), seed=seed)


def op_modules(model: torch.nn.Module) -> dict[tuple[int, int, int], torch.nn.Module]:
    """(cell, relaxed decision, op) -> the supernet's module for that op (``none`` has none)."""
    out = {}
    for k, cell in enumerate(model.cells):
        if isinstance(cell, NB201CellModule):
            out |= {(k, e, o): cell.ops[e][name] for e in range(6)
                    for o, name in enumerate(OPS) if name != "none"}
        elif hasattr(cell, "reduction"):  # a DARTS search cell
            base = len(DARTS_EDGES) if cell.reduction else 0
            out |= {(k, base + e, o): cell.ops[op_key(i, j, name)]
                    for e, (j, i) in enumerate(DARTS_EDGES)
                    for o, name in enumerate(PRIMITIVES) if name != "none"}
    return out


def untimed(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in history]


def assert_seeded_and_resumable(make_search, tmp_path: Path) -> None:
    """``make_search(seed)``: a fresh 2-epoch search. The same seed repeats it, another seed
    draws other noise, and 1 epoch + save + load into another seed's search + 1 epoch is the
    2-epoch search (history, alpha, the Gumbel generator)."""
    whole, again = make_search(1), make_search(1)
    assert not torch.equal(whole.generator.get_state(), make_search(2).generator.get_state())
    whole.run()
    again.run()
    assert untimed(again.history) == untimed(whole.history)
    assert all(torch.equal(a, b) for a, b in zip(again.alphas, whole.alphas))
    first = make_search(1)
    first.run_epoch()
    first.save(tmp_path / "search.pt")
    resumed = make_search(7)
    resumed.load(tmp_path / "search.pt")
    resumed.run()
    assert untimed(resumed.history) == untimed(whole.history)
    assert all(torch.equal(a, b) for a, b in zip(resumed.alphas, whole.alphas))
    assert torch.equal(resumed.generator.get_state(), whole.generator.get_state())


def recorded_taus(monkeypatch: pytest.MonkeyPatch, sampler: str, search) -> list[list[float]]:
    """The temperature each sample of a whole search is drawn at, per epoch (``sampler``: the
    sampling function as the method's module names it)."""
    module, name = sampler.rsplit(".", 1)
    original = getattr(__import__(module, fromlist=[name]), name)
    taus: list[float] = []

    def record(logits, tau, generator):
        taus.append(tau)
        return original(logits, tau, generator)

    monkeypatch.setattr(sampler, record)
    per_epoch = []
    for _ in range(search.epochs):
        start = len(taus)
        search.run_epoch()
        per_epoch.append(sorted(set(taus[start:])))
    return per_epoch


# ---- the sample ---------------------------------------------------------------------------

def test_config_and_registry_hold_the_official_settings() -> None:
    config = GDASConfig()
    assert (config.epochs, config.tau_max, config.tau_min, config.alpha_lr, config.alpha_betas,
            config.alpha_weight_decay, config.alpha_init) == (250, 10.0, 0.1, 3e-4,
                                                              (0.5, 0.999), 1e-3, 1e-3)
    method = methods.get("gdas")
    assert method.kind == "loop" and method.config is GDASConfig and method.requires == ("derive",)
    assert method.preset("nb201")["estimator"] == {
        "batch_size": 64, "lr": 0.025, "lr_min": 0.001, "momentum": 0.9, "nesterov": True,
        "weight_decay": 5e-4, "grad_clip": 5.0, "lr_schedule": "epoch", "val_fraction": 0.5}
    with pytest.raises(UserError, match="tau_min <= tau_max"):
        GDASConfig(tau_max=0.1, tau_min=1.0)
    with pytest.raises(UserError, match="alpha_betas"):
        GDASConfig.from_options({"alpha_betas": [0.5, 1.5]})


def test_the_straight_through_sample_is_one_hot_with_the_soft_samples_gradient() -> None:
    alpha = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), requires_grad=True)
    cost = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    hard, index = straight_through(alpha, 2.0, torch.Generator().manual_seed(3))
    probs = soft_sample(F.log_softmax(alpha, -1), 2.0, torch.Generator().manual_seed(3))
    one_hot = F.one_hot(probs.argmax(-1), 5).float()
    assert torch.equal(index, probs.argmax(-1))
    assert torch.allclose(hard, one_hot, rtol=0, atol=1e-6)
    assert torch.equal(hard[one_hot == 0], torch.zeros(24))  # exactly zero off the sample
    (got,) = torch.autograd.grad((cost * hard).sum(), alpha)
    (expected,) = torch.autograd.grad((cost * probs).sum(), alpha)
    assert got.abs().min() > 0 and torch.allclose(got, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("space_name", ["nb201", "darts"])
def test_a_straight_through_path_computes_its_cell_and_keeps_each_weight_in_the_graph(
        images: str, space_name: str) -> None:
    est = estimator(images, space_name)
    space, model = est.space, est.model
    text = {"nb201": "|none~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
            "darts": None}[space_name]  # nb201: node 1 and node 2 only none
    arch = space.parse(text) if text else space.derive(
        list(torch.rand(28, 8, generator=torch.Generator().manual_seed(0))))
    choices = space.relaxed_choices(arch)
    logits = torch.randn(len(choices), len(space.relaxed_decisions()[0].options),
                         generator=torch.Generator().manual_seed(1), requires_grad=True)
    probs = F.softmax(logits, -1)
    hard = F.one_hot(torch.tensor(choices), probs.shape[1]) - probs.detach() + probs
    path = Relaxed(tuple(hard), tuple((c,) for c in choices), straight_through=True)
    x = est.batch("train")[0][:8]
    out = model(x, path)
    assert torch.allclose(out, model(x, arch), rtol=0, atol=1e-5)  # the sampled cell's value
    rows = torch.autograd.grad(out.square().sum(), path.weights)  # d out / d hard, per edge
    live = range(len(choices)) if space_name == "darts" else (3, 4, 5)  # nb201: into node 3
    for d in live:
        others = [j for j in range(probs.shape[1]) if j != choices[d]]
        assert (rows[d][others] != 0).all(), (d, rows[d])


def test_gdas_runs_only_the_sampled_ops_and_every_alpha_of_an_edge_gets_a_gradient(
        images: str) -> None:
    gdas = make(images)
    with torch.no_grad():
        gdas.alphas[0][:, 0] = -30.0  # never none: every edge's output then reaches the loss
    modules = op_modules(gdas.estimator.model)
    calls: list[tuple[int, int, int]] = []
    for key, module in modules.items():
        module.register_forward_hook(lambda *_, key=key: calls.append(key))
    samples: list[Relaxed] = []
    sample = gdas.sample
    gdas.sample = lambda detach=False: samples.append(sample(detach)) or samples[-1]

    def ran(path: Relaxed) -> list[tuple[int, int, int]]:
        return sorted(key for key in modules if path.active[key[1]] == (key[2],))

    # alpha's step: one op per edge runs, every op's alpha gets a gradient
    grads = gdas.alpha_gradients(gdas.estimator.batch("val"))
    assert samples[-1].straight_through and sorted(calls) == ran(samples[-1])
    assert all((g != 0).all() for g in grads)
    # the weights' step: the ops not sampled get no gradient
    calls.clear()
    gdas.estimator.train_step(gdas.sample(detach=True), gdas.estimator.batch("train"))
    assert sorted(calls) == ran(samples[-1])
    for key, module in modules.items():
        for p in module.parameters():
            assert (p.grad is not None) == (key in ran(samples[-1])), key


# ---- the loop ------------------------------------------------------------------------------

def test_each_step_moves_the_weights_then_alpha_on_a_validation_batch(images: str) -> None:
    gdas = make(images, batch_size=24)  # 2 steps an epoch
    calls: list[tuple[str, object]] = []
    train_step, gradients = gdas.estimator.train_step, gdas.alpha_gradients

    def record_weights(path, batch):
        calls.append(("weights", (path, batch)))
        train_step(path, batch)

    def record_alpha(batch):
        calls.append(("alpha", batch))
        return gradients(batch)

    gdas.estimator.train_step, gdas.alpha_gradients = record_weights, record_alpha
    before = gdas.alphas[0].detach().clone()
    gdas.train_epoch()
    assert [kind for kind, _ in calls] == ["weights", "alpha"] * 2
    val_x = gdas.estimator.data.val.x
    for (_, (path, batch)), (_, val) in zip(calls[::2], calls[1::2]):
        assert not path.straight_through and not any(w.requires_grad for w in path.weights)
        assert all(len(a) == 1 for a in path.active)  # one op per edge
        assert not any(torch.equal(batch[0][0], v) for v in val_x)
        assert any(torch.equal(val[0][0], v) for v in val_x)
    assert not torch.equal(before, gdas.alphas[0])


def test_tau_falls_linearly_from_tau_max_to_tau_min(images: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    gdas = make(images, epochs=4)
    taus = recorded_taus(monkeypatch, "archsearch.oneshot.gdas.straight_through", gdas)
    assert taus == [[10.0], [pytest.approx(6.7)], [pytest.approx(3.4)], [0.1]]
    assert [r["tau"] for r in gdas.history] == [t for (t,) in taus]


@pytest.mark.parametrize("space_name", ["nb201", "darts"])
def test_a_seeded_search_repeats_and_resumes_exactly(images: str, tmp_path: Path,
                                                     space_name: str) -> None:
    assert_seeded_and_resumable(lambda seed: make(images, space_name, seed=seed), tmp_path)
    record = make(images, space_name).run()[-1]
    assert {"tau", "alpha_entropy", "skip_connects", "derived_score"} <= set(record)


def test_the_cli_searches_nb201_with_gdas(images: str, tmp_path: Path, capsys) -> None:
    from archsearch.cli.main import main

    run = tmp_path / "run"
    assert main(["search", "--method", "gdas", "--space", "nb201", "--data", images,
                 "--run", str(run), "--epochs", "2", "--final-epochs", "0.2",
                 "--baseline-random", "0", "--no-progress", "--device", "cpu",
                 "--estimator-opt", "supernet={'channels': 4, 'cells_per_stage': 1}",
                 "--estimator-opt", "batch_size=16",
                 "--final-opt", "build={'channels': 4, 'cells_per_stage': 1}"]) == 0
    assert "derived architecture (the last epoch's" in capsys.readouterr().out
    assert (run / "gdas.pt").exists()
    assert main(["show", str(run), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [r["tau"] for r in shown["epochs"]] == [10.0, 0.1]
    assert shown["best_arch"] == shown["epochs"][-1]["derived"]
