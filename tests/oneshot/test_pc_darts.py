"""PC-DARTS: DARTS plus beta; the official settings; betas seeded after alpha and normalised
over each node's incoming edges in the path; alpha and beta frozen before arch_start_epoch;
derive ranks edges by softmax(alpha) times the edge's weight; tiny searches resume exactly;
the CLI runs a search on nb201 and reports the derived cell."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from archsearch import methods
from archsearch.cli.main import main
from archsearch.errors import UserError
from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.oneshot.darts import DARTS, DARTSConfig
from archsearch.oneshot.pc_darts import OFFICIAL_WEIGHTS, PCDARTS, PCDARTSConfig
from archsearch.registry import SPACES
from archsearch.spaces.darts import EDGES, PRIMITIVES

SUPERNETS = {"darts": {"channels": 4, "cells": 3, "partial_channels": 2},
             "nb201": {"channels": 4, "cells_per_stage": 1, "partial_channels": 2}}
NODES = {"darts": [(0, 2), (2, 5), (5, 9), (9, 14)], "nb201": [(0, 1), (1, 3), (3, 6)]}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> str:
    """64 random 8x8 images of 3 classes (nothing here needs them learnable)."""
    rng, path = np.random.default_rng(0), tmp_path_factory.mktemp("images") / "tiny.npz"
    np.savez(path, x=rng.integers(0, 256, (64, 8, 8, 3), dtype=np.uint8), y=rng.integers(0, 3, 64))
    return str(path)


def make(images: str, space_name: str = "nb201", epochs: int = 2, seed: int = 1,
         **config) -> PCDARTS:
    """The official weights' settings at batch 16 on 32 training and 32 validation images."""
    est = SharedWeightsEstimator(SPACES.create(space_name), data=images, device="cpu",
                                 supernet=SUPERNETS[space_name], test_fraction=0.0,
                                 epochs=epochs, **{**OFFICIAL_WEIGHTS, "batch_size": 16})
    return PCDARTS(est, PCDARTSConfig(epochs=epochs, **config), seed=seed)


def test_config_and_registry_hold_the_official_settings() -> None:
    config = PCDARTSConfig()
    assert (config.epochs, config.order, config.alpha_lr, config.alpha_betas,
            config.alpha_weight_decay, config.arch_start_epoch) == (50, 1, 6e-4, (0.5, 0.999),
                                                                    1e-3, 15)
    with pytest.raises(UserError, match="first order"):
        PCDARTSConfig(order=2)
    with pytest.raises(UserError, match="order must be one of 1"):
        PCDARTSConfig.from_options({"order": 2})
    assert {k: OFFICIAL_WEIGHTS[k] for k in ("batch_size", "lr", "lr_min", "weight_decay",
                                             "grad_clip", "momentum", "nesterov")} == {
        "batch_size": 256, "lr": 0.1, "lr_min": 0.0, "weight_decay": 3e-4, "grad_clip": 5.0,
        "momentum": 0.9, "nesterov": False}
    method = methods.get("pc-darts")
    assert method.config is PCDARTSConfig and "pc-darts" in methods.names()
    preset = method.preset("darts")  # CPU: batch 64 at the linearly scaled lr, warm-up 3 of 10
    assert preset["run"] == {"epochs": 10} and preset["method"] == {"arch_start_epoch": 3}
    assert (preset["estimator"]["batch_size"], preset["estimator"]["lr"]) == (64, 0.025)
    assert preset["estimator"]["supernet"] == {"channels": 16, "cells": 5,
                                               "partial_channels": 4}
    assert method.preset("nb201")["estimator"]["supernet"]["partial_channels"] == 4


@pytest.mark.parametrize("space_name", ["darts", "nb201"])
def test_betas_are_seeded_after_alpha_and_normalised_over_each_nodes_edges(
        images: str, space_name: str) -> None:
    pc = make(images, space_name)
    darts = DARTS(pc.estimator, DARTSConfig(), seed=1)
    assert all(torch.equal(a, b) for a, b in zip(pc.alphas, darts.alphas))  # alpha as DARTS'
    n = NODES[space_name][-1][1]  # edges per cell type
    assert [tuple(b.shape) for b in pc.betas] == [(n,)] * len(pc.cells)
    assert 5e-4 < float(torch.cat([b.detach() for b in pc.betas]).std()) < 2e-3
    assert not torch.equal(pc.betas[0], make(images, space_name, seed=2).betas[0])
    with torch.no_grad():
        for beta in pc.betas:
            beta.copy_(torch.randn(n))
    path = pc.path()
    assert len(path.edge_weights) == n * len(pc.cells)
    for cell, beta in enumerate(pc.betas):  # the official: softmax(beta[start:end]) per node
        for start, end in NODES[space_name]:
            got = path.edge_weights[cell * n + start:cell * n + end]
            torch.testing.assert_close(got, F.softmax(beta[start:end], 0), rtol=0, atol=1e-7)
    assert path.edge_weights.requires_grad and not pc.path(detach=True).edge_weights.requires_grad


