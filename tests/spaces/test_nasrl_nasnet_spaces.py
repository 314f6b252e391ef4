"""NAS-RL's conv space and the NASNet cell space: strings, encodings, networks, drop path
(the fixed-depth round trip is in test_enas_spaces.py, over every space)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.data.splits import ImageData, Split
from archsearch.errors import ArchitectureError
from archsearch.registry import SPACES
from archsearch.train.loop import TrainConfig, fit


def choice_vectors(space, depth=None):
    decisions = space.decisions(depth) if depth else space.decisions()
    return st.tuples(*[st.integers(0, d.n_options - 1) for d in decisions])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6).flatmap(
    lambda d: choice_vectors(SPACES.create("nasrl-cnn", strides=True), d)))
def test_nasrl_architectures_of_any_depth_up_to_the_space_round_trip(choices) -> None:
    space = SPACES.create("nasrl-cnn", strides=True)
    arch = space.decode(choices)
    assert space.n_choices(arch.depth) == len(choices)
    assert space.decode(space.encode(arch)) == arch == space.parse(arch.to_str())


@pytest.mark.parametrize("name, text, where", [
    ("nasrl-cnn", "3x3:36|5x5:24<11", "layer 1 (5x5:24<11): needs 1 input bits"),
    ("nasrl-cnn", "3x4:36", "filter sizes must be in (1, 3, 5, 7)"),
    ("nasrl-cnn", "3x3:32", "filters must be in (24, 36, 48, 64)"),
    ("nasrl-cnn", "3x3:36:s2", "has no strides"),
    ("nasrl-cnn", "3x3", "expected 'HxW:F'"),
    ("nasrl-cnn", "|".join(["1x1:24<" + "0" * k if k else "1x1:24" for k in range(7)]),
     "at most 6"),
    ("nasnet", "normal:add(identity~0,identity~1)", "'normal:...;reduce:...'"),
    ("nasnet", "normal:add(identity~0,identity~2);reduce:add(identity~0,identity~1)",
     "normal cell, block 0 (add(identity~0,identity~2)): input 2 must be in 0..1"),
    ("nasnet", "normal:add(conv~0,identity~1);reduce:add(identity~0,identity~1)",
     "unknown op 'conv'"),
    ("nasnet", "normal:sum(identity~0,identity~1);reduce:add(identity~0,identity~1)",
     "expected add(op~i,op~j)"),
])
def test_malformed_strings_say_where(name: str, text: str, where: str) -> None:
    options = {"blocks": 1} if name == "nasnet" else {}
    with pytest.raises(ArchitectureError, match=None) as info:
        SPACES.create(name, **options).parse(text)
    assert where in str(info.value)


@pytest.mark.parametrize("name, build", [
    ("nasnet", {"channels": 4, "cells_per_stage": 1, "auxiliary": True}),
    ("nasrl-cnn", {}),
])
def test_every_sampled_architecture_builds_and_trains_a_step(name: str, build: dict) -> None:
    space = SPACES.create(name, **({"strides": True} if name == "nasrl-cnn" else {}))
    rng = np.random.default_rng(0)
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    for _ in range(15):
        arch = space.sample(rng)
        net = space.build(arch, in_channels=1, num_classes=4, **build)
        if hasattr(net, "drop_path_prob"):
            net.drop_path_prob = 0.3
        out = net(x)
        logits, aux = out if isinstance(out, tuple) else (out, None)
        assert logits.shape == (4, 4) and torch.isfinite(logits).all(), arch
        loss = torch.nn.functional.cross_entropy(logits, y)
        if aux is not None:
            loss = loss + torch.nn.functional.cross_entropy(aux, y)
        loss.backward()
        # a stand-alone network holds only what runs: every trainable parameter gets a
        # gradient
        missing = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, (arch, missing)
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def unread_preprocessing_params(net: torch.nn.Module) -> set[str]:
    """Names of the parameters of NASNet cells' input preprocessing (``pre0``/``pre1``) for
    cell inputs that none of the cell's blocks reads (there must be none: they never train)."""
    names = set()
    for k, cell in enumerate(net.cells):
        read = {i for block in cell.blocks for i in (block.in1, block.in2)}
        for i in (0, 1):
            module = getattr(cell, f"pre{i}", None)
            if i not in read and module is not None:
                names |= {f"cells.{k}.pre{i}.{n}" for n, _ in module.named_parameters()}
    return names


