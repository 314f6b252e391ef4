"""The ENAS micro cell's output rule: ``output="loose"`` (ENAS, the default) concatenates the
loose ends, ``output="all"`` every intermediate node (NNI 3.0's one-shot cells).

Pinned here: the default is "loose" (the same parameters and the same function as asking for it
by name); with "all" the shapes are those of every node entering the ``Combine`` conv, the
``Combine`` of every cell reads every intermediate node (its inputs, and a gradient on every
weight column block even for nodes other nodes read), the supernet computes exactly the
stand-alone "all" network with the same weights, a one-hot relaxed path computes the
architecture, and the supernet trains. That "loose" is bit for bit what it was is pinned by
``tests/oneshot/test_enas_regression.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from archsearch.nn.mixed import Relaxed, one_hot
from archsearch.registry import SPACES
from archsearch.spaces.enas_micro import Combine, loose_ends, output_nodes

N_NODES, C, CLASSES = 4, 4, 3
# a cell whose nodes 2 and 3 are read by later nodes: its loose ends are 4 and 5 only
CHAIN = ("normal:sep_conv_3x3~0,identity~1|avg_pool_3x3~2,sep_conv_5x5~1|"
         "max_pool_3x3~3,identity~0|sep_conv_3x3~3,sep_conv_5x5~2;"
         "reduce:identity~0,sep_conv_5x5~1|identity~2,max_pool_3x3~1|"
         "sep_conv_3x3~3,avg_pool_3x3~2|avg_pool_3x3~1,identity~3")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def space():
    return SPACES.create("enas-micro", n_nodes=N_NODES)


def supernet(output: str | None, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    options = {} if output is None else {"output": output}
    return space().supernet(channels=C, cells_per_stage=1, num_classes=CLASSES,
                            in_channels=3, **options)


def combines(model: nn.Module) -> list[Combine]:
    return [m for m in model.modules() if isinstance(m, Combine)]


def test_output_nodes() -> None:
    nodes = space().parse(CHAIN).normal
    assert loose_ends(nodes) == (4, 5)
    assert output_nodes(nodes, "loose") == (4, 5)
    assert output_nodes(nodes, "all") == (2, 3, 4, 5)
    with pytest.raises(ValueError, match="valid: loose, all"):
        output_nodes(nodes, "every")
    with pytest.raises(ValueError, match="valid: loose, all"):
        supernet("every")


def test_the_default_is_loose() -> None:
    default, loose = supernet(None), supernet("loose")
    assert default.output == loose.output == "loose"
    a = dict(default.named_parameters())
    b = dict(loose.named_parameters())
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    arch = space().parse(CHAIN)
    assert torch.equal(default(x, arch), loose(x, arch))


def test_all_shapes_and_every_node_enters_the_combine() -> None:
    sp, model = space(), supernet("all")
    model.train()
    # the supernet's Combine holds one block of C columns per intermediate node either way
    for cell_combine, c in zip(combines(model), (C, 2 * C, 2 * C, 4 * C, 4 * C)):
        assert cell_combine.weight.shape == (c, N_NODES * c, 1, 1)
    seen: list[int] = []
    hooks = [m.register_forward_pre_hook(lambda _m, args: seen.append(len(args[0])))
             for m in combines(model)]
    x = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    rng = np.random.default_rng(0)
    for arch in [sp.parse(CHAIN)] + [sp.sample(rng) for _ in range(3)]:
        seen.clear()
        out = model(x, arch)
        assert out.shape == (5, CLASSES)
        assert seen == [N_NODES] * 5, seen  # 5 cells (N R N R N), each reads every node
    for h in hooks:
        h.remove()

    # stand-alone: "all" holds every node's block, "loose" only the loose ends'
    arch = sp.parse(CHAIN)
    alone_all = sp.build(arch, channels=C, cells_per_stage=1, num_classes=CLASSES, output="all",
                         network="shared")
    alone_loose = sp.build(arch, channels=C, cells_per_stage=1, num_classes=CLASSES,
                           network="shared")
    assert combines(alone_all)[0].weight.shape == (C, N_NODES * C, 1, 1)
    assert combines(alone_loose)[0].weight.shape == (C, 2 * C, 1, 1)
    assert alone_all(x).shape == alone_loose(x).shape == (5, CLASSES)


def column_block_grads(model: nn.Module, arch) -> list[list[float]]:
    """Per cell, the gradient norm of each intermediate node's column block of the Combine."""
    model.zero_grad(set_to_none=True)
    x = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    model(x, arch).square().sum().backward()
    out = []
    for comb in combines(model):
        g, c = comb.weight.grad, comb.c
        out.append([float(g[:, k * c:(k + 1) * c].norm()) for k in range(N_NODES)])
    return out


def test_with_all_the_combine_reads_nodes_that_other_nodes_read() -> None:
    arch = space().parse(CHAIN)  # nodes 2 and 3 are read inside both cells
    assert loose_ends(arch.normal) == loose_ends(arch.reduce) == (4, 5)
    kinds = ["normal", "reduce", "normal", "reduce", "normal"]
    for output in ("loose", "all"):
        grads = column_block_grads(supernet(output), arch)
        for kind, norms in zip(kinds, grads):
            loose = loose_ends(arch.cell(kind))
            for k, norm in enumerate(norms):
                if output == "all" or k + 2 in loose:
                    assert norm > 0, (output, kind, k + 2)
                else:
                    assert norm == 0, (output, kind, k + 2)  # a read node: not in the output


def test_the_all_supernet_computes_the_standalone_all_network() -> None:
    """Same weights (same names, same layout with "all"), float64, batch statistics."""
    sp = space()
    model = supernet("all").double()
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(4))
    model.train()
    x = torch.randn(6, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    rng = np.random.default_rng(1)
    for arch in [sp.parse(CHAIN)] + [sp.sample(rng) for _ in range(3)]:
        net = sp.build(arch, channels=C, cells_per_stage=1, num_classes=CLASSES, network="shared",
                       output="all").double()
        shared = dict(model.named_parameters())
        with torch.no_grad():
            for name, p in net.named_parameters():
                if name in shared:
                    assert p.shape == shared[name].shape, name
                    p.copy_(shared[name])
        net.train()
        torch.testing.assert_close(model(x, arch), net(x), rtol=1e-9, atol=1e-10)


def test_a_one_hot_path_computes_the_architecture_with_all() -> None:
    sp, model = space(), supernet("all").double()
    x = torch.randn(6, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    rng = np.random.default_rng(2)
    for arch in [sp.parse(CHAIN)] + [sp.sample(rng) for _ in range(2)]:
        path = one_hot(sp, arch)
        got = model(x, Relaxed(tuple(w.double() for w in path.weights)))
        torch.testing.assert_close(got, model(x, arch), rtol=1e-9, atol=1e-10)


def test_the_all_supernet_trains() -> None:
    """A few SGD steps over random architectures on a learnable task lower the loss."""
    sp, model = space(), supernet("all")
    g = torch.Generator().manual_seed(7)
    y = torch.randint(0, CLASSES, (48,), generator=g)
    x = torch.randn(48, 3, 8, 8, generator=g) * 0.3
    x[torch.arange(48), y] += 1.5  # the label is the brightest channel
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(3)
    archs = [sp.sample(rng) for _ in range(2)]

    def loss_over(archs_) -> float:
        with torch.no_grad():
            return sum(float(nn.functional.cross_entropy(model(x, a), y)) for a in archs_)

    model.train()
    before = loss_over(archs)
    for step in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x, archs[step % 2]), y).backward()
        opt.step()
    after = loss_over(archs)
    assert after < 0.7 * before, (before, after)
