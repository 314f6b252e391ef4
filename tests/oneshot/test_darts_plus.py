"""DARTS+: its two stopping rules fire on constructed histories exactly when the paper says,
a search stops at the first epoch either fires (and says which), and a stopped search stays
stopped when resumed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archsearch import methods
from archsearch.oneshot.darts_plus import (
    DARTSPlus,
    DARTSPlusConfig,
    ranking,
    skip_rule,
    stability_rule,
)
from tests.conftest import write_tiny_images
from tests.oneshot.test_darts import estimator

A, B = ((1, 2),), ((2, 1),)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_tiny_images(tmp_path_factory.mktemp("images") / "tiny.npz", 96)


def test_the_skip_rule_fires_at_the_limit() -> None:
    assert [skip_rule(n, 2) for n in range(4)] == [False, False, True, True]
    assert not skip_rule(8, 0)  # 0: no skip rule


@pytest.mark.parametrize("history, epochs, fires", [
    ([A, B, B, B], 2, True),  # unchanged for the last 2 epochs
    ([A, B, B], 2, False),  # unchanged for 1 epoch only
    ([B, B], 2, False),  # too few epochs to tell
    ([B, B, B], 2, True),
    ([B, B, A, B], 2, False),  # changed and changed back
    ([B] * 11, 10, True),
    ([A] + [B] * 10, 10, False),
    ([B] * 5, 0, False),  # 0: no stability rule
])
def test_the_stability_rule_needs_the_ranking_unchanged_for_its_epochs(history, epochs,
                                                                       fires) -> None:
    assert stability_rule(history, epochs) is fires


def test_the_ranking_orders_each_edges_ops_but_none_by_alpha() -> None:
    alphas = [torch.tensor([[9.0, 0.1, 0.3, 0.2], [0.0, 0.5, 0.5, 0.7]]),
              torch.tensor([[0.0, -1.0, 2.0, 1.0]])]
    assert ranking(alphas, none_index=0) == ((2, 3, 1), (3, 1, 2), (2, 3, 1))
    assert ranking(alphas, none_index=-1)[0] == (0, 2, 3, 1)  # a space without none


def plus(images: str, epochs: int = 6, **config) -> DARTSPlus:
    return DARTSPlus(estimator(images, "nb201", epochs), DARTSPlusConfig(epochs=epochs, **config),
                     seed=1)


def test_a_frozen_alpha_stops_the_search_by_stability(images: str, tmp_path: Path) -> None:
    search = plus(images, skip_limit=0, stable_epochs=2, alpha_lr=0.0, alpha_weight_decay=0.0)
    history = search.run(checkpoint=tmp_path / "plus.pt")
    assert [r["epoch"] for r in history] == [1, 2, 3]  # rankings 1-3 equal: stop at 3
    assert history[-1]["stopped_by"] == "stable" and search.stopped_at == 3
    assert all("stopped_by" not in r for r in history[:-1])
    resumed = plus(images, skip_limit=0, stable_epochs=2, alpha_lr=0.0, alpha_weight_decay=0.0)
    resumed.load(tmp_path / "plus.pt")
    assert resumed.run() == history and resumed.epochs == 3  # stays stopped


def test_the_skip_rule_stops_at_the_first_epoch_with_enough_skips(images: str,
                                                                  monkeypatch) -> None:
    search = plus(images, skip_limit=2, stable_epochs=0)
    counts = iter([0, 1, 2, 3, 0, 0])
    monkeypatch.setattr(search, "skip_connects", lambda arch: next(counts))
    history = search.run()
    assert [r["skip_connects"] for r in history] == [0, 1, 2]
    assert history[-1]["stopped_by"] == "skip" and search.derived is not None


def test_neither_rule_fires_before_min_epochs(images: str, monkeypatch) -> None:
    search = plus(images, epochs=4, skip_limit=1, stable_epochs=0, min_epochs=3)
    monkeypatch.setattr(search, "skip_connects", lambda arch: 5)
    assert [r["epoch"] for r in search.run()] == [1, 2, 3]


def test_darts_plus_is_a_registered_method_with_darts_weights() -> None:
    method = methods.get("darts-plus")
    assert method.kind == "loop" and method.config is DARTSPlusConfig
    assert method.preset("nb201")["estimator"] == methods.get("darts").preset("nb201")[
        "estimator"]
    assert DARTSPlusConfig().skip_limit == 2 and DARTSPlusConfig().stable_epochs == 10


def test_the_cli_says_where_and_why_the_search_stopped(tmp_path: Path, capsys) -> None:
    from archsearch.cli.main import main

    run = tmp_path / "run"
    assert main(["search", "--method", "darts-plus", "--space", "nb201", "--epochs", "4",
                 "--final-epochs", "0.05", "--run", str(run), "--method-opt", "stable_epochs=1",
                 "--method-opt", "alpha_lr=0", "--estimator-opt",
                 "supernet={'channels': 4, 'cells_per_stage': 1}"]) == 0
    assert "2 epochs" in capsys.readouterr().out
    assert main(["show", str(run)]) == 0
    assert "stopped early after epoch 2 by the stable rule" in capsys.readouterr().out
