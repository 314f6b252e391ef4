"""A supernet computes exactly the sub-network it is given.

One-shot search (ENAS) trains one supernet and ranks architectures by what the supernet computes
for them; what it finally reports, and what gets retrained, is the stand-alone network
``space.build(arch)``. Both are only the same thing if ``supernet(x, arch)`` is, function for
function, the stand-alone network of ``arch`` with the supernet's weights. Nothing else pins
that: a supernet that ran a different op than the chosen one, read the wrong input node, or
sliced the wrong columns of the ENAS micro ``Combine`` conv would still train, score and search,
just for other networks than the ones it names.

So, for every space that has a supernet (discovered from the registry: a new space fails here
until it has small sizes in ``CASES``) and for several seeded random architectures (plus a few
written-out corner cases): build the supernet and the stand-alone network with the same sizes,
copy the supernet's weights into the stand-alone network (by parameter name; the one place the
layouts differ, the micro ``Combine`` conv, is mapped explicitly), and check in float64 that
both give the same outputs, the same input gradient and the same weight gradients, and that the
supernet puts no gradient on any weight the stand-alone network does not hold.

Set-up that makes the two comparable: supernet BatchNorm has no affine parameters and no running
statistics, stand-alone BatchNorm has both; its affine parameters start at 1 and 0 (checked when
copying) and both networks run in training mode, so every BatchNorm normalises with the
statistics of its batch. Dropout and drop path are off.

The reference here is the stand-alone network, so a mistake that both networks share (their
cells run the same forward code) cannot show up here; which weights an architecture's network
runs is pinned from the architecture alone in tests/estimators/test_shared_weights_training.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from archsearch.registry import SPACES

BATCH, IMAGE_SIZE, CLASSES = 6, 8, 3
TEXT_STEPS, VOCAB = 5, 11
SAMPLED = 6  # random architectures per space, besides the corner cases
NO_DROPOUT = {"dropout_embedding": 0.0, "dropout_input": 0.0, "dropout_hidden": 0.0,
              "dropout_output": 0.0}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@dataclass(frozen=True)
class Case:
    """Small sizes for one space: its options, the sizes given to both ``supernet()`` and
    ``build()``, options of ``build()`` only (to make it match the supernet), whether it models
    text (tokens and a hidden state) rather than images, and corner-case architectures."""

    space: dict[str, Any]
    sizes: dict[str, Any]
    build: dict[str, Any] = field(default_factory=dict)
    text: bool = False
    corners: tuple[str, ...] = ()


CASES = {
    "nb201": Case({}, {"channels": 4, "cells_per_stage": 1}),
    "enas-micro": Case(
        {"n_nodes": 4}, {"channels": 4, "cells_per_stage": 1},
        {"dropout": 0.0, "network": "shared"},  # the supernet's sub-network on its own
        corners=(
            # the normal cell never reads input 1: both reduction cells are dead; a normal cell
            # after a dead reduction reads its input 0 through a factorized reduction; the
            # loose ends (3 and 5) are not a prefix of the nodes
            "normal:sep_conv_3x3~0,identity~0|avg_pool_3x3~2,sep_conv_5x5~0|"
            "max_pool_3x3~2,identity~0|sep_conv_3x3~4,sep_conv_5x5~0;"
            "reduce:identity~1,sep_conv_5x5~1|identity~2,max_pool_3x3~1|"
            "sep_conv_3x3~3,avg_pool_3x3~2|avg_pool_3x3~1,identity~3",
            # the normal cell never reads input 0 and the reduction cell never reads input 1:
            # the first and the middle normal cells are dead; identity at stride 2 on input 0
            "normal:sep_conv_5x5~1,identity~1|identity~2,avg_pool_3x3~1|"
            "max_pool_3x3~1,sep_conv_3x3~3|identity~3,sep_conv_3x3~2;"
            "reduce:identity~0,sep_conv_3x3~0|identity~2,max_pool_3x3~0|"
            "avg_pool_3x3~0,identity~2|sep_conv_5x5~4,sep_conv_3x3~0",
            # neither cell reads input 0: every cell is live, each only through the next one
            "normal:sep_conv_5x5~1,identity~1|identity~2,avg_pool_3x3~1|"
            "max_pool_3x3~1,sep_conv_3x3~3|identity~3,sep_conv_3x3~2;"
            "reduce:identity~1,sep_conv_3x3~1|identity~2,max_pool_3x3~1|"
            "avg_pool_3x3~1,identity~2|sep_conv_5x5~4,sep_conv_3x3~1",
        )),
    # the search network's sub-network: pools followed by BatchNorm, as the mixed ops hold them
    "darts": Case({}, {"channels": 4, "cells": 3}, {"network": "shared", "dropout": 0.0},
                  corners=(
        # DARTS' second-order cell; a cell of one op (every edge a pool or a skip)
        "normal:sep_conv_3x3~0,sep_conv_3x3~1|sep_conv_3x3~0,sep_conv_3x3~1|"
        "skip_connect~0,sep_conv_3x3~1|skip_connect~0,dil_conv_3x3~2;"
        "reduce:max_pool_3x3~0,max_pool_3x3~1|max_pool_3x3~1,skip_connect~2|"
        "max_pool_3x3~0,skip_connect~2|max_pool_3x3~1,skip_connect~2",
        "normal:avg_pool_3x3~0,avg_pool_3x3~1|avg_pool_3x3~0,avg_pool_3x3~2|"
        "avg_pool_3x3~1,avg_pool_3x3~3|avg_pool_3x3~2,avg_pool_3x3~4;"
        "reduce:skip_connect~0,skip_connect~1|skip_connect~0,skip_connect~2|"
        "skip_connect~1,skip_connect~3|skip_connect~3,skip_connect~4",
    )),
    # the supernet keeps the width constant; build() doubles it at reductions unless told not to
    "enas-macro": Case({"n_layers": 6}, {"channels": 4},
                       {"widen": False, "dropout": 0.0, "network": "shared"}),
    "enas-rnn": Case(
        {"n_nodes": 6}, {"vocab_size": VOCAB, "hidden": 8, **NO_DROPOUT}, text=True,
        corners=("tanh|relu~0|sigmoid~1|identity~2|tanh~3|relu~4",  # a chain: one loose end
                 "relu|tanh~0|identity~0|sigmoid~0|relu~0|tanh~0")),  # a star: five
}

SUPERNET_SPACES = [name for name in SPACES.names() if hasattr(SPACES.create(name), "supernet")]


# ---- which supernet weight a stand-alone weight is --------------------------------------------

def micro_cell_kinds(cells_per_stage: int) -> list[str]:
    """The ENAS micro network's cells in order: N normal, reduce, N normal, reduce, N normal."""
    normal = ["normal"] * cells_per_stage
    return normal + ["reduce"] + normal + ["reduce"] + normal


