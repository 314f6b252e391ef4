"""Training-free proxies: finite and within their defining bounds everywhere, invariant to
what they should ignore, reproducible."""

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
def test_every_proxy_is_finite_and_within_its_defining_bounds(arch: str) -> None:
    model = net(arch)
    x, y = batch()
    out = scores(model, x, y)
    assert set(out) == set(PROXIES)
    assert_within_bounds(out, model, x, y)


def assert_within_bounds(out: dict[str, float], model: torch.nn.Module, x: torch.Tensor,
                         y: torch.Tensor) -> None:
    """What each proxy's definition guarantees, whatever the network (batch x, y)."""
    n = len(x)
    assert all(math.isfinite(v) for v in out.values()), out
    # sums of |w * g|, of gradient norms, of squares: never negative
    for name in ("synflow", "snip", "grad_norm", "fisher", "epe_nas"):
        assert out[name] >= 0, (name, out[name])
    # -sum(log(l + k) + 1/(l + k)) over n eigenvalues, and log(t) + 1/t >= 1 for every t > 0
    assert out["jacob_cov"] <= -n, out["jacob_cov"]
    # log det of naswot's PSD kernel, whose diagonal is U (every ReLU unit agrees with
    # itself): at most n log U (Hadamard's inequality), up to its 1e-9 ridge
    units = sum(m[0].numel() for m in context(model, x, y).jacobian_pass()["relu_masks"]
                if m.dim() >= 2)
    assert out["naswot"] <= n * math.log(units) + 1e-6, (out["naswot"], units)
    assert out["params"] == sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6
    assert out["flops"] > 0


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
    x, y = batch()
    out = scores(model, x, y)
    assert_within_bounds(out, model, x, y)
    assert out["naswot"] != 0.0  # functional ReLUs are recorded too


@pytest.mark.slow
@pytest.mark.data
def test_data_free_scores_agree_with_naslibs_published_ones() -> None:
    path = shared_file("nb201_zc_cifar10_subset.csv")
    with open(path) as f:
        rows = list(csv.DictReader(f))[:30]
    x, y = batch(n=8)  # synflow and params ignore the data
    ours = [scores(net(r["arch_str"], channels=16, cells_per_stage=5), x, y, 10,
                   ["synflow", "params"]) for r in rows]
    for name in ("synflow", "params"):
        rho = spearmanr([o[name] for o in ours], [float(r[name]) for r in rows]).statistic
        assert rho >= 0.95, (name, rho)


def context(model, x, y, classes=4):
    from archsearch.estimators.zero_cost.base import ProxyContext

    ctx = ProxyContext(model, x, y, classes)
    ctx.loss_pass()
    return ctx


def test_grasp_by_replayed_relu_masks_matches_double_backprop() -> None:
    from archsearch.estimators.zero_cost.grasp import grasp_double_backprop

    x, y = batch(n=32)
    fast, exact = [], []
    for i in range(12):
        arch = NB201.sample(np.random.default_rng(100 + i)).to_str()
        ctx = context(net(arch, seed=i, channels=8, cells_per_stage=1), x, y)
        assert not ctx.loss_pass()["other_kinks"]  # NB201's only kinks are ReLUs
        fast.append(PROXIES["grasp"](ctx))
        exact.append(grasp_double_backprop(ctx))
    assert spearmanr(fast, exact).statistic >= 0.99
    errors = [abs(a - b) / max(abs(b), 1e-6) for a, b in zip(fast, exact)]
    assert np.median(errors) < 0.01, errors


def test_networks_with_other_kinks_take_the_exact_grasp() -> None:
    from archsearch.estimators.zero_cost.grasp import grasp_double_backprop

    space = SPACES.create("enas-micro")
    rng = np.random.default_rng(0)
    arch = next(a for a in (space.sample(rng).to_str() for _ in range(100)) if "max_pool" in a)
    ctx = context(net(arch, space=space, channels=4, cells_per_stage=1), *batch())
    assert any("max_pool" in k for k in ctx.loss_pass()["other_kinks"])
    assert PROXIES["grasp"](ctx) == grasp_double_backprop(ctx)


def test_replayed_relu_masks_reproduce_the_network() -> None:
    from archsearch.estimators.zero_cost.base import MaskedRelu

    x, y = batch()
    model = net(NB201.sample(np.random.default_rng(7)).to_str()).train()
    ctx = context(model, x, y)
    with torch.no_grad():
        plain = model(ctx.batch)
        with MaskedRelu(ctx.loss_pass()["relu_masks"]) as replay:
            replayed = model(ctx.batch)
    assert replay.calls == len(ctx.loss_pass()["relu_masks"]) > 0
    assert torch.equal(plain[0] if isinstance(plain, tuple) else plain,
                       replayed[0] if isinstance(replayed, tuple) else replayed)


def test_naswot_kernel_counts_agreements_between_samples() -> None:
    from archsearch.estimators.zero_cost.base import ProxyContext

    g = torch.Generator().manual_seed(0)
    masks = [torch.rand(6, 3, 5, 5, generator=g) > 0.5, torch.rand(6, 40, generator=g) > 0.3]
    ctx = ProxyContext(torch.nn.Identity(), torch.zeros(6, 1), torch.zeros(6, dtype=torch.long), 2)
    ctx._cache["shared"] = {"relu_masks": masks}
    codes = torch.cat([m.flatten(1) for m in masks], 1)
    agree = (codes[:, None, :] == codes[None, :, :]).sum(-1).double()  # (6, 6) by definition
    assert PROXIES["naswot"](ctx) == pytest.approx(float(torch.linalg.slogdet(agree)[1]), abs=1e-6)