def test_a_beta_strongly_favouring_one_edge_gives_that_edges_output(images: str) -> None:
    pc = make(images)
    net, x = pc.estimator.model.double(), torch.randn(4, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        pc.betas[0].copy_(torch.tensor([0.0, 0.0, 0.0, 60.0, 0.0, 0.0]))  # node 3: from node 0
    path = pc.path(detach=True)
    weights = tuple(w.double() for w in path.weights)
    one_edge = torch.tensor([1.0, 0.5, 0.5, 1.0, 0.0, 0.0], dtype=torch.float64)
    got = net(x, type(path)(weights, edge_weights=path.edge_weights.double()))
    torch.testing.assert_close(got, net(x, type(path)(weights, edge_weights=one_edge)))
    uniform = torch.tensor([1.0, 0.5, 0.5, 1 / 3, 1 / 3, 1 / 3], dtype=torch.float64)
    assert not torch.allclose(got, net(x, type(path)(weights, edge_weights=uniform)))


def test_alpha_and_beta_stay_until_arch_start_epoch_and_move_after(images: str) -> None:
    pc = make(images, epochs=3, arch_start_epoch=2)
    params = [*pc.alphas, *pc.betas]
    start = [p.detach().clone() for p in params]
    weights = [p.detach().clone() for p in pc.estimator.model.parameters()]
    pc.run_epoch()
    pc.run_epoch()
    assert all(torch.equal(p, s) for p, s in zip(params, start))  # epochs 0 and 1: frozen
    assert any(not torch.equal(p, w) for p, w in zip(pc.estimator.model.parameters(), weights))
    pc.run_epoch()
    assert all(not torch.equal(p, s) for p, s in zip(params, start))  # epoch 2: both step
    assert pc.optimizer.state_dict()["state"][0]["step"] == pc.estimator.steps_per_epoch


def test_derive_ranks_edges_by_alpha_softmax_times_beta_weight(images: str) -> None:
    pc = make(images, "darts")
    sep = PRIMITIVES.index("sep_conv_3x3")
    with torch.no_grad():
        for a in pc.alphas:
            a.zero_()
        for i, logit in enumerate((3.0, 2.0, 1.0)):  # node 3: edge from 0 > from 1 > from 2
            pc.alphas[0][EDGES.index((3, i)), sep] = logit
    plain = pc.space.derive([row for a in pc.alphas for row in F.softmax(a.detach(), -1)])
    assert plain.normal[1] == (("sep_conv_3x3", 0), ("sep_conv_3x3", 1))
    assert pc.space.derive(pc.weights()).normal[1] == plain.normal[1]
    with torch.no_grad():
        pc.betas[0][EDGES.index((3, 0))] = -5.0  # node 3's edge from 0 weighs ~0.003
    assert pc.space.derive(pc.weights()).normal[1] == (("sep_conv_3x3", 1), ("sep_conv_3x3", 2))
    arch, _, _ = pc.derive()
    assert arch.normal[1] == (("sep_conv_3x3", 1), ("sep_conv_3x3", 2))


def test_a_tiny_search_runs_and_resumes_exactly(images: str, tmp_path: Path) -> None:
    whole = make(images, "darts", epochs=2, arch_start_epoch=1)
    history = whole.run()
    assert [r["epoch"] for r in history] == [1, 2]
    assert whole.derived == whole.space.derive(whole.weights())

    first = make(images, "darts", epochs=2, arch_start_epoch=1)
    first.run_epoch()
    first.save(tmp_path / "pc.pt")
    resumed = make(images, "darts", epochs=2, arch_start_epoch=1, seed=7)  # from the file
    resumed.load(tmp_path / "pc.pt")
    resumed.run()

    def untimed(h):
        return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in h]

    assert untimed(resumed.history) == untimed(history)
    for mine, theirs in ((resumed.alphas, whole.alphas), (resumed.betas, whole.betas)):
        assert all(torch.equal(a, b) for a, b in zip(mine, theirs))
    for a, b in zip(resumed.estimator.model.state_dict().values(),
                    whole.estimator.model.state_dict().values()):
        assert torch.equal(a, b)


def test_the_cli_searches_nb201_and_reports_the_derived_cell(images: str, tmp_path: Path,
                                                             capsys) -> None:
    run = tmp_path / "run"
    assert main(["search", "--method", "pc-darts", "--space", "nb201", "--data", images,
                 "--run", str(run), "--epochs", "2", "--method-opt", "arch_start_epoch=1",
                 "--estimator-opt", "supernet={'channels': 4, 'cells_per_stage': 1, "
                 "'partial_channels': 2}", "--estimator-opt", "batch_size=16",
                 "--final-epochs", "0.5", "--final-opt",
                 "build={'channels': 4, 'cells_per_stage': 1}", "--baseline-random", "0",
                 "--device", "cpu", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "derived architecture (the last epoch's" in out
    state = torch.load(run / "pc-darts.pt", weights_only=True)
    assert [tuple(b.shape) for b in state["betas"]] == [(6,)]
    assert main(["show", str(run), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert len(shown["epochs"]) == 2 and shown["best_arch"] == shown["epochs"][-1]["derived"]
    assert shown["best_arch"] in out
    SPACES.create("nb201").parse(shown["best_arch"])