def test_nasnet_cell_inputs_no_block_reads_hold_no_parameters() -> None:
    space = SPACES.create("nasnet", blocks=1)
    arch = space.parse("normal:add(conv_3x3~0,conv_1x1~0);reduce:add(conv_3x3~0,identity~0)")
    net = space.build(arch, channels=4, cells_per_stage=1, in_channels=1)
    assert unread_preprocessing_params(net) == set()


def test_nasrl_layer_without_inputs_reads_the_image_and_unread_outputs_reach_the_classifier(
) -> None:
    space = SPACES.create("nasrl-cnn", depth=3, strides=True)
    net = space.build(space.parse("3x3:24|5x5:36:s2<0|1x1:48<10"), in_channels=1)
    assert net.layers[1].conv.in_channels == 1  # no input bit set: the image
    assert net.layers[2].conv.in_channels == 24  # reads layer 0
    assert net.ends == [1, 2] and net.classifier.in_features == 36 + 48


def test_nasnet_concat_block_widens_and_unread_blocks_make_the_cell_output() -> None:
    space = SPACES.create("nasnet", blocks=2)
    arch = space.parse("normal:concat(identity~0,conv_3x3~1),add(sep_conv_3x3~2,identity~1);"
                       "reduce:add(max_pool_3x3~0,identity~1),add(identity~2,avg_pool_3x3~0)")
    net = space.build(arch, channels=4, cells_per_stage=1, in_channels=1)
    normal = net.cells[0]
    assert normal.ends == [3] and normal.c_out == 4  # block 1 (add) is the only unread one
    assert normal.ops[1][0].__class__.__name__ == "SepConv"
    assert normal.ops[1][0][1].in_channels == 8  # reads block 0's concat: 2C channels
    out = net(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 10)


class DropPathRecorder(torch.nn.Module):
    """A tiny network that records the drop-path probability the loop gives it each step."""

    def __init__(self) -> None:
        super().__init__()
        self.drop_path_prob = 0.0
        self.seen: list[float] = []
        self.linear = torch.nn.Linear(64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.drop_path_prob)
        return self.linear(x.flatten(1))


def test_scheduled_drop_path_grows_linearly_to_its_final_value() -> None:
    g = torch.Generator().manual_seed(0)
    split = Split(torch.randn(80, 1, 8, 8, generator=g), torch.randint(0, 3, (80,), generator=g))
    data = ImageData("t", split, split, split, 3, pad=0, flip=False)
    model = DropPathRecorder()
    fit(model, data, TrainConfig(epochs=2, batch_size=16, drop_path=0.3), g)
    total = len(model.seen)
    assert total == 10
    assert model.seen == pytest.approx([0.3 * s / total for s in range(total)])


def test_nasnet_drop_path_is_applied_in_training_only() -> None:
    space = SPACES.create("nasnet", blocks=1)
    arch = space.parse("normal:add(conv_3x3~0,conv_1x1~1);reduce:add(conv_3x3~0,conv_1x1~1)")
    net = space.build(arch, channels=4, cells_per_stage=1, in_channels=1)
    x = torch.randn(8, 1, 8, 8)
    net.eval()
    net.drop_path_prob = 0.9
    a, b = net(x), net(x)
    assert torch.equal(a, b)  # evaluation ignores drop path
    net.train()
    torch.manual_seed(0)
    c = net(x)
    net.drop_path_prob = 0.0
    torch.manual_seed(0)
    d = net(x)
    assert not torch.allclose(c, d)
