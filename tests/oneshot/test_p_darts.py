"""P-DARTS: the official settings; after a stage each edge keeps its strongest ops by alpha and
the next stage's supernet is deeper and holds (and computes) only those; the skip dropout rate
follows the official schedule; the answer caps the normal cell's skips at 2 and keeps fewer; a
search stopped mid-stage 2 resumes exactly; NB201 is refused; the CLI runs and shows stages."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from archsearch import methods
from archsearch.cli.main import main
from archsearch.errors import UserError
from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.oneshot.p_darts import (
    OFFICIAL_WEIGHTS,
    PDARTS,
    PDARTSConfig,
    skip_dropout_rate,
    stage_estimators,
)
from archsearch.registry import SPACES
from archsearch.run.config import RunConfig, resolve
from archsearch.spaces.darts import EDGES, PRIMITIVES
from archsearch.spaces.darts_network import op_key
from archsearch.spaces.darts_supernet import SKIP
from tests.spaces.test_darts_pruned_supernet import cell_ops, ops_run

SUPERNET = {"channels": 4, "cells": 2}
TINY = {"add_cells": (0, 1, 2), "arch_start_epoch": 1}  # 2, 3, 4 cells


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> str:
    """64 random 8x8 images of 3 classes (nothing here needs them learnable)."""
    rng, path = np.random.default_rng(0), tmp_path_factory.mktemp("images") / "tiny.npz"
    np.savez(path, x=rng.integers(0, 256, (64, 8, 8, 3), dtype=np.uint8), y=rng.integers(0, 3, 64))
    return str(path)


def make(images: str, epochs: int = 2, seed: int = 1, **config) -> PDARTS:
    """The official weights at batch 16 on 32 training and 32 validation images: 2 steps an
    epoch; each stage's estimator built from the section as a run builds it."""
    section = {"name": "shared-weights", "data": images, "device": "cpu", "test_fraction": 0.0,
               "epochs": epochs, "seed": 0, "supernet": SUPERNET,
               **OFFICIAL_WEIGHTS, "batch_size": 16}
    space = SPACES.create("darts")
    first = SharedWeightsEstimator(space, **{k: v for k, v in section.items() if k != "name"})
    return PDARTS(first, PDARTSConfig(epochs=epochs, **{**TINY, **config}), seed,
                  stage_estimators(section, space))


def test_config_and_registry_hold_the_official_settings() -> None:
    c = PDARTSConfig()
    assert (c.epochs, c.order, c.alpha_lr, c.alpha_betas, c.alpha_weight_decay, c.alpha_init,
            c.alpha_grad_clip) == (25, 1, 6e-4, (0.5, 0.999), 1e-3, 1e-3, 5.0)
    assert (c.add_cells, c.num_to_keep, c.skip_dropout, c.arch_start_epoch, c.dropout_decay,
            c.max_skips) == ((0, 6, 12), (5, 3, 1), (0.1, 0.4, 0.7), 10, 0.2, 2)
    assert {k: OFFICIAL_WEIGHTS[k] for k in ("batch_size", "lr", "lr_min", "weight_decay",
                                             "momentum", "nesterov", "grad_clip")} == {
        "batch_size": 96, "lr": 0.025, "lr_min": 0.0, "weight_decay": 3e-4, "momentum": 0.9,
        "nesterov": False, "grad_clip": 5.0}
    for bad, message in [({"order": 2}, "order must be one of 1"),
                         ({"num_to_keep": (5, 3, 2)}, "fall to 1"),
                         ({"num_to_keep": (5, 2, 1)}, "3 or more"),
                         ({"skip_dropout": (0.1, 0.4)}, "one value a stage"),
                         ({"add_cells": (1, 6, 12)}, "start at 0"),
                         ({"skip_dropout": (0.1, 0.4, 1.0)}, r"\[0, 1\)")]:
        with pytest.raises(UserError, match=message):
            PDARTSConfig.from_options(bad)
    method = methods.get("p-darts")
    assert method.config is PDARTSConfig and "p-darts" in methods.names()
    preset = method.preset("darts")
    assert preset["run"] == {"epochs": 4}
    assert preset["method"] == {"arch_start_epoch": 2, "add_cells": (0, 3, 6)}
    assert preset["estimator"]["batch_size"] == 64 and preset["estimator"]["lr_min"] == 0.0


def test_nb201_and_a_supernet_given_edge_ops_are_refused(images: str) -> None:
    with pytest.raises(UserError, match=r"prunable_supernet.*spaces that have: darts"):
        resolve(RunConfig(method="p-darts", space="nb201"))
    est = SharedWeightsEstimator(SPACES.create("nb201"), data=images, device="cpu",
                                 supernet={"channels": 4, "cells_per_stage": 1})
    with pytest.raises(UserError, match="searches the darts space"):
        PDARTS(est, PDARTSConfig(epochs=2))
    pruned = SharedWeightsEstimator(SPACES.create("darts"), data=images, device="cpu",
                                    supernet={**SUPERNET, "edge_ops": [[0, 3, 4]] * 28})
    with pytest.raises(UserError, match="drop edge_ops"):
        PDARTS(pruned, PDARTSConfig(epochs=2), stage_estimator=lambda *_: pruned)


