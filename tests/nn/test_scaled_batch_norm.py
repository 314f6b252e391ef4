"""A mixing weight folded into an op's last BatchNorm gives the product's values and gradients.

``scaled_batch_norm(bn, x, w)`` must equal ``w * bn(x)`` forward and in the gradients of x, w
and BN's affine parameters (the relaxed supernets fold each op's weight this way), and leave a
BatchNorm that tracks running statistics to the product, with the same statistics updated.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archsearch.nn.ops import DilConv, Scaled, run_scaled, scaled_batch_norm


def grads(out: torch.Tensor, upstream: torch.Tensor, inputs: list[torch.Tensor]):
    return torch.autograd.grad((out * upstream).sum(), inputs)


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_folded_equals_the_product(affine: bool, channels_last: bool) -> None:
    g = torch.Generator().manual_seed(0)
    bn = nn.BatchNorm2d(8, affine=affine, track_running_stats=False)
    if affine:
        with torch.no_grad():
            bn.weight.copy_(torch.rand(8, generator=g) + 0.5)
            bn.bias.copy_(torch.randn(8, generator=g))
    x = (3 + 2 * torch.randn(4, 8, 5, 5, generator=g)).requires_grad_()
    xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    w = torch.tensor(0.37, requires_grad=True)
    upstream = torch.randn(4, 8, 5, 5, generator=g)
    inputs = [x, w, *bn.parameters()]
    want = w * bn(xin)
    got = scaled_batch_norm(bn, xin, w)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads(got, upstream, inputs), grads(want, upstream, inputs), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_no_scale_is_the_plain_batch_norm_and_running_statistics_stay_exact() -> None:
    x = torch.randn(4, 6, 3, 3)
    plain = nn.BatchNorm2d(6)
    assert torch.equal(scaled_batch_norm(plain, x, None), nn.BatchNorm2d(6)(x))
    tracked, reference = nn.BatchNorm2d(6), nn.BatchNorm2d(6)
    w = torch.tensor(0.5)
    torch.testing.assert_close(scaled_batch_norm(tracked, x, w), w * reference(x))
    assert torch.equal(tracked.running_mean, reference.running_mean)
    assert torch.equal(tracked.running_var, reference.running_var)
    assert tracked.num_batches_tracked == reference.num_batches_tracked == 1


def test_ops_scale_their_output_folded_or_not() -> None:
    torch.manual_seed(0)
    bn = {"affine": False, "track_running_stats": False}
    x = torch.randn(2, 4, 6, 6).contiguous(memory_format=torch.channels_last)
    w = torch.tensor(0.25)
    ops = [DilConv(4, 4, 3, **bn), Scaled(nn.MaxPool2d(3, 1, 1), nn.BatchNorm2d(4, **bn)),
           nn.Identity(), Scaled(nn.MaxPool2d(3, 1, 1))]
    for op in ops:
        torch.testing.assert_close(run_scaled(op, x, w), w * op(x))
        assert torch.equal(run_scaled(op, x, None), op(x))
    relu = torch.relu(x)
    torch.testing.assert_close(run_scaled(ops[0], x, w, relu), w * ops[0](x))


def test_a_concatenated_node_gets_its_gradient_back_contiguous() -> None:
    from archsearch.nn.ops import contiguous_grad

    x = torch.randn(2, 4, 5, 5).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    other = torch.randn(2, 3, 5, 5).contiguous(memory_format=torch.channels_last)
    seen: list[torch.Tensor] = []
    x.register_hook(seen.append)
    y = contiguous_grad(x)
    assert torch.equal(y, x)
    upstream = torch.randn(2, 7, 5, 5)
    torch.cat([y, other], dim=1).backward(upstream)
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(seen[0], upstream[:, :4])