def micro_loose_ends(nodes) -> list[int]:
    """Intermediate nodes (2, 3, ...) that no node of the cell reads."""
    read = {node[0] for node in nodes} | {node[2] for node in nodes}
    return [i for i in range(2, len(nodes) + 2) if i not in read]


def micro_combine_columns(case: Case, arch, name: str, weight: torch.Tensor) -> torch.Tensor:
    """The supernet's ``Combine`` 1x1 conv of a cell holds one block of C input columns per
    intermediate node (node i: columns (i-2)C to (i-1)C); the stand-alone cell's holds the
    blocks of its loose ends only, in node order."""
    parts = name.split(".")
    if parts[0] != "cells" or parts[2:] != ["combine", "weight"]:
        return weight
    kind = micro_cell_kinds(case.sizes["cells_per_stage"])[int(parts[1])]
    c = weight.shape[0]
    blocks = [weight[:, (i - 2) * c:(i - 1) * c] for i in micro_loose_ends(arch.cell(kind))]
    return torch.cat(blocks, dim=1)


# space -> f(case, arch, parameter name, supernet tensor) -> the stand-alone tensor of that name
# (a view or a selection, so that it maps gradients as well as weights); other spaces: same layout
LAYOUT = {"enas-micro": micro_combine_columns}


def same_layout(case: Case, arch, name: str, tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def is_fresh_batchnorm_entry(net: nn.Module, name: str, tensor: torch.Tensor) -> bool:
    """Whether ``name`` is what only stand-alone BatchNorm has: affine parameters at their
    initial 1 and 0 (so that normalising with batch statistics is the supernet's BatchNorm) or
    running statistics (unused in training mode)."""
    owner, _, leaf = name.rpartition(".")
    if not isinstance(net.get_submodule(owner), (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
        return False
    if leaf == "weight":
        return bool((tensor == 1).all())
    if leaf == "bias":
        return bool((tensor == 0).all())
    return leaf in ("running_mean", "running_var", "num_batches_tracked")


def copy_supernet_weights(supernet: nn.Module, net: nn.Module, to_standalone: Callable) -> None:
    """Set every parameter and buffer of the stand-alone ``net`` to the supernet's of the same
    name (through ``to_standalone`` where the layouts differ). Whatever the supernet has no
    counterpart of must be a fresh BatchNorm entry; a shape mismatch fails the copy."""
    shared = dict(supernet.named_parameters()) | dict(supernet.named_buffers())
    with torch.no_grad():
        for name, target in itertools.chain(net.named_parameters(), net.named_buffers()):
            if name in shared:
                source = to_standalone(name, shared[name])
                assert source.shape == target.shape, (name, source.shape, target.shape)
                target.copy_(source)
            else:
                assert is_fresh_batchnorm_entry(net, name, target), (
                    f"stand-alone {name} has no supernet counterpart and is not a BatchNorm "
                    "entry at its initial value")


# ---- running both networks ---------------------------------------------------------------------

def randomise(model: nn.Module, generator: torch.Generator) -> None:
    """Every weight uniform in [-0.5, 0.5) from ``generator`` (independent of the global RNG and
    large enough that each weight matters, also in the recurrent cell's small matrices)."""
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.5, 0.5, generator=generator)


def make_inputs(case: Case, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    if case.text:
        tokens = torch.randint(VOCAB, (TEXT_STEPS, BATCH), generator=generator)
        h = torch.randn(BATCH, case.sizes["hidden"], generator=generator, dtype=torch.float64)
        return tokens, h.requires_grad_(True)
    x = torch.randn(BATCH, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator, dtype=torch.float64)
    return (x.requires_grad_(True),)


def forward_and_backward(model: nn.Module, inputs: tuple[torch.Tensor, ...], arch,
                         generator_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The outputs (concatenated, flattened) and the gradient of the float input of a random
    linear function of them; ``arch=None`` runs a stand-alone network."""
    model.zero_grad(set_to_none=True)
    inputs = tuple(t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs)
    out = model(*inputs) if arch is None else model(*inputs, arch)
    out = torch.cat([o.flatten() for o in (out if isinstance(out, tuple) else (out,))])
    g = torch.Generator().manual_seed(generator_seed)
    (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum().backward()
    return out.detach(), inputs[-1].grad


def assert_close(got: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    scale = float(expected.abs().max()) if expected.numel() else 1.0
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-10 * max(scale, 1e-3),
                               msg=lambda m: f"{what}: {m}")


def architectures(space, case: Case) -> list:
    rng = np.random.default_rng(0)
    return [space.sample(rng) for _ in range(SAMPLED)] + [space.parse(s) for s in case.corners]


def build_seeded(make: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # module initialisation draws from the global RNG; keep it as it was
        return make().double()


@pytest.mark.parametrize("space_name", SUPERNET_SPACES)
def test_supernet_gives_the_outputs_and_gradients_of_the_standalone_network(
        space_name: str) -> None:
    if space_name not in CASES:
        pytest.fail(f"space {space_name!r} has a supernet but no small sizes in CASES: add an "
                    "entry so that its supernet is checked against its stand-alone networks")
    case = CASES[space_name]
    space = SPACES.create(space_name, **case.space)
    task = {} if case.text else {"num_classes": CLASSES, "in_channels": 3}
    generator = torch.Generator().manual_seed(0)
    supernet = build_seeded(lambda: space.supernet(**task, **case.sizes))
    randomise(supernet, generator)
    supernet.train()
    layout = LAYOUT.get(space_name, same_layout)
    inputs = make_inputs(case, generator)  # the same for every architecture
    outputs = []
    for k, arch in enumerate(architectures(space, case)):
        net = build_seeded(lambda: space.build(arch, **task, **case.sizes, **case.build))
        net.train()  # batch statistics in every BatchNorm, as the supernet's
        assert all(m.p == 0 for m in net.modules() if isinstance(m, nn.Dropout))
        assert getattr(net, "drop_path_prob", 0.0) == 0.0
        copy_supernet_weights(supernet, net, lambda n, t: layout(case, arch, n, t))

        expected, expected_input_grad = forward_and_backward(net, inputs, None, k)
        got, got_input_grad = forward_and_backward(supernet, inputs, arch, k)
        assert_close(got, expected, f"{arch}: outputs")
        assert_close(got_input_grad, expected_input_grad, f"{arch}: input gradient")

        # the same gradient on every weight both hold, and no supernet gradient elsewhere
        super_params = dict(supernet.named_parameters())
        mapped_norm = torch.zeros((), dtype=torch.float64)
        for name, p in net.named_parameters():
            if name not in super_params:
                continue  # a stand-alone BatchNorm's affine parameter
            q = super_params[name]
            mine = p.grad if p.grad is not None else torch.zeros_like(p)
            theirs = layout(case, arch, name, q.grad if q.grad is not None else torch.zeros_like(q))
            assert_close(theirs, mine, f"{arch}: gradient of {name}")
            mapped_norm += theirs.square().sum()
        total_norm = sum((q.grad.square().sum() for q in supernet.parameters()
                          if q.grad is not None), torch.zeros((), dtype=torch.float64))
        assert_close(total_norm, mapped_norm,
                     f"{arch}: squared norm of the supernet's gradient, all weights vs. those "
                     "the stand-alone network holds")
        outputs.append(got)
    # the comparison has teeth: the architectures compute different functions (most of them:
    # a few NB201 cells are the same function, e.g. two whose only non-zero path is one pool)
    distinct = [a for i, a in enumerate(outputs) if not any(torch.allclose(a, b)
                                                           for b in outputs[:i])]
    assert len(distinct) > len(outputs) // 2
