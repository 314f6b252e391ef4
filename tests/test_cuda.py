"""The GPU paths on CUDA: skipped without a GPU (the same code runs on CPU in the other tests).

On a machine with CUDA: every search space's supernet computes on the GPU the function it
computes on the CPU; the shared-weight training step and the reward step never wait for the
host (a longer epoch makes no more synchronisations than a shorter one); ENAS (CNN and text),
stand-alone training, zero-cost proxies and the CLI's main job run end to end on the GPU.
"""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.cli.main import main
from archsearch.estimators.language_model import SharedRNNEstimator
from archsearch.estimators.zero_cost.base import PROXIES
from archsearch.estimators.zero_cost.estimator import ZeroCostEstimator
from archsearch.nn.ops import Pool
from archsearch.oneshot.enas import ENAS, ENASConfig, enas_controller
from archsearch.registry import ESTIMATORS, SPACES
from archsearch.train.loop import autocast
from tests.cli.test_enas_cli import TINY
from tests.oneshot.test_enas import images, make  # noqa: F401  (images: a fixture)
from tests.oneshot.test_enas_text import corpus  # noqa: F401  (a fixture)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (the CPU path is tested everywhere)")

SUPERNETS = {"enas-micro": ({"n_nodes": 3}, {"channels": 8, "cells_per_stage": 1}),
             "enas-macro": ({"n_layers": 4}, {"channels": 8}),
             "nb201": ({}, {"channels": 8, "cells_per_stage": 1})}


@pytest.fixture
def exact_fp32():
    """float32 products and convolutions in float32 (CUDA's default rounds them to TF32)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.detach().double().cpu() - expected.detach().double()).abs().max()
                 / expected.detach().abs().max().clamp_min(1e-12))


@pytest.mark.parametrize("kind,kernel,stride", [("avg", 3, 1), ("avg", 3, 2), ("max", 3, 1),
                                                ("max", 5, 2), ("max", 7, 1)])
def test_pooling_gradients_on_cuda_match_the_cpu(kind: str, kernel: int, stride: int,
                                                 exact_fp32: None) -> None:
    # pytorch/pytorch#188344: channels_last average pooling with padding had wrong gradients
    pool = Pool(kind, stride, kernel)
    x = torch.randn(4, 8, 9, 10, generator=torch.Generator().manual_seed(0))
    weights = torch.randn(pool(x).shape, generator=torch.Generator().manual_seed(1))
    xc = x.clone().requires_grad_(True)
    (pool(xc) * weights).sum().backward()
    for layout in (torch.contiguous_format, torch.channels_last):
        xg = x.cuda().contiguous(memory_format=layout).requires_grad_(True)
        out = pool(xg)
        (out * weights.cuda()).sum().backward()
        assert relative_error(out, pool(x)) < 1e-6
        assert relative_error(xg.grad, xc.grad) < 1e-6, layout


@pytest.mark.parametrize("space_name", list(SUPERNETS))
def test_a_supernet_computes_the_same_function_and_gradients_on_cpu_and_cuda(
        space_name: str) -> None:
    """In float64 (an untrained supernet's float32 gradients can differ by 1% between any two
    correct implementations: batch statistics and ReLU kinks amplify rounding), on CUDA in
    channels_last as in training: the same outputs and gradients as on the CPU."""
    options, supernet = SUPERNETS[space_name]
    space = SPACES.create(space_name, **options)
    cpu = space.supernet(num_classes=10, in_channels=3, **supernet).double()
    cuda = copy.deepcopy(cpu).cuda().to(memory_format=torch.channels_last)
    x = torch.randn(16, 3, 16, 16, generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64)
    rng = np.random.default_rng(0)
    for arch in (space.sample(rng) for _ in range(4)):
        cpu.zero_grad(set_to_none=True)
        cuda.zero_grad(set_to_none=True)
        xc = x.clone().requires_grad_(True)
        expected = cpu(xc, arch)
        expected.square().sum().backward()
        xg = x.cuda().contiguous(memory_format=torch.channels_last).requires_grad_(True)
        on_gpu = cuda(xg, arch)
        on_gpu.square().sum().backward()
        assert relative_error(on_gpu, expected) < 1e-9, arch
        assert relative_error(xg.grad, xc.grad) < 1e-9, arch
        for (name, p), q in zip(cpu.named_parameters(), cuda.parameters()):
            assert (p.grad is None) == (q.grad is None), name
            if p.grad is not None:
                assert relative_error(q.grad, p.grad) < 1e-9, (arch, name)
    with autocast(torch.device("cuda"), True):  # what training runs: bf16, close to float64
        half = cuda.float()(xg.float(), arch)
    assert half.dtype == torch.bfloat16
    assert float((half.double().cpu() - expected).norm() / expected.norm()) < 0.05


def count_syncs(step) -> int:
    """How many times ``step()`` makes the host wait for the GPU."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.parametrize("space_name", list(SUPERNETS))