def test_after_a_stage_each_edge_keeps_its_strongest_ops_in_a_deeper_supernet(images: str) -> None:
    pd = make(images)
    assert len(pd.estimator.model.cells) == 2
    assert [tuple(a.shape) for a in pd.alphas] == [(14, 8)] * 2
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for a in pd.alphas:
            a.copy_(torch.randn(a.shape, generator=g))
    rows = [row for a in pd.alphas for row in F.softmax(a.detach(), -1)]
    strongest = [sorted(int(j) for j in row.argsort(descending=True)[:5]) for row in rows]
    pd.epoch = 2  # stage 2's first epoch: the pruning and the new supernet come first
    stats = pd.train_epoch()
    model = pd.estimator.model
    assert (pd.stage, stats["stage"], stats["cells"], len(model.cells)) == (1, 2, 3, 3)
    assert [list(ops) for ops in pd.held] == strongest and model.edge_ops == pd.held
    assert stats["ops_per_edge"] == 5 and [tuple(a.shape) for a in pd.alphas] == [(14, 5)] * 2
    for cell in model.cells:
        mine = pd.held[len(EDGES):] if cell.reduction else pd.held[:len(EDGES)]
        assert set(cell.ops) == {op_key(i, j, PRIMITIVES[k]) for (j, i), ops in zip(EDGES, mine)
                                 for k in ops if k != 0}
    path = pd.path(detach=True)
    assert path.active == pd.held
    for w, ops in zip(path.weights, pd.held):
        assert torch.all(w[[k for k in range(8) if k not in ops]] == 0)
        torch.testing.assert_close(float(w.sum()), 1.0)
    ran, _ = ops_run(model, lambda: pd.estimator.loss(path, pd.estimator.batch("val")))
    assert set(ran) == set(cell_ops(model))  # what it holds is what the path computes
    # stage 2 -> 3: none may stay (only the final derive excludes it), the 3 strongest kept
    with torch.no_grad():
        for a in pd.alphas:
            a.copy_(torch.randn(a.shape, generator=g))
        pd.alphas[0][0] = torch.tensor([5.0, 4.0, -1.0, 3.0, -2.0])[:pd.alphas[0].shape[1]]
    first = [pd.held[0][j] for j in (0, 1, 3)]
    pd.epoch = 4
    pd.train_epoch()
    assert pd.held[0] == tuple(first) and 0 in pd.held[0]  # none kept on edge 0
    assert len(pd.estimator.model.cells) == 4 and all(len(ops) == 3 for ops in pd.held)


def test_alphas_gradient_is_clipped_before_each_adam_step_in_every_stage(images: str) -> None:
    pd = make(images)
    for stage in (0, 1):
        if stage:
            pd.begin_stage(1, pd.pruned())
        for a in pd.alphas:
            a.grad = torch.full_like(a, 10.0)
        pd.optimizer.step()
        norm = torch.cat([a.grad.flatten() for a in pd.alphas]).norm()
        assert float(norm) == pytest.approx(5.0)  # the official clip_grad_norm_(.., 5)


def test_the_skip_dropout_rate_follows_the_official_schedule(images: str) -> None:
    assert skip_dropout_rate(0.7, 0, 25, 10, 0.2) == pytest.approx(0.7 * 24 / 25)
    assert skip_dropout_rate(0.7, 9, 25, 10, 0.2) == pytest.approx(0.7 * 15 / 25)
    assert skip_dropout_rate(0.7, 10, 25, 10, 0.2) == pytest.approx(0.7)
    assert skip_dropout_rate(0.7, 15, 25, 10, 0.2) == pytest.approx(0.7 * math.exp(-1.0))
    pd = make(images, epochs=3, skip_dropout=(0.3, 0.6, 0.9))
    alpha = pd.alphas[0].detach().clone()
    rates = [pd.run_epoch()["skip_dropout"]]
    assert torch.equal(pd.alphas[0], alpha)  # the first epoch of a stage: weights only
    rates += [pd.run_epoch()["skip_dropout"] for _ in range(3)]
    assert not torch.equal(pd.alphas[0][:, :], alpha)
    assert rates == pytest.approx([0.3 * 2 / 3, 0.3, 0.3 * math.exp(-0.2), 0.6 * 2 / 3])
    assert all(cell.skip_dropout == (pytest.approx(0.4), pd.estimator.generator)
               for cell in pd.estimator.model.cells)  # stage 2's supernet, the rate in force


