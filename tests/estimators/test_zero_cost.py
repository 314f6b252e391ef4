"""Training-free proxies: finite everywhere, invariant to what they should ignore, reproducible."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from archsearch.estimators.zero_cost import PROXIES, score_network
from archsearch.registry import ESTIMATORS, SPACES
from tests.conftest import shared_file

NB201 = SPACES.create("nb201")
SMALL = {"channels": 4, "cells_per_stage": 1}
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def net(arch: str, seed: int = 0, space=NB201, **build):
    torch.manual_seed(seed)
    return space.build(space.parse(arch), **(build or SMALL))


def batch(seed: int = 0, n: int = 16, classes: int = 4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 16, 16, generator=g), torch.randint(0, classes, (n,), generator=g)


def scores(model, x, y, classes=4, proxies=None):
    out = score_network(model, x, y, classes, proxies or list(PROXIES))
    return {k: v[0] for k, v in out.items()}


@pytest.mark.parametrize("arch", [ALL_NONE, "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|"
                                  "none~1|avg_pool_3x3~2|"] + [
    NB201.sample(np.random.default_rng(i)).to_str() for i in range(4)])
def test_every_proxy_is_finite(arch: str) -> None:
    out = scores(net(arch), *batch())
    assert set(out) == set(PROXIES)
    assert all(math.isfinite(v) for v in out.values()), out


def test_a_network_that_ignores_its_input_scores_worst_on_input_proxies() -> None:
    x, y = batch()
    dead = scores(net(ALL_NONE), x, y)
    live = scores(net("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|"
                      "nor_conv_3x3~1|nor_conv_1x1~2|"), x, y)
    for name in ("jacob_cov", "epe_nas", "naswot", "synflow", "snip", "grad_norm"):
        assert dead[name] < live[name], name


def test_synflow_params_and_flops_ignore_the_data() -> None:
    model = net(NB201.sample(np.random.default_rng(3)).to_str())
    a = scores(model, *batch(1), proxies=["synflow", "params", "flops"])
    b = scores(model, *batch(2), proxies=["synflow", "params", "flops"])
    assert a == b


def test_label_free_proxies_ignore_labels_and_epe_nas_ignores_class_names() -> None:
    model = net(NB201.sample(np.random.default_rng(4)).to_str())
    x, y = batch()
    relabel = torch.tensor([2, 3, 0, 1])[y]  # the same grouping under other class ids
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
    names = ["naswot", "jacob_cov", "epe_nas", "snip"]
    base, renamed, other = (scores(model, x, t, proxies=names) for t in (y, relabel, shuffled))
    for name in ("naswot", "jacob_cov"):
        assert base[name] == pytest.approx(other[name], rel=1e-9)
    assert base["epe_nas"] == pytest.approx(renamed["epe_nas"], rel=1e-9)
    assert base["epe_nas"] != pytest.approx(other["epe_nas"], rel=1e-6)  # grouping matters
    assert base["snip"] != pytest.approx(other["snip"], rel=1e-6)  # the loss uses labels


def test_estimator_is_reproducible_by_seed(tmp_path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "imgs.npz"
    np.savez(path, x=rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8),
             y=rng.integers(0, 4, 40))
    arch = NB201.sample(np.random.default_rng(5))

    def make(seed, proxy="naswot"):
        return ESTIMATORS.create("zero-cost", space=NB201, proxy=proxy, data=str(path),
                                 batch_size=16, seed=seed, build=SMALL)

    a, b, c = (make(s).evaluate(arch).objective for s in (0, 0, 1))
    assert a == b and a != c
    vote = make(0, "vote")
    result = vote.evaluate(arch)
    assert 0.0 <= result.objective <= 1.0 and {"zc_synflow", "zc_snip"} <= set(result.metrics)


@pytest.mark.parametrize("space_name", ["enas-micro", "enas-macro"])
def test_proxies_work_on_the_enas_networks(space_name: str) -> None:
    space = SPACES.create(space_name)
    build = {"channels": 4, "cells_per_stage": 1} if space_name == "enas-micro" else {"channels": 4}
    model = net(space.sample(np.random.default_rng(0)).to_str(), space=space, **build)
    out = scores(model, *batch())
    assert all(math.isfinite(v) for v in out.values()), out
    assert out["naswot"] != 0.0  # functional ReLUs are recorded too


@pytest.mark.slow
def test_data_free_scores_agree_with_naslibs_published_ones() -> None:
    path = shared_file("nb201_zc_cifar10_subset.csv")
    with open(path) as f:
        rows = list(csv.DictReader(f))[:30]
    x, y = batch(n=8)  # synflow and params ignore the data
    ours = [scores(net(r["arch_str"], **{"channels": 16, "cells_per_stage": 5}), x, y, 10,
                   ["synflow", "params"]) for r in rows]
    for name in ("synflow", "params"):
        rho = spearmanr([o[name] for o in ours], [float(r[name]) for r in rows]).statistic
        assert rho >= 0.95, (name, rho)