def test_the_shared_weight_and_reward_steps_never_wait_for_the_host(images: str,  # noqa: F811
                                                                    space_name: str) -> None:
    enas = make(images, space_name, device="cuda")
    estimator = enas.estimator
    archs = enas.controller.sample_architectures(estimator.steps_per_epoch)
    estimator.train_epoch(archs)  # warm-up (allocator, cuDNN)
    assert estimator.steps_per_epoch >= 4
    # one epoch of one step and one of four: the same synchronisations (the epoch's totals)
    assert count_syncs(lambda: estimator.train_epoch(archs[:1])) == \
        count_syncs(lambda: estimator.train_epoch(archs[:4]))
    # the rewards of a batch of architectures stay on the device until the caller copies them
    assert count_syncs(lambda: estimator.rewards(archs[:4])) == 0


@pytest.mark.parametrize("space_name", list(SUPERNETS))
def test_tiny_enas_runs_on_cuda_and_resumes(images: str, space_name: str,  # noqa: F811
                                            tmp_path: Path) -> None:
    whole = make(images, space_name, epochs=2, device="cuda")
    history = whole.run()
    assert [r["epoch"] for r in history] == [1, 2]
    assert all(math.isfinite(r["shared_loss"]) and 0 <= r["shared_acc"] <= 1 for r in history)
    assert next(whole.estimator.model.parameters()).is_cuda
    first = make(images, space_name, epochs=2, device="cuda")
    first.run_epoch()
    first.save(tmp_path / "enas.pt")
    resumed = make(images, space_name, epochs=2, device="cuda")
    resumed.load(tmp_path / "enas.pt")
    resumed.run()
    assert len(resumed.history) == 2 and resumed.history[0] == first.history[0]


def test_text_enas_runs_on_cuda(corpus: str) -> None:  # noqa: F811
    space = SPACES.create("enas-rnn", n_nodes=4)
    estimator = SharedRNNEstimator(space, corpus, hidden=16, batch_size=4, bptt=8,
                                   device="cuda", max_steps=6)
    controller = enas_controller(space, seed=2, aggregate=2, hidden=16)
    enas = ENAS(estimator, controller, ENASConfig(epochs=2, controller_steps=2, aggregate=2,
                                                  derive_samples=4))
    history = enas.run()
    assert len(history) == 2 and all(math.isfinite(r["shared_loss"]) for r in history)
    assert next(estimator.model.parameters()).is_cuda


def test_stand_alone_training_on_cuda() -> None:
    space = SPACES.create("enas-micro", n_nodes=3)
    estimator = ESTIMATORS.create("full-training", space=space, data="digits", epochs=5,
                                  batch_size=128, device="cuda",
                                  build={"channels": 8, "cells_per_stage": 1})
    result = estimator.evaluate(space.sample(np.random.default_rng(1)))
    # 10 classes: chance is 0.1; on the CPU this cell reaches 0.43 after these 5 epochs
    assert result.ok and 0.25 < result.objective <= 1.0, result
    assert 0 <= result.metrics["test_acc"] <= 1


@pytest.mark.parametrize("proxy", sorted(PROXIES))
def test_zero_cost_proxies_agree_on_cpu_and_cuda(proxy: str, exact_fp32: None) -> None:
    space = SPACES.create("nb201")
    archs = [space.sample(np.random.default_rng(i)) for i in range(3)]
    cpu = ZeroCostEstimator(space, proxy=proxy, device="cpu", batch_size=16)
    cuda = ZeroCostEstimator(space, proxy=proxy, device="cuda", batch_size=16)
    a = [cpu.evaluate(arch) for arch in archs]
    b = [cuda.evaluate(arch) for arch in archs]
    assert all(r.ok and math.isfinite(r.objective) for r in b), b
    for x, y in zip(a, b):  # the same network and batch: the same score up to float rounding
        assert y.objective == pytest.approx(x.objective, rel=0.05, abs=1e-6)


@pytest.mark.slow
def test_the_main_job_path_runs_on_cuda(images: str, tmp_path: Path, capsys) -> None:  # noqa: F811
    tiny = [*TINY[:-1], "cuda"]
    assert tiny[-2] == "--device"
    assert main(["search", "--data", images, "--run", str(tmp_path / "run"), *tiny]) == 0
    out = capsys.readouterr().out
    assert "derived architecture" in out and "random mean" in out