# the last stage's normal cell: per edge (EDGES order) its other op and the softmax of none,
# skip_connect and that op; its derive holds 5 skips (0.9, 0.5, 0.8, 0.45, 0.6)
LAST_NORMAL = [("sep_conv_3x3", .05, .9, .05), ("sep_conv_3x3", .1, .5, .4),
               ("dil_conv_3x3", .1, .8, .1), ("dil_conv_3x3", .3, .45, .25),
               ("max_pool_3x3", .3, .3, .4), ("sep_conv_5x5", .2, .6, .2),
               ("sep_conv_5x5", .6, .1, .3), ("dil_conv_5x5", .5, .15, .35),
               ("sep_conv_5x5", .2, .3, .5), ("avg_pool_3x3", .6, .15, .25),
               ("sep_conv_3x3", .3, .3, .4), ("sep_conv_3x3", .7, .1, .2),
               ("sep_conv_3x3", .7, .1, .2), ("avg_pool_3x3", .2, .1, .7)]


def test_the_final_normal_cell_keeps_two_skips_at_most(images: str) -> None:
    pd = make(images)
    probs = [{0: none, SKIP: skip, PRIMITIVES.index(op): other}
             for op, none, skip, other in LAST_NORMAL + [("sep_conv_3x3", .2, .3, .5)] * 14]
    pd.begin_stage(2, [sorted(p) for p in probs])
    with torch.no_grad():
        for e, p in enumerate(probs):
            pd.alphas[e // 14][e % 14] = torch.tensor([p[k] for k in pd.held[e]]).log()
    arch, _, extra = pd.derive()
    assert (extra["uncapped_skip_connects"], extra["skip_connects"]) == (5, 2)
    assert arch.normal == ((("skip_connect", 0), ("sep_conv_3x3", 1)),  # 0.9 kept, 0.5 next op
                           (("skip_connect", 0), ("max_pool_3x3", 2)),  # 0.8 kept, 3<-1 lost
                           (("dil_conv_5x5", 2), ("sep_conv_5x5", 3)),  # 0.6: 4<-0 lost
                           (("sep_conv_3x3", 1), ("avg_pool_3x3", 4)))
    with torch.no_grad():  # one skip only (2<-0): it stays, none is added
        for e in (1, 2, 3, 5):
            pd.alphas[0][e, pd.held[e].index(SKIP)] = -20.0
    arch, _, extra = pd.derive()
    assert (extra["uncapped_skip_connects"], extra["skip_connects"]) == (1, 1)
    assert arch == pd.space.derive(pd.weights())


def untimed(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in history]


def test_a_search_stopped_mid_stage_two_resumes_exactly(images: str, tmp_path: Path) -> None:
    whole = make(images)
    history = whole.run()
    assert [(r["stage"], r["cells"], r["ops_per_edge"]) for r in history] == [
        (1, 2, 8), (1, 2, 8), (2, 3, 5), (2, 3, 5), (3, 4, 3), (3, 4, 3)]
    assert whole.derived == whole.space.derive_capped(whole.weights(), 2)

    first = make(images)
    for _ in range(3):  # stage 2's first epoch
        first.run_epoch()
    first.save(tmp_path / "p.pt")
    resumed = make(images, seed=7)  # the seed and the stage come from the file
    resumed.load(tmp_path / "p.pt")
    assert resumed.stage == 1 and len(resumed.estimator.model.cells) == 3
    assert resumed.held == first.held
    resumed.run()
    assert untimed(resumed.history) == untimed(history)
    assert all(torch.equal(a, b) for a, b in zip(resumed.alphas, whole.alphas))
    for a, b in zip(resumed.estimator.model.state_dict().values(),
                    whole.estimator.model.state_dict().values()):
        assert torch.equal(a, b)


def test_the_cli_searches_in_stages_and_shows_them(images: str, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["search", "--method", "p-darts", "--space", "darts", "--data", images,
                 "--run", str(run), "--epochs", "1", "--method-opt", "arch_start_epoch=0",
                 "--method-opt", "add_cells=[0, 1, 2]", "--estimator-opt",
                 "supernet={'channels': 4, 'cells': 2}", "--estimator-opt", "batch_size=16",
                 "--final-epochs", "0.5", "--final-opt", "build={'channels': 4, 'cells': 2}",
                 "--baseline-random", "0", "--device", "cpu", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "derived architecture (the last epoch's" in out
    state = torch.load(run / "p-darts.pt", weights_only=True)
    assert state["stage"] == 2 and [tuple(a.shape) for a in state["alphas"]] == [(14, 3)] * 2
    assert main(["show", str(run)]) == 0
    shown = capsys.readouterr().out
    header = next(line for line in shown.splitlines() if line.startswith("epoch "))
    assert header.split()[:4] == ["epoch", "stage", "cells", "skip_dropout"]
    assert main(["show", str(run), "--json"]) == 0
    epochs = json.loads(capsys.readouterr().out)["epochs"]
    assert [(r["stage"], r["cells"]) for r in epochs] == [(1, 2), (2, 3), (3, 4)]
    SPACES.create("darts").parse(epochs[-1]["derived"])
